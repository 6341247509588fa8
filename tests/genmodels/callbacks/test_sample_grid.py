"""SampleGrid: fixed noise, explicit [-1, 1] -> [0, 255] mapping, no effect on training RNG."""

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image

from genmodels import GAN
from genmodels.callbacks import SampleGrid, StopAtIteration
from genmodels.images import to_uint8, uint8_grid
from tests.genmodels.helpers import loader


def test_uint8_mapping_is_explicit_not_min_max():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 3.0]).view(1, 1, 2, 3)
    assert to_uint8(x).flatten().tolist() == [0, 64, 128, 191, 255, 255]
    grid = uint8_grid(torch.zeros(4, 1, 8, 8), nrow=2)
    assert grid.dtype == torch.uint8 and grid.shape == (3, 2 * 8 + 6, 2 * 8 + 6)
    assert grid[:, 2:10, 2:10].unique().tolist() == [128]  # zeros stay mid-grey, never stretched


def test_grids_use_fixed_noise_and_leave_training_rng_alone(tmp_path):
    model = GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(8,))
    callback = SampleGrid(every_n_iterations=1, num_samples=4, seed=7)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        default_root_dir=tmp_path, callbacks=[callback, StopAtIteration(2)], max_epochs=-1,
    )
    trainer.fit(model, loader(16, (1, 8, 8), 4))
    pngs = sorted((tmp_path / "samples").glob("*.png"))
    assert [p.name for p in pngs] == ["iter_00000001.png", "iter_00000002.png"]
    image = np.asarray(Image.open(pngs[-1]))
    assert image.dtype == np.uint8 and image.shape == (2 * 8 + 6, 2 * 8 + 6, 3)

    # The same model and seed give the same grid: the noise is fixed.
    state = torch.get_rng_state()
    again = callback._sample(model)
    assert torch.equal(torch.get_rng_state(), state)  # the global stream did not move
    expected = uint8_grid(again).permute(1, 2, 0).numpy()
    assert np.array_equal(image, expected)
