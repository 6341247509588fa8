"""Exact resume of a text-to-image run: 2N iterations straight equal N, stop, resume, N more
(captions drawn per epoch, the caption bank, CA noise and the matching-aware pairs included)."""

import pytest

from tests.cli.common import fit, load, tiny_args
from tests.cli.test_resume import _assert_states_equal

TINY_STACKGAN = tiny_args("stackgan/shapes.yaml")
# 40 shapes images at batch 8: 5 batches per epoch, so N = 3 stops mid-epoch and the resumed half
# crosses an epoch boundary (a new caption per image).
ARGS = [*TINY_STACKGAN, "--data.init_args.synthetic_size", "40", "--data.init_args.batch_size", "8",
        "--checkpoint.every_n_iterations", "3", "--sample_grid.every_n_iterations", "0", "--trainer.logger", "false",
        "--model.init_args.ema_decay", "0.9"]
N = 3


@pytest.mark.slow
def test_resumed_stackgan_equals_uninterrupted(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit("stackgan/shapes.yaml", straight, "--max_iterations", str(2 * N), *ARGS)
    fit("stackgan/shapes.yaml", resumed, "--max_iterations", str(N), *ARGS)
    fit("stackgan/shapes.yaml", resumed, "--max_iterations", str(2 * N), "--ckpt_path", "last", *ARGS)
    a, b = load(straight / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    assert a["genmodels"]["iteration"] == b["genmodels"]["iteration"] == 2 * N
    assert a["hyper_parameters"]["vocab"] == b["hyper_parameters"]["vocab"]
    _assert_states_equal(a["state_dict"], b["state_dict"], "state_dict")  # G, D, EMA, caption bank
    _assert_states_equal(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
