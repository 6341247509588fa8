"""Bad input gets a clear error and loses nothing."""

import hashlib
import pickle
import re
import sys
from pathlib import Path

import pytest
import torch

from genmodels.commands import main
from tests.cli.common import EXPERIMENTS, TINY, TINY_DCGAN, TINY_GAN, fit

DIGITS = ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "64", "--max_iterations", "2"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _exit_message(capsys, args) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code not in (0, None)
    out = capsys.readouterr()
    return out.err + out.out


def test_missing_dataset_directory_names_the_place_and_the_fix(capsys, tmp_path):
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "dcgan/mnist.yaml"), *TINY, *TINY_DCGAN,
        "--data.init_args.data_dir", str(tmp_path / "nowhere"), "--trainer.default_root_dir", str(tmp_path / "run"),
    ])
    assert str(tmp_path / "nowhere") in message
    assert "train-images-idx3-ubyte" in message and "download" in message
    assert not list((tmp_path / "run").glob("checkpoints/*.ckpt"))


def test_unknown_config_key_is_rejected_before_anything_runs(capsys, tmp_path):
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), "--model.init_args.lerning_rate", "0.1",
        "--trainer.default_root_dir", str(tmp_path / "run"),
    ])
    assert "lerning_rate" in message
    assert not (tmp_path / "run").exists()


def test_unknown_key_in_a_yaml_file_is_rejected(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXPERIMENTS / "dcgan/digits.yaml").read_text() + "\noptimiser: adam\n")
    message = _exit_message(capsys, ["fit", "--config", str(bad)])
    assert "optimiser" in message


def test_image_size_the_model_cannot_produce(capsys, tmp_path):
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, "--data.init_args.image_size", "48",
        "--trainer.default_root_dir", str(tmp_path / "run"),
    ])
    assert "image_size 48" in message and "data.init_args.image_size" in message


def test_checkpoint_of_another_model_class_is_refused_and_kept(capsys, tmp_path):
    gan_run = tmp_path / "gan"
    fit("gan/digits.yaml", gan_run, *TINY_GAN, *DIGITS)
    ckpt = gan_run / "checkpoints/last.ckpt"
    before = _digest(ckpt)
    capsys.readouterr()
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN, *DIGITS,
        "--trainer.default_root_dir", str(tmp_path / "dcgan"), "--ckpt_path", str(ckpt),
    ])
    assert "genmodels.gans.gan.GAN" in message and "genmodels.gans.dcgan.DCGAN" in message
    assert _digest(ckpt) == before
    assert not list((tmp_path / "dcgan").glob("checkpoints/*.ckpt"))


def test_fresh_run_into_a_directory_with_checkpoints_is_refused(capsys, tmp_path):
    run = tmp_path / "run"
    fit("gan/digits.yaml", run, *TINY_GAN, *DIGITS)
    digests = {p.name: _digest(p) for p in (run / "checkpoints").glob("*.ckpt")}
    capsys.readouterr()
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "gan/digits.yaml"), *TINY, *TINY_GAN, *DIGITS,
        "--trainer.default_root_dir", str(run),
    ])
    assert "--ckpt_path last" in message
    assert {p.name: _digest(p) for p in (run / "checkpoints").glob("*.ckpt")} == digests


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("kind", ["truncated", "not_a_checkpoint", "pickle"])
def test_corrupt_and_untrusted_checkpoints_get_different_messages(capsys, tmp_path, kind):
    ckpt = tmp_path / "other.ckpt"
    if kind == "truncated":
        torch.save({"state_dict": {"w": torch.ones(64)}}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:200])
    elif kind == "not_a_checkpoint":
        ckpt.write_bytes(b"PK\x03\x04 truncated")
    else:
        torch.save({"state_dict": {}, "payload": _Evil()}, ckpt, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "gan/digits.yaml"), *TINY, *TINY_GAN, *DIGITS,
        "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", str(ckpt),
    ])
    assert message.count("\n") == 1 and message.startswith("genmodels: error: ")
    message = message.replace(str(ckpt), "<ckpt>")  # the test's own name holds both words
    if kind == "pickle":
        assert "untrusted" in message and "system" in message and "corrupt" not in message
    else:
        assert "corrupt" in message and "untrusted" not in message and "trust" not in message
    assert not Path("pwned").exists()


