"""`genmodels evaluate`, `train-classifier` and `prefetch-weights`, run as a user runs them."""

import json
import os

import pytest
import torch

from genmodels.commands import main
from genmodels.commands import invoke
from genmodels.metrics.extractors import file_sha256
from genmodels.metrics.inception import INCEPTION_FILENAME, INCEPTION_URL
from tests.cli.common import EXPERIMENTS, TINY, TINY_GAN

TINY_DIGITS = ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "32"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, lenet_file):
    """A `genmodels fit` run with the GenerativeMetrics callback added on the command line."""
    root = tmp_path_factory.mktemp("run")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        main([
            "fit", "--config", str(EXPERIMENTS / "gan/digits.yaml"), "--trainer.default_root_dir", str(root / "run"),
            *TINY, *TINY_GAN, *TINY_DIGITS, "--max_iterations", "2", "--trainer.check_val_every_n_epoch", "100",
            "--trainer.logger", "pytorch_lightning.loggers.CSVLogger", "--trainer.logger.save_dir", str(root / "run"),
            "--trainer.callbacks+=genmodels.callbacks.GenerativeMetrics",
            "--trainer.callbacks.every_n_iterations", "2", "--trainer.callbacks.metrics", "fid,is",
            "--trainer.callbacks.extractor", f"classifier:{lenet_file}", "--trainer.callbacks.num_samples", "64",
            "--trainer.callbacks.num_real", "200", "--trainer.callbacks.cache_dir", str(root / "cache"),
        ])
    finally:
        os.chdir(cwd)
    return root


def _evaluate_args(run, lenet_file, *extra):
    return [
        "evaluate", "--ckpt", str(run / "run/checkpoints/last.ckpt"), "--metrics", "fid,is", "--num-samples", "64",
        "--extractor", f"classifier:{lenet_file}", "--num-real", "200", "--cache-dir", str(run / "cache"),
        "--device", "cpu", *extra,
    ]


def test_evaluate_reproduces_the_training_callback_from_its_cache(
    trained_run, lenet_file, tmp_path, monkeypatch, capsys
):
    (record,) = [json.loads(line) for line in (trained_run / "run/metrics.jsonl").read_text().splitlines()]
    assert record["iteration"] == 2
    monkeypatch.setattr("genmodels.metrics.reference.compute_reference", lambda *a, **k: pytest.fail("real statistics recomputed"))
    main(_evaluate_args(trained_run, lenet_file, "--out", str(tmp_path / "results.json")))
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "results.json").read_text())
    # Same weights, seed and sample count as the callback's evaluation at the last iteration.
    assert result["values"].keys() == {"fid_lenet", "is_lenet", "is_lenet_std"}
    for name, value in result["values"].items():
        assert value == pytest.approx(record["values"][f"val/{name}"], rel=1e-12)
        assert name in printed
    protocol = result["protocol"]
    assert protocol["reference"] == {
        "dataset": "digits", "split": "train", "num_images": 200, "source": "cache",
        "images_sha256": record["protocol"]["reference"]["images_sha256"],
    }
    assert protocol["extractor_sha256"] == file_sha256(lenet_file) == record["protocol"]["extractor_sha256"]
    assert protocol["num_samples"] == 64 and protocol["iteration"] == 2 and protocol["image_shape"] == [1, 16, 16]
    assert protocol["metrics"]["is"] == {"splits": 10, "split_seed": 2020, "std": "population"}


def test_evaluate_computes_and_caches_missing_statistics(trained_run, lenet_file, tmp_path, capsys):
    args = _evaluate_args(trained_run, lenet_file, "--metrics", "kid,pr", "--kid-subset-size", "50")
    args[args.index("--cache-dir") + 1] = str(tmp_path / "fresh-cache")
    first = invoke(args)
    assert first["protocol"]["reference"]["source"] == "computed"
    assert "real statistics cached in" in capsys.readouterr().err
    second = invoke(args)
    assert second["protocol"]["reference"]["source"] == "cache" and second["values"] == first["values"]
    assert set(first["values"]) == {"kid_lenet", "kid_lenet_std", "precision_lenet", "recall_lenet"}
    (entry,) = (tmp_path / "fresh-cache").glob("*.pt")
    assert entry.name.startswith("digits-train-16px-lenet-") and "-n200-features-" in entry.name


