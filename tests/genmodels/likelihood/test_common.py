"""Pixels, dequantization, bits/dim conventions, squeeze and categorical sampling."""

import math

import pytest
import torch

from genmodels.likelihood.common import (
    check_squeezable,
    dequantize,
    flow_bits_per_dim,
    from_pixels,
    nats_to_bits_per_dim,
    quantize,
    sample_categorical,
    squeeze,
    to_pixels,
    unsqueeze,
)


def test_pixels_round_trip_exactly_through_the_datamodule_mapping():
    pixels = torch.arange(256)
    images = pixels.float() / 127.5 - 1  # what the datamodules produce
    assert torch.equal(to_pixels(images), pixels)
    assert torch.equal(from_pixels(pixels), images)


def test_dequantized_values_stay_inside_their_pixel_bin():
    images = from_pixels(torch.arange(256)).view(1, 1, 16, 16).expand(8, -1, -1, -1)
    y = dequantize(images, torch.Generator().manual_seed(0))
    pixels = torch.arange(256).view(1, 1, 16, 16).float()
    assert ((y * 256 >= pixels) & (y * 256 < pixels + 1)).all()
    assert torch.equal(quantize(y), images)  # flooring recovers the data exactly


def test_bits_per_dim_conventions():
    # The uniform density on [0, 1)^D is the uniform distribution over the 256 levels: 8 bits/dim.
    assert flow_bits_per_dim(torch.zeros(3), 12).tolist() == pytest.approx([8.0] * 3)
    assert nats_to_bits_per_dim(torch.tensor(12 * math.log(256.0)), 12).item() == pytest.approx(8.0)


def test_squeeze_moves_each_2x2_block_into_channels_and_inverts():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    y = squeeze(x)
    assert y.shape == (2, 12, 2, 3)
    # Channel 4c + 2a + b holds x[c, 2i + a, 2j + b].
    assert torch.equal(y[:, 4 * 1 + 2 * 1 + 0], x[:, 1, 1::2, 0::2])
    assert torch.equal(unsqueeze(y), x)
    with pytest.raises(ValueError, match="even height and width"):
        squeeze(torch.zeros(1, 1, 5, 4))


def test_squeeze_check_names_the_sizes_and_the_fix():
    check_squeezable((1, 32, 32), 3, "Glow", "num_levels")
    with pytest.raises(ValueError, match=r"divisible by 8; got 28x28.*model.init_args.num_levels"):
        check_squeezable((1, 28, 28), 3, "Glow", "num_levels")


def test_categorical_sampling_follows_the_tempered_distribution():
    logits = torch.log(torch.tensor([0.1, 0.2, 0.7])).expand(20000, 3)
    g = torch.Generator().manual_seed(0)
    freq = torch.bincount(sample_categorical(logits, 1.0, g), minlength=3).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.7]), atol=0.015)
    # T = 0.5 squares the probabilities before renormalizing.
    sharp = torch.tensor([0.01, 0.04, 0.49]) / 0.54
    freq = torch.bincount(sample_categorical(logits, 0.5, g), minlength=3).float() / 20000
    assert torch.allclose(freq, sharp, atol=0.015)
    assert sample_categorical(logits[:2], 0.0, g).tolist() == [2, 2]  # T = 0 is the mode
    # The same generator state gives the same draws.
    a = sample_categorical(logits, 1.0, torch.Generator().manual_seed(5))
    assert torch.equal(a, sample_categorical(logits, 1.0, torch.Generator().manual_seed(5)))
