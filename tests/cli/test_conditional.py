"""The cGAN experiments through the CLI: class grids in the run directory, num_classes checked at fit."""

import pytest
from PIL import Image

from tests.cli.common import fit

TINY_CGAN = ["--model.init_args.feature_maps", "4", "--model.init_args.latent_dim", "8", "--data.init_args.batch_size", "8",
             "--data.init_args.image_size", "16", "--trainer.logger", "false"]


def test_digits_experiment_writes_a_grid_with_one_row_per_class(tmp_path):
    run = tmp_path / "run"
    fit("cgan/digits.yaml", run, *TINY_CGAN, "--max_iterations", "2")
    grid = Image.open(run / "samples/classes/iter_00000002.png")
    assert grid.size == (10 * 18 + 2, 10 * 18 + 2)  # 10 classes x 10 samples of 16 px
    assert (run / "samples/iter_00000002.png").is_file()


def test_num_classes_that_differ_from_the_data_are_refused(tmp_path, capsys):
    # The CLI reports a ConditionError as one line and exits 2, like other bad inputs.
    with pytest.raises(SystemExit) as exc:
        fit("cgan/digits.yaml", tmp_path / "run", *TINY_CGAN, "--model.init_args.num_classes", "5", "--max_iterations", "1")
    assert exc.value.code == 2
    assert "num_classes=5 but DigitsDataModule has 10 classes; set --model.init_args.num_classes 10" in capsys.readouterr().err
