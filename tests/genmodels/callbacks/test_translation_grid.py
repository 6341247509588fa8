"""TranslationGrid: one row per fixed val pair, A | G(A) | B (CycleGAN: with reconstructions), PNG files."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from datamodules import PairedImageDataModule, UnpairedImageDataModule
from datamodules.synthetic_translation import write_edges2shapes, write_red2blue
from genmodels import CycleGAN, Pix2Pix
from genmodels.callbacks import StopAtIteration, TranslationGrid
from genmodels.images import to_uint8
from tests.genmodels.apps.control_helpers import single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def run(model, dm, tmp_path, grid):
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
                         default_root_dir=tmp_path / "run", callbacks=[StopAtIteration(2), grid])
    trainer.fit(model, datamodule=dm)
    return sorted((tmp_path / "run" / "translations").glob("*.png"))


def test_pix2pix_grid_rows_are_a_translation_and_target(tmp_path):
    write_edges2shapes(tmp_path, {"train": 4, "val": 3}, size=32)
    dm = PairedImageDataModule("edges2shapes", data_dir=str(tmp_path), image_size=32, batch_size=2)
    paths = run(Pix2Pix(image_shape=(3, 32, 32), ngf=4, ndf=4), dm, tmp_path, TranslationGrid(every_n_iterations=1, num_images=3))
    assert [p.name for p in paths] == ["iter_00000001.png", "iter_00000002.png"]
    grid = np.asarray(Image.open(paths[-1]))
    assert grid.shape == (3 * 34 + 2, 3 * 34 + 2, 3)  # 3 rows x (A, G(A), B), 32 px cells, 2 px padding
    batch = dm.example_batch(3)
    first_a, last_b = grid[2:34, 2:34], grid[2 + 2 * 34:2 + 2 * 34 + 32, 2 + 2 * 34:2 + 2 * 34 + 32]
    assert np.array_equal(first_a, to_uint8(batch["A"])[0].permute(1, 2, 0).numpy())
    assert np.array_equal(last_b, to_uint8(batch["B"])[2].permute(1, 2, 0).numpy())


def test_cyclegan_grid_has_both_directions_and_reconstructions(tmp_path):
    write_red2blue(tmp_path, {"trainA": 4, "trainB": 4, "testA": 2, "testB": 2}, size=32)
    dm = UnpairedImageDataModule("red2blue", data_dir=str(tmp_path), image_size=32, batch_size=2)
    model = CycleGAN(image_shape=(3, 32, 32), ngf=4, ndf=4, n_blocks=1, pool_size=2)
    (path,) = run(model, dm, tmp_path, TranslationGrid(every_n_iterations=0, num_images=2))
    assert np.asarray(Image.open(path)).shape == (2 * 34 + 2, 6 * 34 + 2, 3)


def test_needs_a_translation_datamodule():
    with pytest.raises(ValueError, match="translation datamodule"):
        TranslationGrid().on_fit_start(type("T", (), {"datamodule": object()})(), None)
