"""PixelCNN: causality of the masks (autograd), the blind spot, the cached sampler, outputs."""

import math

import pytest
import torch

from genmodels import PixelCNN
from genmodels.likelihood.common import from_pixels, sample_categorical
from genmodels.likelihood.pixelcnn import causal_mask, discretized_logistic_mixture_log_prob
from tests.genmodels.likelihood.helpers import perturb_


def _model(shape=(1, 6, 6), **kwargs) -> PixelCNN:
    torch.manual_seed(0)
    args = dict(hidden_channels=6, num_layers=3, head_channels=6, first_kernel_size=3)
    args.update(kwargs)
    return perturb_(PixelCNN(image_shape=shape, **args), 0.1).double()


def _input_gradient(model: PixelCNN, x: torch.Tensor, i: int, j: int, c: int, label=None) -> torch.Tensor:
    """d(sum of the distribution parameters of sub-pixel (c, i, j)) / d input, (C, H, W)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x, label)[0, :, c, i, j].sum(), x)
    return grad[0]


def _future(shape, i: int, j: int, c: int) -> torch.Tensor:
    """Where sub-pixel (c, i, j) must not look: pixel (i, j) channels >= c and every later pixel."""
    channels, height, width = shape
    order = torch.arange(height * width).view(height, width)
    later = (order > i * width + j).expand(channels, -1, -1).clone()
    later[c:, i, j] = True
    return later


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_has_zero_gradient_for_the_current_and_later_pixels(gated, channels):
    shape = (channels, 5, 5)
    model = _model(shape, gated=gated, num_classes=2, head_channels=24)  # wide: no dead ReLU group
    x = torch.randn(1, *shape, dtype=torch.float64)
    for i in range(5):
        for j in range(5):
            for c in range(channels):
                grad = _input_gradient(model, x, i, j, c, torch.tensor([1]))
                future = _future(shape, i, j, c)
                assert (grad[future] == 0).all(), (i, j, c)
                if (i, j, c) != (0, 0, 0):
                    assert grad[~future].abs().sum() > 0  # the past is used


def test_gated_stacks_remove_the_blind_spot_of_masked_convolutions():
    # Pixel (3, 1) with 3x3 kernels: after 3 layers the plain PixelCNN still misses (1, 4), up and to
    # the right (1606.05328 Fig. 1); the vertical stack of the gated version sees it.
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    plain = _input_gradient(_model(gated=False), x, 3, 1, 0)
    gated = _input_gradient(_model(gated=True), x, 3, 1, 0)
    assert plain[0, 1, 4] == 0 and gated[0, 1, 4] != 0
    assert (plain[0, :3] != 0).sum() < (gated[0, :3] != 0).sum()


def test_type_a_and_b_masks_at_the_centre():
    a = causal_mask(6, 3, (3, 3), (1, 1), "A", colours=3)
    b = causal_mask(6, 3, (3, 3), (1, 1), "B", colours=3)
    # Output channel k is colour k % 3; input channel c is colour c.
    assert a[:, :, 1, 1].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]] * 2
    assert b[:, :, 1, 1].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]] * 2
    assert (a[:, :, 0] == 1).all() and (a[:, :, 1, 0] == 1).all()  # the rows above and the left
    assert (a[:, :, 2] == 0).all() and (a[:, :, 1, 2] == 0).all()  # the right and the rows below


def _reference_sample(model: PixelCNN, n: int, generator: torch.Generator, temperature: float) -> torch.Tensor:
    """Cache-free sampling: a full forward pass per sub-pixel, drawing as `PixelCNN.sample` does."""
    channels, height, width = model.image_shape
    x = torch.zeros(n, channels, height, width, dtype=torch.float64)
    label = torch.arange(n) % model.num_classes if model.num_classes else None
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                params = model(x, label)[:, :, :, i, j].reshape(n, -1)
                log_probs = model._subpixel_log_probs(params, c)
                x[:, c, i, j] = from_pixels(sample_categorical(log_probs, temperature, generator)).double()
    return x


@pytest.mark.parametrize("gated, channels, output", [
    (True, 1, "softmax"), (True, 3, "logistic_mixture"), (False, 3, "softmax"), (False, 1, "logistic_mixture"),
])
def test_cached_sampler_draws_exactly_what_full_forward_passes_give(gated, channels, output):
    model = _model((channels, 4, 5), gated=gated, output=output, num_mixtures=2, num_classes=3)
    with torch.no_grad():
        expected = _reference_sample(model, 3, torch.Generator().manual_seed(1), 0.9)
    state = torch.get_rng_state()
    samples = model.sample(3, generator=torch.Generator().manual_seed(1), temperature=0.9)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(samples, expected)
    assert samples.shape == (3, channels, 4, 5) and samples.min() >= -1 and samples.max() <= 1


def test_bits_per_dim_is_exact_and_8_for_a_uniform_output():
    model = PixelCNN(image_shape=(3, 4, 4), hidden_channels=3, num_layers=2, head_channels=3)
    torch.nn.init.zeros_(model.head[-1].weight)
    torch.nn.init.zeros_(model.head[-1].bias)
    batch = {"image": torch.randint(0, 256, (2, 3, 4, 4)) / 127.5 - 1}
    assert model.bits_per_dim(batch).tolist() == pytest.approx([8.0, 8.0])


def test_discretized_logistic_mixture_is_a_distribution_over_the_256_levels():
    torch.manual_seed(0)
    params = torch.randn(5, 9, dtype=torch.float64)
    params[0, 6:] = -6.0  # very sharp components: the underflow branch
    params[1, 3:6] = 2.0  # means beyond the data range: the edge bins take the mass
    log_probs = discretized_logistic_mixture_log_prob(params.unsqueeze(-1), torch.arange(256).unsqueeze(0))
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(5, dtype=torch.float64), atol=1e-6)
    assert log_probs[1].argmax() == 255


def test_class_conditioning_changes_the_model_and_the_sampled_classes():
    model = _model(num_classes=3)
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    assert not torch.allclose(model(x, torch.tensor([0, 0])), model(x, torch.tensor([2, 2])))
    assert model._sampling_labels(5, None).tolist() == [0, 1, 2, 0, 1]
    assert model._sampling_labels(2, 1).tolist() == [1, 1]
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        model.sample(1, condition=3)
    with pytest.raises(ValueError, match="needs a 'label'|batches need a 'label'"):
        model.bits_per_dim({"image": x})
    with pytest.raises(ValueError, match="unconditional"):
        _model().sample(1, condition=0)


def test_temperature_zero_is_greedy_and_deterministic():
    model = _model()
    a = model.sample(2, generator=torch.Generator().manual_seed(0), temperature=0.0)
    b = model.sample(2, generator=torch.Generator().manual_seed(9), temperature=0.0)
    assert torch.equal(a, b) and torch.equal(a[0], a[1])


@pytest.mark.parametrize("option, value, message", [
    ("hidden_channels", 4, "multiple of the 3 image channel"),
    ("head_channels", 5, "multiple of the 3 image channel"),
    ("kernel_size", 4, "odd"),
    ("output", "gaussian", "softmax or logistic_mixture"),
])
def test_bad_options_name_the_key(option, value, message):
    args = dict(image_shape=(3, 8, 8), hidden_channels=6, head_channels=6)
    args[option] = value
    with pytest.raises(ValueError, match=f"{option}={value!r}.*{message}".replace("(", r"\(")):
        PixelCNN(**args)


def test_bits_per_dim_of_the_logistic_mixture_is_finite_at_the_edges():
    model = _model((1, 4, 4), output="logistic_mixture", num_mixtures=3)
    images = torch.tensor([-1.0, 1.0]).repeat(8).view(1, 1, 4, 4).double()
    bpd = model.bits_per_dim({"image": images})
    assert torch.isfinite(bpd).all() and 0 < bpd.item() < 64 / math.log(2)