def test_evaluate_errors_name_the_problem(trained_run, lenet_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_evaluate_args(trained_run, lenet_file, "--extractor", "inception"))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith("genmodels: error: InceptionV3 weights not found") and INCEPTION_URL in message
    assert str(tmp_path / "torch-home/hub/checkpoints" / INCEPTION_FILENAME) in message

    evil = tmp_path / "evil.yaml"
    evil.write_text("data:\n  class_path: os.system\n  init_args: {command: 'echo hi'}\n")
    with pytest.raises(SystemExit):
        main(_evaluate_args(trained_run, lenet_file, "--config", str(evil)))
    assert "is not one genmodels builds" in capsys.readouterr().err

    other_size = tmp_path / "data32.yaml"
    other_size.write_text("class_path: datamodules.DigitsDataModule\ninit_args: {image_size: 32}\n")
    with pytest.raises(SystemExit):
        main(_evaluate_args(trained_run, lenet_file, "--config", str(other_size)))
    assert "the model generates (1, 16, 16) images but" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(_evaluate_args(trained_run, lenet_file, "--metrics", "fid,lpips"))
    assert "unknown metrics ['lpips']" in capsys.readouterr().err

    lone = tmp_path / "elsewhere/last.ckpt"
    lone.parent.mkdir()
    lone.write_bytes((trained_run / "run/checkpoints/last.ckpt").read_bytes())
    with pytest.raises(SystemExit):
        main(["evaluate", "--ckpt", str(lone), "--extractor", f"classifier:{lenet_file}"])
    assert "pass --config" in capsys.readouterr().err
    # IS alone needs no real images, hence no datamodule config.
    alone = invoke(["evaluate", "--ckpt", str(lone), "--metrics", "is", "--num-samples", "20", "--is-splits", "2",
                                    "--extractor", f"classifier:{lenet_file}", "--device", "cpu"])
    assert set(alone["values"]) == {"is_lenet", "is_lenet_std"} and alone["protocol"]["reference"] is None


def test_train_classifier_command_writes_a_pinned_file(tmp_path, capsys, single_thread):
    digest = invoke(["train-classifier", "--data", str(EXPERIMENTS / "dcgan/digits.yaml"), "--epochs", "1",
                                             "--out", str(tmp_path / "lenet.pt"), "--device", "cpu"])
    out = capsys.readouterr().out
    assert digest == file_sha256(tmp_path / "lenet.pt") and f"sha256 {digest}" in out
    assert "test accuracy" in out and "--extractor classifier:" in out
    assert (tmp_path / "lenet.pt.sha256").read_text().startswith(digest)
    meta = torch.load(tmp_path / "lenet.pt", weights_only=True)["meta"]
    assert meta["dataset"] == "digits" and meta["image_size"] == 32 and 0 <= meta["test_accuracy"] <= 1


def test_prefetch_verifies_the_hash_and_explains_offline_failures(tmp_path, capsys):
    source = tmp_path / "mirror.pth"
    source.write_bytes(b"pretend weights")
    prefix = file_sha256(source)[:8]
    target = tmp_path / "weights"
    path = invoke(["prefetch-weights", "--to", str(target), "--url", source.as_uri(), "--sha256", prefix])
    assert path == target / INCEPTION_FILENAME and path.read_bytes() == b"pretend weights"
    assert f"GENMODELS_INCEPTION_WEIGHTS={path}" in capsys.readouterr().out
    mtime = path.stat().st_mtime_ns
    invoke(["prefetch-weights", "--to", str(target), "--url", "file:///nonexistent", "--sha256", prefix])
    assert path.stat().st_mtime_ns == mtime  # a verified copy is kept, nothing fetched

    with pytest.raises(SystemExit) as exit_info:  # the official hash does not match this file
        invoke(["prefetch-weights", "--to", str(tmp_path / "other"), "--url", source.as_uri()])
    assert exit_info.value.code == 2
    assert "failed verification" in capsys.readouterr().err
    assert not list((tmp_path / "other").glob("*"))  # nothing half-written left behind

    with pytest.raises(SystemExit):
        invoke(["prefetch-weights", "--to", str(tmp_path / "offline"), "--url", "file:///nonexistent/weights.pth"])
    assert "cannot download file:///nonexistent/weights.pth" in capsys.readouterr().err
