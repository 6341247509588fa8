"""genmodels anomaly: scores, metrics, report and histogram, bad inputs, and the digits 0-4 vs 5-9 run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from datamodules import DigitsDataModule
from genmodels.apps.anomaly import detection_metrics, parse_classes, run_anomaly
from genmodels.commands import main
from tests.cli.common import EXPERIMENTS, TINY
from tests.genmodels.autoencoders.helpers import tiny_ae, tiny_vae, train

DIGITS_16 = {"data": {"class_path": "datamodules.DigitsDataModule", "init_args": {"image_size": 16}}}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: single-threaded torch (see tests/genmodels/autoencoders/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny AE and VAE checkpoint (a few steps on digits 0-4) and a config naming their data."""
    root = tmp_path_factory.mktemp("anomaly")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: see _one_thread
    paths = {}
    for name, model in (("ae", tiny_ae()), ("vae", tiny_vae())):
        trainer = train(model, DigitsDataModule(image_size=16, batch_size=16), 2, root / name)
        trainer.save_checkpoint(root / f"{name}.ckpt")
        paths[name] = root / f"{name}.ckpt"
    paths["config"] = root / "digits.yaml"
    paths["config"].write_text(yaml.safe_dump(DIGITS_16))
    torch.set_num_threads(threads)
    return paths


def test_parse_classes_accepts_lists_and_ranges():
    assert parse_classes("0,1,2,3,4") == parse_classes("0-4") == parse_classes(" 4, 0-3 ") == [0, 1, 2, 3, 4]
    for bad in ("", "a", "1,,x"):
        with pytest.raises(ValueError, match="--normal"):
            parse_classes(bad)


def test_detection_metrics_of_perfect_reversed_and_tied_scores():
    anomalous = np.array([0, 0, 1, 1, 1])
    assert detection_metrics(np.array([0.1, 0.2, 0.8, 0.9, 1.0]), anomalous) == {"roc_auc": 1.0, "pr_auc": 1.0, "pr_auc_chance": 0.6}
    assert detection_metrics(np.array([0.9, 0.8, 0.1, 0.2, 0.0]), anomalous)["roc_auc"] == 0.0
    assert detection_metrics(np.ones(5), anomalous)["roc_auc"] == 0.5


def test_report_histogram_and_scores_of_both_models(checkpoints, tmp_path):
    report = run_anomaly(str(checkpoints["vae"]), [0, 1, 2, 3, 4], str(tmp_path / "vae.json"), config=str(checkpoints["config"]))
    assert report["score"] == "elbo" and report["anomalous_classes"] == [5, 6, 7, 8, 9]
    assert report["num_normal"] + report["num_anomalous"] == 180  # the digits hold-out
    assert 0 <= report["roc_auc"] <= 1 and 0 <= report["pr_auc"] <= 1
    assert json.loads((tmp_path / "vae.json").read_text()) == report
    histogram = np.asarray(Image.open(tmp_path / "vae.png"))
    assert histogram.shape == (360, 640, 3) and report["histogram"] == str(tmp_path / "vae.png")

    ae = run_anomaly(str(checkpoints["ae"]), [0, 1], str(tmp_path / "ae.json"), config=str(checkpoints["config"]),
                     histogram=str(tmp_path / "hist.png"))
    assert ae["score"] == "reconstruction" and ae["normal_classes"] == [0, 1] and (tmp_path / "hist.png").is_file()
    recon = run_anomaly(str(checkpoints["vae"]), [0, 1], str(tmp_path / "r.json"), score="reconstruction",
                        config=str(checkpoints["config"]))
    assert recon["score"] == "reconstruction" and recon["score_normal"]["mean"] > 0


def test_bad_inputs_are_clear_errors(checkpoints, tmp_path, capsys):
    config, vae = str(checkpoints["config"]), str(checkpoints["vae"])
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        run_anomaly(str(tmp_path / "missing.ckpt"), [0], "r.json")
    with pytest.raises(ValueError, match="does not record its datamodule"):
        run_anomaly(vae, [0], "r.json")  # saved by a plain Trainer: no class path of its datamodule
    with pytest.raises(ValueError, match="nothing is anomalous"):
        run_anomaly(vae, list(range(10)), "r.json", config=config)
    with pytest.raises(ValueError, match=r"normal classes \[12\] do not occur"):
        run_anomaly(vae, [0, 12], "r.json", config=config)
    with pytest.raises(ValueError, match="'elbo' needs a VAE"):
        run_anomaly(str(checkpoints["ae"]), [0], "r.json", score="elbo", config=config)
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text(yaml.safe_dump({"data": {"class_path": "os.system", "init_args": {}}}))
    with pytest.raises(ValueError, match="is not one genmodels builds"):
        run_anomaly(vae, [0], "r.json", config=str(bad_config))

    # Through the command: status 2 and the message, no traceback.
    with pytest.raises(SystemExit) as exit_info:
        main(["anomaly", "--ckpt", vae, "--normal", "0-9", "--out", "r.json", "--config", config])
    assert exit_info.value.code == 2 and "nothing is anomalous" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["anomaly", "--ckpt", "missing.ckpt", "--normal", "0", "--out", "r.json"])
    assert exit_info.value.code == 2 and "checkpoint not found" in capsys.readouterr().err


def test_conditional_and_non_autoencoder_models_are_refused(tmp_path, checkpoints):
    from genmodels import GAN

    gan = GAN(image_shape=(1, 16, 16), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(8,))
    for name, model in (("cvae", tiny_vae(num_classes=10)), ("gan", gan)):
        train(model, DigitsDataModule(image_size=16, batch_size=16), 1, tmp_path / name).save_checkpoint(tmp_path / f"{name}.ckpt")
    with pytest.raises(ValueError, match="conditional model"):
        run_anomaly(str(tmp_path / "cvae.ckpt"), [0], "r.json", config=str(checkpoints["config"]))
    with pytest.raises(ValueError, match="needs an autoencoder"):
        run_anomaly(str(tmp_path / "gan.ckpt"), [0], "r.json", config=str(checkpoints["config"]))


@pytest.mark.slow
def test_vae_trained_on_digits_0_to_4_detects_5_to_9(tmp_path, capsys):
    """The issue's figure, through the commands a user runs: fit on 0-4 (16 px, 300 iterations), then score."""
    run = tmp_path / "run"
    main(["fit", "--config", str(EXPERIMENTS / "vae/digits_anomaly.yaml"), "--trainer.default_root_dir", str(run), *TINY,
          "--trainer.logger", "false", "--data.init_args.image_size", "16", "--model.init_args.hidden_channels", "[16, 32]",
          "--max_iterations", "300", "--checkpoint.every_n_iterations", "0", "--sample_grid.every_n_iterations", "0"])
    report_path = tmp_path / "report.json"
    main(["anomaly", "--ckpt", str(run / "checkpoints/last.ckpt"), "--normal", "0,1,2,3,4", "--out", str(report_path)])
    report = json.loads(report_path.read_text())
    assert "ROC-AUC" in capsys.readouterr().out and (tmp_path / "report.png").is_file()
    with capsys.disabled():
        print(f"ROC-AUC {report['roc_auc']:.3f}, PR-AUC {report['pr_auc']:.3f} ({report['score']}, {report['iteration']} iterations)")
    assert report["trained_classes"] == [0, 1, 2, 3, 4] and report["anomalous_classes"] == [5, 6, 7, 8, 9]
    assert report["iteration"] == 300 and report["score"] == "elbo"
    assert report["roc_auc"] >= 0.8 and report["pr_auc"] >= 0.8
