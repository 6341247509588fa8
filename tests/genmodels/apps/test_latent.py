"""Latent hooks, truncation, interpolation and principal directions (genmodels.apps.latent)."""

from typing import Any, Optional

import pytest
import torch

from genmodels import VAE
from genmodels.apps.generation import condition_labels, generate, interpolation_frames
from genmodels.apps.latent import DecoderZSpace, GeneratorZSpace, WSpace, latent_space, seeded_generator, slerp, truncate_prior
from tests.genmodels.apps.model_files import one_thread, tiny_cgan, tiny_dcgan  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_generator_z_space_reproduces_sample_for_a_seed():
    for model in (tiny_dcgan(), tiny_dcgan(ema_decay=0.9)):
        space = latent_space(model)
        assert isinstance(space, GeneratorZSpace)
        expected = model.sample(6, generator=seeded_generator(5))
        assert torch.equal(generate(model, 6, seed=5), expected)
        assert "sample_latent" not in model.__dict__  # the fixed-latent patch is removed again


def test_conditional_gan_images_follow_their_labels():
    model = tiny_cgan()
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    expected = model.sample(6, condition=labels, generator=seeded_generator(2))
    assert torch.equal(generate(model, 6, seed=2, condition=labels.tolist()), expected)
    # An int means every image of that class; no condition cycles the classes.
    assert torch.equal(generate(model, 4, 2, condition=7), model.sample(4, condition=7, generator=seeded_generator(2)))
    assert condition_labels(model, None, 12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    with pytest.raises(ValueError, match="unknown class 10"):
        generate(model, 2, condition=[1, 10])


def test_decoder_space_reproduces_vae_sample():
    torch.manual_seed(0)
    for classes in (0, 3):
        model = VAE(image_shape=(1, 16, 16), latent_dim=4, hidden_channels=(4, 8), num_classes=classes).eval()
        assert isinstance(latent_space(model), DecoderZSpace)
        assert torch.equal(generate(model, 5, seed=1), model.sample(5, generator=seeded_generator(1)))


def test_truncation_resamples_only_components_outside_psi():
    z = torch.randn(2000, 8, generator=seeded_generator(0))
    truncated = truncate_prior(z, 0.5, seeded_generator(1))
    inside = z.abs() <= 0.5
    assert truncated.abs().max() <= 0.5
    assert torch.equal(truncated[inside], z[inside])
    assert torch.equal(truncated, truncate_prior(z, 0.5, seeded_generator(1)))
    # Resampled components follow the truncated normal: symmetric around 0, not piled at the bounds.
    resampled = truncated[~inside]
    assert abs(resampled.mean()) < 0.02 and (resampled.abs() > 0.45).float().mean() < 0.2
    uniform = truncate_prior(torch.rand(500, 4) * 2 - 1, 0.3, seeded_generator(0), "uniform")
    assert uniform.abs().max() <= 0.3


def test_truncated_samples_are_more_typical():
    model = tiny_dcgan()
    space = latent_space(model)
    assert space.codes(64, 0, truncation=0.3).abs().max() <= 0.3
    plain, truncated = generate(model, 64, 0), generate(model, 64, 0, truncation=0.3)
    assert truncated.std(0).mean() < plain.std(0).mean()  # less varied across the batch


def test_slerp_keeps_the_norm_and_hits_the_ends():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    assert torch.allclose(slerp(a, b, 0.5).norm(), torch.tensor(3.0))  # a straight line would give 2.12
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: linear


def test_interpolation_ends_are_the_seeds_images():
    model = tiny_dcgan()
    frames = interpolation_frames(model, 3, 4, steps=5, n=2)
    assert frames.shape == (5, 2, 1, 16, 16)
    assert torch.allclose(frames[0], generate(model, 2, 3), atol=1e-6)
    assert torch.allclose(frames[-1], generate(model, 2, 4), atol=1e-6)


class LinearGenerator:
    """A Z model whose images are z scaled per axis: axis 2 moves the pixels most, then axis 0."""

    device = torch.device("cpu")
    image_shape = (1, 2, 2)
    latent_dim = 4
    scales = torch.tensor([2.0, 0.5, 5.0, 0.1])

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return torch.randn(n, 4, generator=generator)

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.sample_from(self.sample_latent(n, generator))

    def sample_from(self, z: torch.Tensor, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return (z * self.scales).view(-1, 1, 2, 2)


class MappingModel(LinearGenerator):
    """A W model: w = M z with one dominant axis; synthesis is the identity reshaped."""

    mean_w = torch.tensor([1.0, 1.0, 1.0, 1.0])
    num_ws = 1

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        return self.mean_w + psi * (w - self.mean_w)

    def mapping(self, z: torch.Tensor, condition: Any = None) -> torch.Tensor:
        return self.mean_w + z * torch.tensor([0.2, 4.0, 0.3, 0.1])

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        return w.view(-1, 1, 2, 2)


def test_ganspace_directions_find_the_dominant_axes():
    directions = latent_space(LinearGenerator()).directions(k=2, num_samples=2000)
    assert directions.vectors[0].abs().argmax() == 2 and directions.vectors[1].abs().argmax() == 0
    assert directions.vectors[0].abs().max() > 0.99
    assert torch.allclose(directions.scales, torch.ones(2), atol=0.1)  # z ~ N(0, I) along any unit vector
    assert directions.explained[0] > directions.explained[1]
    codes = torch.zeros(1, 4)
    moved = directions.edit(codes, [2.0, 0.0])
    assert torch.allclose(moved.abs().max(), 2 * directions.scales[0], atol=1e-2)


def test_w_space_hooks_truncate_toward_the_mean_and_interpolate_linearly():
    model = MappingModel()
    space = latent_space(model)
    assert isinstance(space, WSpace) and space.kind == "w"
    assert torch.allclose(space.codes(4, 0, truncation=1e-9), model.mean_w.expand(4, 4), atol=1e-6)
    half = space.codes(4, 0, truncation=0.5)
    assert torch.allclose(half - model.mean_w, 0.5 * (space.codes(4, 0) - model.mean_w))
    a, b = space.codes(1, 0), space.codes(1, 1)
    assert torch.allclose(space.interpolate(a, b, 0.5), (a + b) / 2)
    directions = space.directions(k=1, num_samples=2000)
    assert directions.vectors[0].abs().argmax() == 1 and abs(directions.scales[0] - 4.0) < 0.3
    model.truncate = lambda w, psi: torch.zeros_like(w)  # truncation is the model's own truncate()
    assert torch.equal(space.codes(2, 0, truncation=0.7), torch.zeros(2, 4))