def _crafted_checkpoint(path: Path, class_path: str) -> Path:
    """Passes genmodels' own class record (DCGAN) but names ``class_path`` for LightningCLI."""
    torch.save({
        "genmodels": {"model_class": "genmodels.gans.dcgan.DCGAN", "iteration": 1, "torch_rng": [torch.get_rng_state()]},
        "hyper_parameters": {"_class_path": class_path, "latent_dim": 8},
        "state_dict": {},
    }, path)
    return path


def test_a_class_path_named_by_a_checkpoint_is_never_imported(capsys, tmp_path, monkeypatch):
    # A module that leaves a file behind if anything imports it.
    marker = tmp_path / "imported.txt"
    (tmp_path / "payload_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = _crafted_checkpoint(tmp_path / "crafted.ckpt", "payload_module.Model")
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN, *DIGITS,
        "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", str(ckpt),
    ])
    assert "payload_module.Model" in message and "genmodels.gans.dcgan.DCGAN" in message
    assert not marker.exists()
    assert "payload_module" not in sys.modules


def test_a_checkpoint_cannot_swap_the_configured_model_class(capsys, tmp_path):
    ckpt = _crafted_checkpoint(tmp_path / "crafted.ckpt", "genmodels.VAE")
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN, *DIGITS,
        "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", str(ckpt),
    ])
    assert "'genmodels.VAE'" in message and "genmodels.gans.dcgan.DCGAN" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_model_on_a_datamodule_without_its_batch_keys(capsys, tmp_path):
    config = tmp_path / "pix2pix_digits.yaml"
    config.write_text(
        "model:\n  class_path: genmodels.Pix2Pix\n  init_args: {ngf: 4, ndf: 4}\n"
        "data:\n  class_path: datamodules.DigitsDataModule\n  init_args: {image_size: 32, batch_size: 16}\n"
    )
    message = _exit_message(capsys, ["fit", "--config", str(config), *TINY, "--max_iterations", "2",
                                     "--trainer.default_root_dir", str(tmp_path / "run")])
    assert [line.startswith("genmodels: error: ") for line in message.splitlines()].count(True) == 1
    assert "Traceback" not in message
    assert re.search(r"Pix2Pix reads batch key '[AB]'", message) and "DigitsDataModule" in message and "'image'" in message
    assert not list((tmp_path / "run").glob("checkpoints/*.ckpt"))


@pytest.mark.parametrize("args, expected", [
    (["--model.init_args.lerning_rate", "0.1"], "Option 'lerning_rate' is not accepted"),
    (["--model.init_args.feature_maps", "many"], 'Parser key "feature_maps"'),
    (["--trainer.precision", "17"], 'Parser key "trainer.precision"'),
    (["--trainer.accelerator", "mps"], "MPSAccelerator"),
    (["--model.init_args.betas", "[1.5, 0.999]"], "betas=(1.5, 0.999) is invalid"),
    (["--ckpt_path", "best"], "--ckpt_path best has no meaning for fit"),
    (["--trainer.default_root_dir", "README.md"], "is a file, not a directory"),
], ids=["unknown-option", "not-an-int", "precision", "accelerator", "betas", "ckpt-best", "run-dir-is-a-file"])
def test_fit_user_errors_are_one_line(capsys, tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("a file\n")
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN, *DIGITS,
              "--trainer.default_root_dir", str(tmp_path / "run"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("genmodels: error: ")]
    assert len(errors) == 1 and expected in errors[0], err
    assert "usage:" not in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_checkpoint_record_without_an_iteration_count_is_refused(capsys, tmp_path):
    ckpt = _crafted_checkpoint(tmp_path / "edited.ckpt", "genmodels.DCGAN")
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["genmodels"]["iteration"] = "many"
    torch.save(checkpoint, ckpt)
    message = _exit_message(capsys, [
        "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, *TINY_DCGAN, *DIGITS,
        "--trainer.default_root_dir", str(tmp_path / "run"), "--ckpt_path", str(ckpt),
    ])
    assert "iteration 'many', not a count" in message
