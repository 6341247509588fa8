"""ImagePool: fills first, then swaps with probability 1/2; its state is in the state dict."""

import pytest
import torch

from genmodels.nn.image_pool import ImagePool


def images(n, value):
    return torch.full((n, 1, 2, 2), float(value))


def test_fills_then_mixes_old_and_new_images():
    pool = ImagePool(4, (1, 2, 2))
    assert torch.equal(pool.query(images(3, 1)), images(3, 1))  # filling: the new images come back
    out = pool.query(images(2, 2))  # one more fills it, the second may swap
    assert int(pool.count) == 4 and out[0].eq(2).all()
    generator = torch.Generator().manual_seed(0)
    returned = torch.cat([pool.query(images(1, 10 + k), generator) for k in range(200)])
    old = (returned[:, 0, 0, 0] < 10 + torch.arange(200)).float().mean()
    assert 0.4 < old < 0.6  # about half of the returned images are from the history


def test_state_dict_round_trip_continues_identically():
    pool = ImagePool(3, (1, 2, 2))
    pool.query(torch.randn(5, 1, 2, 2))
    copy = ImagePool(3, (1, 2, 2))
    copy.load_state_dict(pool.state_dict())
    assert set(pool.state_dict()) == {"images", "count"}
    new = torch.randn(4, 1, 2, 2)
    a = pool.query(new, torch.Generator().manual_seed(1))
    b = copy.query(new, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(pool.images, copy.images)


def test_size_zero_passes_through_and_shapes_are_checked():
    x = torch.randn(2, 1, 2, 2)
    assert ImagePool(0, (1, 2, 2)).query(x) is x
    with pytest.raises(ValueError, match="shape"):
        ImagePool(2, (1, 2, 2)).query(torch.randn(1, 3, 2, 2))
