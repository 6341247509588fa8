"""Views: interpolation endpoints, slerp, latent maps (grid and PCA fallback), grids, callbacks writing files."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger

from datamodules import DigitsDataModule
from genmodels.autoencoders.views import (
    LatentInterpolation,
    LatentMap,
    ReconstructionGrid,
    interpolate,
    interpolation_frames,
    latent_map,
    log_image,
    pca_2d,
    reconstruction_grid,
)
from genmodels.images import to_uint8
from tests.genmodels.autoencoders.helpers import digit_images, tiny_ae, tiny_vae, train


@pytest.mark.parametrize("make", [tiny_ae, tiny_vae], ids=["ae", "vae"])
@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_interpolation_endpoints_decode_to_the_reconstructions_of_the_endpoints(make, method):
    torch.manual_seed(0)
    model = make().eval()
    images, _ = digit_images(6)
    frames = interpolation_frames(model, images[:3], images[3:], steps=7, method=method)
    assert frames.shape == (3, 7, 1, 16, 16)
    reconstructions = model.reconstruct(images)
    assert torch.allclose(frames[:, 0], reconstructions[:3], atol=1e-6)
    assert torch.allclose(frames[:, -1], reconstructions[3:], atol=1e-6)
    path = interpolate(model.encode(images[:3]), model.encode(images[3:]), 7, method)
    assert torch.allclose(frames[:, 3], model.decode(path[:, 3]), atol=1e-6)  # the middle decodes the path's middle


def test_slerp_keeps_the_norm_of_unit_vectors_and_linear_does_not():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    spherical, linear = interpolate(a, b, 3, "spherical"), interpolate(a, b, 3, "linear")
    assert torch.allclose(spherical[0, 1], torch.tensor([2**-0.5, 2**-0.5]))
    assert torch.allclose(linear[0, 1], torch.tensor([0.5, 0.5]))
    assert torch.allclose(interpolate(a, 2 * a, 5, "spherical"), interpolate(a, 2 * a, 5, "linear"))  # parallel: a line
    with pytest.raises(ValueError, match="steps >= 2"):
        interpolate(a, b, 1)
    with pytest.raises(ValueError, match="'linear' or 'spherical'"):
        interpolate(a, b, 3, "cubic")


def test_latent_map_decodes_a_grid_for_two_dimensions_and_projects_otherwise():
    torch.manual_seed(0)
    images, labels = digit_images(40)
    kind, grid = latent_map(tiny_vae(latent_dim=2).eval(), grid_size=5)
    assert kind == "grid" and grid.dtype == torch.uint8 and grid.shape == (3, 5 * 16, 5 * 16)

    kind, plot = latent_map(tiny_vae(latent_dim=6).eval(), images, labels)  # latent_dim > 2: no failure
    assert kind == "pca" and plot.dtype == torch.uint8 and plot.shape[0] == 3
    colours = {tuple(c) for c in plot.permute(1, 2, 0).reshape(-1, 3).tolist()}
    from genmodels.autoencoders.views import PALETTE

    assert {PALETTE[int(label)] for label in labels.unique()} <= colours  # one colour per digit present
    assert latent_map(tiny_ae(latent_dim=1).eval(), images)[0] == "pca"  # even a 1-D code
    with pytest.raises(ValueError, match="pass >= 2 images"):
        latent_map(tiny_vae(latent_dim=6))


def test_pca_finds_the_principal_axis():
    t = torch.linspace(-1, 1, 50)
    codes = torch.stack([t, 2 * t, torch.zeros(50), 0.01 * torch.sin(7 * t)], dim=1) + 3
    points, share = pca_2d(codes)
    assert share[0] > 0.999 and torch.allclose(points[:, 0].abs(), (5**0.5 * t).abs(), atol=1e-4)


def test_reconstruction_grid_puts_each_row_of_inputs_above_its_reconstructions():
    model = tiny_ae().eval()
    images, _ = digit_images(6)
    grid = reconstruction_grid(model, images, nrow=4)
    tile = lambda row, col: grid[:, 2 + row * 18 : 18 + row * 18, 2 + col * 18 : 18 + col * 18]  # noqa: E731
    assert grid.shape == (3, 4 * 18 + 2, 4 * 18 + 2)  # rows: in 0-3, out 0-3, in 4-5, out 4-5
    outputs = model.reconstruct(images)
    assert torch.equal(tile(0, 1)[0], to_uint8(images[1])[0]) and torch.equal(tile(1, 1)[0], to_uint8(outputs[1])[0])
    assert torch.equal(tile(2, 1)[0], to_uint8(images[5])[0]) and torch.equal(tile(3, 1)[0], to_uint8(outputs[5])[0])
    assert int(tile(2, 3).max()) == 0  # padding after the last input stays black


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
