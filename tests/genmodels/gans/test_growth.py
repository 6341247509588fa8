"""Growth is a component ProGAN and StyleGAN compose; StyleGAN2 does not grow and holds no growth (issue #24).

The state-dict keys are pinned against the lists the models had when StyleGAN2 inherited growth
(tests/fixtures/state_dict_keys/growth_families.json, written by the code before the change), so
every checkpoint written then still loads.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch

import genmodels.gans.growth
from genmodels import ProGAN, StyleGAN, StyleGAN2
from genmodels.gans.clock import ImageClock
from genmodels.gans.growth import Growth, Phase

KEYS = json.loads((Path(__file__).parents[2] / "fixtures/state_dict_keys/growth_families.json").read_text())
BUILDS = {"ProGAN": (ProGAN, {}), "StyleGAN": (StyleGAN, {}), "StyleGAN2": (StyleGAN2, {}),
          "StyleGAN2 num_classes=3": (StyleGAN2, dict(num_classes=3))}


def test_progan_and_stylegan_compose_growth_and_stylegan2_holds_none():
    for cls in (ProGAN, StyleGAN):
        model = cls(**cls.tiny())
        assert isinstance(model.growth, Growth) and model.growth.clock is model.clock
        assert not any(c.__module__ == genmodels.gans.growth.__name__ for c in cls.__mro__)
    model = StyleGAN2(**StyleGAN2.tiny())
    assert not hasattr(model, "growth") and isinstance(model.clock, ImageClock)
    assert all(c.__name__ != "ProgressiveGAN" for c in StyleGAN2.__mro__)
    assert not any(c.__module__ in (genmodels.gans.growth.__name__, "genmodels.gans.progan") for c in StyleGAN2.__mro__)
    assert StyleGAN not in StyleGAN2.__mro__
    assert model.phase == Phase(2, 1.0)  # the final resolution at full weight, always


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_state_dict_keys_are_those_checkpoints_have(name):
    cls, extra = BUILDS[name]
    assert list(cls(**{**cls.tiny(), **extra}).state_dict()) == KEYS[name]


def test_stylegan2_takes_what_its_checkpoints_and_configs_pass():
    """Arguments written when StyleGAN2 carried StyleGAN's growth (checkpoints' hyperparameters, run configs) are
    still taken; growing and a minibatch schedule are refused in one line."""
    model = StyleGAN2(**StyleGAN2.tiny(), architecture="stylegan2", growing=False, fade_images=8, stabilize_images=8, initial_resolution=8,
                      minibatch_schedule=None, reset_optimizer_on_growth=True)
    assert set(inspect.signature(StyleGAN2).parameters) >= {"fade_images", "stabilize_images", "initial_resolution", "lr_schedule_by_resolution",
                                                          "minibatch_schedule", "reset_optimizer_on_growth"}
    assert model.phase == Phase(2, 1.0)
    with pytest.raises(ValueError, match="growing"):
        StyleGAN2(**StyleGAN2.tiny(), growing=True)
    with pytest.raises(ValueError, match="minibatch_schedule .*batch_size"):
        StyleGAN2(**StyleGAN2.tiny(), minibatch_schedule={16: 64})
    # The one resolution StyleGAN2 trains at takes its rate from a per-resolution table (times c of the lazy phase).
    rated = StyleGAN2(**StyleGAN2.tiny(), lr_schedule_by_resolution={16: 0.004, 32: 0.1})
    assert [o.param_groups[0]["lr"] for o in rated.configure_optimizers()] == pytest.approx([0.004 * 2 / 3, 0.004 * 2 / 3])


def test_stylegan2_checkpoint_without_optimizer_stage_loads_and_the_clock_follows_a_load():
    model = StyleGAN2(**StyleGAN2.tiny(), ema_kimg=20.0, ema_rampup=0.05)
    state = model.state_dict()
    stage = int(state.pop("optimizer_stage"))
    state["images_seen"] = torch.tensor(1000)
    fresh = StyleGAN2(**StyleGAN2.tiny(), ema_kimg=20.0, ema_rampup=0.05)
    fresh.load_state_dict(state)  # strict
    assert int(fresh.optimizer_stage) == stage and fresh.clock.count == 1000
    batch = {"image": torch.zeros(32, 1, 16, 16)}
    fresh.begin_update(batch)
    assert fresh.ema_beta([batch]) == pytest.approx(0.5 ** (32 / 50))  # half-life min(20k, 0.05 * 1000) images
    fresh.end_update([batch], logs := {})
    assert int(fresh.images_seen) == fresh.clock.count == 1032 and logs == {}  # no growth, nothing of growth logged
