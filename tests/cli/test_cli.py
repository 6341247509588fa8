"""The genmodels command itself: config printing, `python -m`, logger swaps, W&B contents."""

import subprocess
import sys

import pytest
import yaml
from PIL import Image

from genmodels.commands import main
from tests.cli.common import EXPERIMENTS, ROOT, TINY_GAN, fit
from tests.wandb_records import history, wait_until_closed

DIGITS = ["--data.init_args.image_size", "16", "--data.init_args.batch_size", "64"]


def test_print_config_resolves_without_repeating_datamodule_properties(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), "--print_config"])
    assert exc.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"] == "genmodels.DCGAN"
    assert "image_shape" not in config["model"]["init_args"]  # linked from data.image_shape
    assert config["trainer"]["logger"]["class_path"] == "genmodels.loggers.WandbLogger"
    assert config["checkpoint"]["every_n_iterations"] == 200 and config["max_iterations"] == 1500


def test_python_dash_m_is_the_same_program():
    result = subprocess.run([sys.executable, "-m", "genmodels", "fit", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    assert "--max_iterations" in result.stdout and "--checkpoint.every_n_iterations" in result.stdout


def test_wandb_offline_run_holds_losses_and_a_sample_image(tmp_path, capsys):
    run = tmp_path / "run"
    fit("gan/digits.yaml", run, *TINY_GAN, *DIGITS, "--max_iterations", "4", "--sample_grid.every_n_iterations", "2")
    out = capsys.readouterr().out
    assert "wandb sync" in out  # no credentials in tests: offline, with the upload command
    (log,) = run.glob("wandb/offline-run-*/run-*.wandb")
    wait_until_closed(log)
    rows = history(log)
    losses = [r for r in rows if "train/loss_d" in r]
    assert losses and all("train/loss_g" in r and "iteration" in r for r in losses), rows
    assert [r["iteration"] for r in losses] == [2, 4]
    images = [r for r in rows if r.get("samples/_type") == "image-file"]
    assert [r["iteration"] for r in images] == [2, 4]
    png = log.parent / "files" / images[-1]["samples/path"]
    assert Image.open(png).mode == "RGB"
    # The logged grid is the one saved in the run directory, pixel for pixel.
    assert list(Image.open(png).getdata()) == list(Image.open(run / "samples/iter_00000004.png").getdata())


def test_csv_logger_swap(tmp_path):
    run = tmp_path / "run"
    fit("gan/digits.yaml", run, *TINY_GAN, *DIGITS, "--max_iterations", "4",
        "--trainer.logger", "pytorch_lightning.loggers.CSVLogger", "--trainer.logger.save_dir", str(run))
    (metrics,) = run.glob("**/metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    assert {"train/loss_d", "train/loss_g", "iteration"} <= set(header)
    assert not (run / "wandb").exists()
