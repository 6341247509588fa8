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
    main(["compare", str(wandb_run), str(csv_run), "--out", str(tmp_path / "cmp.png")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:4] == ["run", "iteration", "train/loss_d", "train/loss_g"]
    rows = [line.split("\t") for line in lines[1:3]]
    assert [r[0] for r in rows] == [str(wandb_run), str(csv_run)] and all(r[1] == "4" for r in rows)
    assert all(float(r[2]) > 0 for r in rows)
    image = Image.open(tmp_path / "cmp.png")
    assert image.size[0] == 720 and len(set(image.getdata())) > 3  # curves were drawn
