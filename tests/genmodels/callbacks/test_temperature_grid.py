"""TemperatureGrid: one row per temperature, written and isolated from the training RNG."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from genmodels import Glow
from genmodels.callbacks import StopAtIteration
from genmodels.callbacks import TemperatureGrid
from tests.genmodels.helpers import loader


def test_grid_has_a_row_per_temperature_and_leaves_the_training_rng_alone(tmp_path):
    torch.manual_seed(0)
    model = Glow(image_shape=(1, 8, 8), num_levels=2, steps_per_level=1, hidden_channels=4)
    callback = TemperatureGrid(every_n_iterations=2, temperatures=[0.0, 1.0], samples_per_temperature=3, seed=4)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, max_epochs=-1,
                         callbacks=[callback, StopAtIteration(3)])
    trainer.fit(model, loader(16, (1, 8, 8), 4))
    pngs = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert pngs == ["temperatures_iter_00000002.png", "temperatures_iter_00000003.png"]  # periodic + final

    grid = np.asarray(Image.open(tmp_path / "samples" / pngs[-1]))
    assert grid.shape == (2 * 8 + 3 * 2, 3 * 8 + 4 * 2, 3)  # 2 rows (temperatures) x 3 columns
    tiles = [[grid[2 + r * 10 : 10 + r * 10, 2 + c * 10 : 10 + c * 10] for c in range(3)] for r in range(2)]
    assert all(np.array_equal(tiles[0][0], t) for t in tiles[0])  # T = 0: the mode, three times
    assert not np.array_equal(tiles[1][0], tiles[1][1])  # T = 1: three different draws

    state = torch.get_rng_state()
    rows = callback.sample_rows(model)
    assert torch.equal(torch.get_rng_state(), state) and rows.shape == (6, 1, 8, 8)
    assert model.training  # sampled in eval mode, mode restored


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="temperatures"):
        TemperatureGrid(temperatures=[1.0, -0.5])
    with pytest.raises(ValueError, match="samples_per_temperature"):
        TemperatureGrid(samples_per_temperature=0)
