"""Style-based generator tools: mixing grid, truncation sweep, Z/W interpolation, PPL, the commands."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import StyleGAN, StyleGAN2
from genmodels.apps.export import export_weights
from genmodels.apps.generation import generate
from genmodels.apps.style import (
    PPL_NOISE,
    PPL_NOISE_SEED_OFFSET,
    perceptual_path_length,
    ppl_images,
    ppl_num_samples,
    style_layer_ranges,
    style_mixing_grid,
    truncation_grid,
    unit_slerp,
    vgg16_weights_path,
    within_percentiles,
    z_interpolation_frames,
)
from genmodels.commands import main
from genmodels.commands.ppl import add_parser
from genmodels.errors import InvalidValue

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
    assert values["ppl2_wend"] > 0  # no crop: stylegan2-ada's ppl2_wend
    assert set(values) == {"ppl2_wend", "ppl2_wend_std", "num_samples", "epsilon", "sampling", "crop", "noise"}
    cropped = perceptual_path_length(model, "z", num_samples=16, batch_size=8, sampling="full", crop=True, sim_net=_L2())
    assert "ppl_zfull" in cropped
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not vgg16_weights_path().is_file()
    with pytest.raises(FileNotFoundError, match="VGG16"):
        perceptual_path_length(model, "w", num_samples=16)


def test_ppl_defaults_are_the_authors_protocol():
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(perceptual_path_length).parameters.items()}
    # Both codes redraw the noise per minibatch; the pair count follows the model (see below).
    assert (defaults["num_samples"], defaults["epsilon"], defaults["noise"]) == (None, 1e-4, "per_batch")


@pytest.fixture(scope="module")
def noisy_models():
    """Tiny StyleGAN (v1) and StyleGAN2 with non-zero noise strengths (a fresh model's are 0: noise-free)."""
    models = {}
    for architecture in ("stylegan", "stylegan2"):
        torch.manual_seed(0)
        m = StyleGAN(**TINY, architecture=architecture, growing=False).eval()
        with torch.no_grad():
            for layer in m.sampling_generator.modules():
                if hasattr(layer, "const_noise"):
                    layer.noise.weight.normal_(0.0, 0.5)
        models[architecture] = m
    return models


def test_ppl_pair_count_defaults_to_the_authors_of_the_architecture(noisy_models, monkeypatch):
    # NVlabs/stylegan metric_base.py: ppl_* num_samples=100000; stylegan2-ada metric_main.py: 50000.
    assert ppl_num_samples(noisy_models["stylegan"]) == 100_000
    assert ppl_num_samples(noisy_models["stylegan2"]) == 50_000
    monkeypatch.setattr("genmodels.apps.style.PPL_SAMPLES", {"stylegan": 6, "stylegan2": 4})  # the same rule, cheaply
    for architecture, n in (("stylegan", 6), ("stylegan2", 4)):
        values = perceptual_path_length(noisy_models[architecture], "w", batch_size=4, sim_net=_L2())
        assert (values["num_samples"], values["noise"]) == (n, "per_batch")


def test_ppl_refuses_an_unknown_noise_in_one_line(model):
    with pytest.raises(InvalidValue, match=r"^noise must be 'per_batch' or 'const', got 'random'$"):
        perceptual_path_length(model, "w", num_samples=4, sim_net=_L2(), noise="random")


def _with_drawn_noise(model, rng):
    """A copy of ``model`` whose fixed noise images are the generator's next draws, in layer order."""
    net = StyleGAN(**TINY, architecture=model.architecture, growing=False).eval()
    net.load_state_dict(model.state_dict())
    for layer in net.sampling_generator.modules():
        if hasattr(layer, "const_noise"):
            layer.const_noise.copy_(torch.randn(layer.const_noise.shape, generator=rng))
    return net


def _ppl_by_hand(model, n, batch, eps, seed, noise, keep_first_noise=False):
    """PPL W/full recomputed without the metric: the authors' recipe, noise as ada-pytorch handles it.

    Per batch: z0, z1, t from the seeded generator; with ``per_batch`` noise, a copy of the model
    whose fixed noise images are the next draws of the noise generator serves the whole batch
    (``keep_first_noise``: the first batch's copy serves every batch); then each image on its own,
    the squared distance / eps^2, the numpy percentiles.
    """
    rng = torch.Generator().manual_seed(seed)
    noise_rng = torch.Generator().manual_seed(seed + PPL_NOISE_SEED_OFFSET)
    dists, first = [], None
    with torch.no_grad():
        for _ in range(0, n, batch):
            z0, z1 = model.sample_latent(batch, rng), model.sample_latent(batch, rng)
            t = torch.rand(batch, generator=rng)
            w0, w1 = model.mapping(z0), model.mapping(z1)
            net = model
            if noise == "per_batch":
                net = _with_drawn_noise(model, noise_rng)
                first = net if first is None else first
                net = first if keep_first_noise else net
            for i in range(batch):
                ti = t[i].item()
                a = net.synthesis((w0[i] + ti * (w1[i] - w0[i]))[None]).clamp(-1, 1)
                b = net.synthesis((w0[i] + (ti + eps) * (w1[i] - w0[i]))[None]).clamp(-1, 1)
                dists.append(((a - b) ** 2).mean().item() / eps**2)
    d = np.array(dists)
    return d[(d >= np.percentile(d, 1, method="lower")) & (d <= np.percentile(d, 99, method="higher"))].mean()


@pytest.mark.parametrize("architecture", ["stylegan", "stylegan2"])
def test_per_batch_noise_is_shared_by_each_pair_and_redrawn_per_batch(noisy_models, architecture):
    model = noisy_models[architecture]
    got = perceptual_path_length(model, "w", num_samples=8, epsilon=1e-2, sampling="full", batch_size=4, seed=3,
                                 sim_net=_L2(), noise="per_batch")
    assert got["ppl2_wfull"] == pytest.approx(_ppl_by_hand(model, 8, 4, 1e-2, 3, "per_batch"), rel=1e-4)
    # The same pairs with the first batch's noise kept for the second give another value: the draw is per batch.
    assert _ppl_by_hand(model, 8, 4, 1e-2, 3, "per_batch", keep_first_noise=True) != pytest.approx(got["ppl2_wfull"], rel=1e-3)


def test_const_noise_is_the_previous_metric(noisy_models):
    # Before issue #26 every image used the model's fixed noise images: recomputed here image by image.
    model = noisy_models["stylegan"]
    got = perceptual_path_length(model, "w", num_samples=8, epsilon=1e-2, sampling="full", batch_size=4, seed=5,
                                 sim_net=_L2(), noise="const")
    assert got["ppl2_wfull"] == pytest.approx(_ppl_by_hand(model, 8, 4, 1e-2, 5, "const"), rel=1e-4)
    per_batch = perceptual_path_length(model, "w", num_samples=8, epsilon=1e-2, sampling="full", batch_size=4, seed=5,
                                       sim_net=_L2())
    assert per_batch["ppl2_wfull"] != pytest.approx(got["ppl2_wfull"], rel=1e-3)  # the noise matters here
    # A noise-free model (a fresh one: strengths 0) gives the same value with either noise: the noise
    # has its own stream, so both see the same pairs.
    plain = StyleGAN(**TINY, growing=False).eval()
    same = [perceptual_path_length(plain, "w", 8, 1e-2, "full", batch_size=4, seed=5, sim_net=_L2(), noise=noise)["ppl2_wfull"]
            for noise in PPL_NOISE]
    assert same[0] == same[1]


def test_percentile_filter_matches_numpy():
    values = torch.cat([torch.arange(1000.0), torch.tensor([1e9, -1e9])])
    expected = np.extract((values.numpy() >= np.percentile(values.numpy(), 1, method="lower"))
                          & (values.numpy() <= np.percentile(values.numpy(), 99, method="higher")), values.numpy())
    kept = within_percentiles(values)
    # 1002 sorted values: ranks 10.01 (down: 10, value 9) and 990.99 (up: 991, value 990).
    assert kept.min() == 9.0 and kept.max() == 990.0  # the two outliers and the extreme ranks are dropped
    np.testing.assert_array_equal(kept.numpy(), expected)


def test_unit_slerp_walks_the_great_circle_between_unit_vectors():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    torch.testing.assert_close(unit_slerp(a, b, torch.tensor([0.5])), torch.tensor([[0.5**0.5, 0.5**0.5]]))
    torch.testing.assert_close(unit_slerp(a, b, torch.tensor([1.0 / 3])), torch.tensor([[3**0.5 / 2, 0.5]]))


def test_ppl_images_crop_and_downsample_as_the_authors():
    images = torch.arange(16 * 16, dtype=torch.float32).view(1, 1, 16, 16)
    cropped = ppl_images(images, crop=True)  # c = 2: rows 6..13, columns 4..11
    assert cropped.shape == (1, 3, 8, 8)
    torch.testing.assert_close(cropped[0, 0], images[0, 0, 6:14, 4:12])
    big = torch.arange(512 * 512, dtype=torch.float32).view(1, 1, 512, 512)
    small = ppl_images(big, crop=False)
    assert small.shape == (1, 3, 256, 256)
    assert small[0, 0, 0, 0].item() == (0 + 1 + 512 + 513) / 4  # a 2x2 box average
    assert ppl_images(images, crop=False).shape[-1] == 16  # never upsampled


def test_full_w_ppl_equals_a_direct_computation(model):
    # Independently: draw the same z pairs and t, lerp the mapped w's, synthesize, squared
    # distance / eps^2, drop outside the 1st/99th percentiles (numpy), mean.
    eps, n = 1e-2, 12
    got = perceptual_path_length(model, "w", num_samples=n, epsilon=eps, sampling="full", batch_size=n, seed=3, sim_net=_L2())
    rng = torch.Generator().manual_seed(3)
    with torch.no_grad():
        z0, z1 = model.sample_latent(n, rng), model.sample_latent(n, rng)
        t = torch.rand(n, generator=rng)
        w0, w1 = model.mapping(z0), model.mapping(z1)
        dists = []
        for i in range(n):
            ti = t[i].item()
            img_a = model.synthesis((w0[i] + ti * (w1[i] - w0[i]))[None])
            img_b = model.synthesis((w0[i] + (ti + eps) * (w1[i] - w0[i]))[None])
            dists.append(((img_a.clamp(-1, 1) - img_b.clamp(-1, 1)) ** 2).mean().item() / eps**2)
    d = np.array(dists)
    kept = d[(d >= np.percentile(d, 1, method="lower")) & (d <= np.percentile(d, 99, method="higher"))]
    assert got["ppl2_wfull"] == pytest.approx(kept.mean(), rel=1e-4)  # uncropped: ppl2_ (stylegan2-ada names)
    assert got["sampling"] == "full" and got["crop"] is False


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


def test_ppl_command_passes_the_noise_and_the_models_defaults(noisy_models, monkeypatch, tmp_path: Path, capsys):
    choices = next(a.choices for a in add_parser(argparse.ArgumentParser().add_subparsers())._actions if a.dest == "noise")
    assert tuple(choices) == PPL_NOISE  # the command spells the metric's values
    weights = tmp_path / "vgg16.pth"
    weights.touch()
    monkeypatch.setattr("genmodels.apps.style.vgg16_weights_path", lambda: weights)
    monkeypatch.setattr("genmodels.apps.style._lpips_vgg16", _L2)  # no VGG16 weights offline
    model = noisy_models["stylegan"]
    ckpt = export_weights(model, tmp_path / "g.pt")
    common = ["ppl", "--ckpt", str(ckpt), "--num-samples", "8", "--batch-size", "4", "--seed", "2", "--device", "cpu"]
    for noise in PPL_NOISE:
        main([*common, "--noise", noise, "--out", str(tmp_path / f"{noise}.json")])
        expected = perceptual_path_length(model, "w", 8, batch_size=4, seed=2, sim_net=_L2(), noise=noise)
        assert json.loads((tmp_path / f"{noise}.json").read_text()) == pytest.approx(expected)
    main(common)  # --noise left out: per_batch, the authors' codes
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == pytest.approx(
        json.loads((tmp_path / "per_batch.json").read_text()))
