"""Autoencoder view callbacks: PNG, GIF and logged pictures, the training RNG and mode untouched."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger

from datamodules import DigitsDataModule
from genmodels.callbacks import LatentInterpolation, LatentMap, ReconstructionGrid, log_image
from tests.genmodels.autoencoders.helpers import digit_images, tiny_ae, tiny_vae, train


class _Recorder:
    """Stands in for a SummaryWriter: every method call is recorded (and returns the recorder)."""

    def __init__(self) -> None:
        self.calls: list = []

    def __getattr__(self, name: str):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return self

        return record


class RecordingTensorBoardLogger(TensorBoardLogger):
    """A TensorBoardLogger whose writer records the calls instead of writing event files."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self._experiment = _Recorder()

    @property
    def calls(self) -> list:
        return self._experiment.calls


def test_view_callbacks_write_png_gif_and_log_uint8(tmp_path):
    torch.manual_seed(0)
    logger = RecordingTensorBoardLogger(tmp_path)
    callbacks = [
        ReconstructionGrid(every_n_iterations=2, num_images=6, nrow=3),
        LatentInterpolation(every_n_iterations=0, num_pairs=2, steps=4, method="spherical"),
        LatentMap(every_n_iterations=0, num_images=50),
    ]
    train(tiny_vae(), DigitsDataModule(image_size=16, batch_size=16), 3, tmp_path, callbacks, logger=logger)
    assert sorted(p.name for p in (tmp_path / "reconstructions").iterdir()) == ["iter_00000002.png", "iter_00000003.png"]
    assert sorted(p.name for p in (tmp_path / "interpolations").iterdir()) == ["iter_00000003.gif", "iter_00000003.png"]
    gif = Image.open(tmp_path / "interpolations/iter_00000003.gif")
    assert gif.n_frames == 2 * 4 - 2  # forth and back
    assert np.asarray(Image.open(tmp_path / "interpolations/iter_00000003.png")).shape == (2 * 18 + 2, 4 * 18 + 2, 3)
    assert (tmp_path / "latent_maps/iter_00000003.png").is_file() and callbacks[2].last_kind == "pca"
    images = [(a[0], k["global_step"], a[1]) for name, a, k in logger.calls if name == "add_image"]
    assert [(key, step) for key, step, _ in images] == [
        ("samples/reconstructions", 2), ("samples/reconstructions", 3), ("samples/interpolation", 3), ("samples/latent_map", 3),
    ]
    assert all(picture.dtype == torch.uint8 and picture.shape[0] == 3 for _, _, picture in images)
    saved = np.asarray(Image.open(tmp_path / "reconstructions/iter_00000003.png"))
    assert np.array_equal(saved, images[1][2].permute(1, 2, 0).numpy())  # the file is the logged picture


def test_views_leave_the_training_rng_and_mode_alone(tmp_path):
    model = tiny_vae()
    trainer = SimpleNamespace(is_global_zero=True, default_root_dir=str(tmp_path), loggers=[],
                              datamodule=DigitsDataModule(image_size=16, batch_size=8))
    model.train()
    state = torch.get_rng_state()
    path = ReconstructionGrid(num_images=4).write(trainer, model)
    assert path.is_file() and torch.equal(torch.get_rng_state(), state) and model.training


def test_log_image_sends_the_uint8_picture_unchanged():
    logger = RecordingTensorBoardLogger(".")
    picture = torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8)
    log_image(logger, "samples/x", picture, 7)
    assert logger.calls == [("add_image", ("samples/x", picture), {"global_step": 7})]
