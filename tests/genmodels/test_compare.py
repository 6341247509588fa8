"""`genmodels compare` reads runs back from disk (offline W&B and CSV) into a table and a plot."""

from PIL import Image

from genmodels.commands import main
from genmodels.runs import run_history
from tests.cli.common import TINY_GAN, fit
from tests.wandb_records import wait_until_closed

ARGS = [*TINY_GAN, "--data.init_args.image_size", "16", "--data.init_args.batch_size", "64", "--max_iterations", "4",
        "--sample_grid.every_n_iterations", "0"]


def test_compare_offline_wandb_and_csv_runs(tmp_path, capsys):
    wandb_run, csv_run = tmp_path / "a", tmp_path / "b"
    fit("gan/digits.yaml", wandb_run, *ARGS)
    fit("gan/digits.yaml", csv_run, *ARGS, "--model.init_args.lr_d", "1e-3",
        "--trainer.logger", "pytorch_lightning.loggers.CSVLogger", "--trainer.logger.save_dir", str(csv_run))
    for log in wandb_run.glob("wandb/offline-run-*/run-*.wandb"):
        wait_until_closed(log)
    assert [r["iteration"] for r in run_history(wandb_run) if "train/loss_d" in r] == [2, 4]
    capsys.readouterr()
    main(["compare", str(wandb_run), str(csv_run), "--out", str(tmp_path / "cmp.png"), "--keys", "train/loss_d,train/loss_g"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:4] == ["run", "iteration", "train/loss_d", "train/loss_g"]
    rows = [line.split("\t") for line in lines[1:3]]
    assert [r[0] for r in rows] == [str(wandb_run), str(csv_run)] and all(r[1] == "4" for r in rows)
    assert all(float(r[2]) > 0 for r in rows)
    image = Image.open(tmp_path / "cmp.png")
    assert image.size[0] == 720 and len(set(image.getdata())) > 3  # curves were drawn


VAE = ["--model.init_args.hidden_channels", "[8, 16]", "--model.init_args.latent_dim", "4", "--data.init_args.image_size", "16",
       "--data.init_args.batch_size", "64", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
       "--trainer.check_val_every_n_epoch", "1", "--max_iterations", "4", "--sample_grid.every_n_iterations", "0",
       "--trainer.callbacks", "[]"]


def test_compare_a_gan_and_a_vae_on_each_ones_metric(tmp_path, capsys):
    gan, vae = tmp_path / "gan", tmp_path / "vae"
    fit("gan/digits.yaml", gan, *ARGS)
    fit("vae/digits.yaml", vae, *VAE)
    for log in tmp_path.glob("*/wandb/offline-run-*/run-*.wandb"):
        wait_until_closed(log)
    capsys.readouterr()
    main(["compare", str(gan), str(vae), "--keys", "train/loss_g,val/bits_per_dim", "--out", str(tmp_path / "c.png")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["run", "iteration", "train/loss_g", "val/bits_per_dim"]
    gan_row, vae_row = (line.split("\t") for line in lines[1:3])
    assert gan_row[1] == vae_row[1] == "4"
    assert float(gan_row[2]) > 0 and gan_row[3] == "-"  # a GAN logs no bits/dim
    assert vae_row[2] == "-" and 0 < float(vae_row[3]) < 20  # the VAE's bits/dim of 8-bit images
    vae_bpd = [r["val/bits_per_dim"] for r in run_history(vae) if "val/bits_per_dim" in r]
    assert float(vae_row[3]) == float(f"{vae_bpd[-1]:.4g}")  # the last logged value, as W&B's runs table
    # Without --keys: every metric either run logs is a column (W&B's runs table).
    main(["compare", str(gan), str(vae), "--out", str(tmp_path / "d.png")])
    header = capsys.readouterr().out.splitlines()[0].split("\t")
    assert {"train/loss_d", "train/loss_g", "train/elbo", "val/bits_per_dim", "val/kl"} <= set(header)
    assert "_step" not in header and "trainer/global_step" not in header


class _FakeRun:
    def __init__(self, rows):
        self.rows = rows

    def scan_history(self):
        return iter(self.rows)


class _FakeApi:
    """Stands in for wandb.Api: what `genmodels compare` asks of it is ``run(path).scan_history()``."""

    def __init__(self, runs):
        self.runs, self.asked = runs, []

    def run(self, path):
        self.asked.append(path)
        return self.runs[path]


def test_compare_reads_wandb_runs_through_the_public_api(tmp_path, capsys):
    from genmodels.commands import build_parser
    from genmodels.commands import compare

    api = _FakeApi({
        "me/genmodels/abc123": _FakeRun([{"_step": 0, "iteration": 50, "train/loss_g": 2.0},
                                        {"_step": 1, "iteration": 100, "train/loss_g": 1.5, "val/fid_lenet": 30.0}]),
        "me/genmodels/def456": _FakeRun([{"_step": 0, "iteration": 100, "val/bits_per_dim": 1.25}]),
    })
    args = build_parser().parse_args(["compare", "me/genmodels/abc123", "me/genmodels/def456", "--out",
                                      str(tmp_path / "api.png"), "--keys", "train/loss_g,val/fid_lenet,val/bits_per_dim"])
    result = compare.run(args, api=api)
    assert api.asked == ["me/genmodels/abc123", "me/genmodels/def456"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["run", "iteration", "train/loss_g", "val/fid_lenet", "val/bits_per_dim",
                                    "val/fid_lenet best", "val/fid_lenet best@iteration"]
    assert lines[1].split("\t") == ["me/genmodels/abc123", "100", "1.5", "30", "-", "30", "100"]
    assert lines[2].split("\t") == ["me/genmodels/def456", "100", "-", "-", "1.25", "-", "-"]
    assert result["plot"].is_file()


def test_axis_ticks_are_round_and_cover_the_data():
    from genmodels.compare import nice_ticks

    assert nice_ticks(0, 100) == [0, 25, 50, 75, 100] or nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    ticks = nice_ticks(0.37, 2.9)
    assert ticks[0] <= 0.37 and ticks[-1] >= 2.9 and 3 <= len(ticks) <= 7
    assert nice_ticks(5, 5)[0] <= 5 <= nice_ticks(5, 5)[-1]


def test_a_run_that_is_neither_a_directory_nor_a_wandb_path_is_one_line(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as exit:
        main(["compare", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png")])
    assert exit.value.code == 2
    assert "is not a run directory or a W&B run path" in capsys.readouterr().err
