import pytest
import torch

from genmodels.nn.minibatch_std import MinibatchStdDev


def test_adds_one_channel_holding_the_group_std():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    y = MinibatchStdDev(group_size=4)(x)
    assert y.shape == (8, 4, 4, 4)
    torch.testing.assert_close(y[:, :3], x)
    for sample in range(8):
        members = x[[i for i in range(8) if i % 2 == sample % 2]]  # group i mod (N / G)
        expected = members.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
        torch.testing.assert_close(y[sample, 3], torch.full((4, 4), expected.item()))


def test_identical_samples_give_zero_std_and_ragged_batches_use_a_smaller_group():
    x = torch.ones(4, 2, 2, 2)
    assert MinibatchStdDev(4)(x)[:, 2].abs().max() < 1e-3
    x = torch.randn(6, 2, 2, 2)  # group size 4 does not divide 6: groups of 3 (samples 0, 2, 4 and 1, 3, 5)
    y = MinibatchStdDev(4)(x)
    expected = x[[0, 2, 4]].var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    torch.testing.assert_close(y[0, 2], torch.full((2, 2), expected.item()))
    with pytest.raises(ValueError, match="group_size"):
        MinibatchStdDev(0)
