"""Images and figures: the fixed pixel mapping, the shared frame layout, autoencoder figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.images import (
    PALETTE,
    frame_grids,
    interpolate,
    interpolation_frames,
    latent_map,
    path_grid,
    pca_2d,
    reconstruction_grid,
    save_gif,
    to_uint8,
    uint8_grid,
)
from tests.genmodels.autoencoders.helpers import digit_images, tiny_ae, tiny_vae


@pytest.mark.parametrize("make", [tiny_ae, tiny_vae], ids=["ae", "vae"])
@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_interpolation_endpoints_decode_to_the_reconstructions_of_the_endpoints(make, method):
    torch.manual_seed(0)
    model = make().eval()
    images, _ = digit_images(6)
    frames = interpolation_frames(model, images[:3], images[3:], steps=7, method=method)
    assert frames.shape == (7, 3, 1, 16, 16)  # (steps, pairs, C, H, W)
    reconstructions = model.reconstruct(images)
    assert torch.allclose(frames[0], reconstructions[:3], atol=1e-6)
    assert torch.allclose(frames[-1], reconstructions[3:], atol=1e-6)
    path = interpolate(model.encode(images[:3]), model.encode(images[3:]), 7, method)
    assert torch.allclose(frames[3], model.decode(path[:, 3]), atol=1e-6)  # the middle decodes the path's middle


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




def _frames(steps: int = 4, n: int = 3) -> torch.Tensor:
    """(steps, n, 1, 4, 4) frames whose every pixel encodes (step, path): value = (10 * step + path) / 64 - 1."""
    values = (10 * torch.arange(steps).view(-1, 1) + torch.arange(n).view(1, -1)).float() / 64 - 1
    return values.view(steps, n, 1, 1, 1).expand(steps, n, 1, 4, 4).clone()


def test_gif_frames_and_the_still_grid_share_one_layout(tmp_path):
    frames = _frames()
    grids = frame_grids(frames, nrow=1)  # per step: the 3 paths in a column
    assert len(grids) == 4 and all(g.shape == (3, 3 * 6 + 2, 6 + 2) for g in grids)
    for t, grid in enumerate(grids):
        for i in range(3):
            assert torch.equal(grid[:, 2 + 6 * i : 6 + 6 * i, 2:6], uint8_grid(frames[t, i : i + 1], padding=0))

    still = path_grid(frames)  # path i is row i, step t is column t
    assert still.shape == (3, 3 * 6 + 2, 4 * 6 + 2)
    for t in range(4):
        for i in range(3):
            assert int(still[0, 2 + 6 * i, 2 + 6 * t]) == int(to_uint8(frames[t, i])[0, 0, 0])

    path = save_gif(frames, tmp_path / "a.gif", nrow=1, bounce=True)
    gif = Image.open(path)
    assert gif.n_frames == 2 * 4 - 2  # 0 1 2 3 2 1
    shown = []
    for k in range(gif.n_frames):
        gif.seek(k)
        shown.append(int(np.asarray(gif.convert("L"))[2, 2]))  # path 0's pixel in frame k
    expected = [int(to_uint8(frames[t, 0])[0, 0, 0]) for t in (0, 1, 2, 3, 2, 1)]
    assert shown == expected
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # written atomically, no temp file left
