"""Style-based generator tools: mixing grid, truncation sweep, Z/W interpolation, PPL, the commands."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from genmodels import StyleGAN2
from genmodels.apps.export import export_weights
from genmodels.apps.generation import generate
from genmodels.apps.style import (
    perceptual_path_length,
    style_layer_ranges,
    style_mixing_grid,
    truncation_grid,
    vgg16_weights_path,
    z_interpolation_frames,
)
from genmodels.cli import main

TINY = dict(image_shape=(1, 16, 16), latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = StyleGAN2(**TINY).eval()
    with torch.no_grad():
        m.generator_ema.w_avg.normal_()
    return m


def test_layer_ranges_follow_the_paper_at_64px_and_up():
    assert style_layer_ranges(1024) == {"coarse": range(0, 4), "middle": range(4, 8), "fine": range(8, 18)}
    assert style_layer_ranges(16) == {"coarse": range(0, 2), "middle": range(2, 4), "fine": range(4, 6)}


def test_mixing_grid_copies_the_column_styles_at_the_chosen_layers(model):
    grid = style_mixing_grid(model, [0, 1], [5, 6, 7], "coarse")
    assert grid.shape == (3 * 4, 1, 16, 16)
    assert torch.all(grid[0] == -1)  # blank corner
    torch.testing.assert_close(grid[1:4], torch.cat([generate(model, 1, s) for s in (5, 6, 7)]))  # column images B
    torch.testing.assert_close(grid[4], generate(model, 1, 0)[0])  # row image A
    # Cell (A = seed 0, B = seed 5): A's w everywhere except the coarse layers, which take B's.
    w_a, w_b = (model.mapping(model.sample_latent(1, torch.Generator().manual_seed(s))) for s in (0, 5))
    ws = w_a[:, None].repeat(1, model.num_ws, 1)
    ws[:, 0:2] = w_b[:, None]
    torch.testing.assert_close(grid[5], model.synthesis(ws)[0])
    assert not torch.allclose(grid[5], grid[4]) and not torch.allclose(grid[5], grid[1])


def test_truncation_grid_rows_are_seeds_and_psi_zero_is_the_average(model):
    grid = truncation_grid(model, [0, 1], [0.0, 1.0])
    torch.testing.assert_close(grid[0], grid[2])  # psi 0: the same image for both seeds
    torch.testing.assert_close(grid[1], generate(model, 1, 0)[0])
    torch.testing.assert_close(grid[3], generate(model, 1, 1)[0])


def test_z_interpolation_ends_are_the_seeds_images(model):
    frames = z_interpolation_frames(model, 0, 1, steps=4, n=2)
    assert frames.shape == (4, 2, 1, 16, 16)
    torch.testing.assert_close(frames[0], generate(model, 2, 0))
    torch.testing.assert_close(frames[-1], generate(model, 2, 1))


class _L2(torch.nn.Module):
    def forward(self, a, b):
        return (a - b).pow(2).flatten(1).mean(1)


def test_ppl_with_a_given_similarity_net_and_a_clear_error_without_vgg(model, monkeypatch, tmp_path):
    values = perceptual_path_length(model, "w", num_samples=16, batch_size=8, sim_net=_L2())
    assert values["ppl_w"] > 0 and set(values) == {"ppl_w", "ppl_w_std", "num_samples", "epsilon"}
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not vgg16_weights_path().is_file()
    with pytest.raises(FileNotFoundError, match="VGG16"):
        perceptual_path_length(model, "w", num_samples=16)


def test_commands_write_grids_and_gifs(model, tmp_path: Path, capsys):
    ckpt = export_weights(model, tmp_path / "g.pt")
    main(["style-mix", "--ckpt", str(ckpt), "--rows", "0", "1", "--cols", "2", "3", "4", "--styles", "fine",
          "--out", str(tmp_path / "mix.png"), "--device", "cpu"])
    assert Image.open(tmp_path / "mix.png").size == (4 * 16 + 5 * 2, 3 * 16 + 4 * 2)
    main(["truncation-grid", "--ckpt", str(ckpt), "--seeds", "0", "--psi", "0", "0.5", "1", "--out", str(tmp_path / "t.png"),
          "--device", "cpu"])
    assert (tmp_path / "t.png").is_file()
    for space in ("z", "w"):
        main(["interpolate", "--ckpt", str(ckpt), "--space", space, "--steps", "3", "--out", str(tmp_path / f"{space}.gif"),
              "--device", "cpu"])
        assert Image.open(tmp_path / f"{space}.gif").n_frames == 3
    with pytest.raises(SystemExit) as err:
        main(["style-mix", "--ckpt", str(ckpt), "--out", str(tmp_path / "mix.jpg"), "--device", "cpu"])
    assert err.value.code == 2 and "must end in .png" in capsys.readouterr().err
