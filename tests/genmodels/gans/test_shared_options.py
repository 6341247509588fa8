"""Every adversarial family x every shared option: the option acts, or the model refuses it in one line.

"Acts" is checked by what the option itself defines, against the same seed without the option:
the images a discriminator sees are augmented (DiffAugment) or noisy (instance noise); ADA
observes D's outputs and moves p under a D that always says "real"; LeCam's anchors move and its
term is logged; a penalty is logged and positive; feature matching replaces G's term and is
logged; the EMA of G moves away from its start and from G.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.loggers import CSVLogger
from torch import nn

import genmodels
from genmodels.errors import UserError
from genmodels.gans.adversarial import adversarial_families
from tests.genmodels.contract_configs import TINY, VOCAB

pytestmark = pytest.mark.slow  # 15 families x 9 options, a few tiny iterations each

FAMILIES = sorted(key for key, entry in TINY.items() if entry.get("class", key) in adversarial_families())
# Families also as their digits experiment builds them (the CLI's settings: BigGAN's n_critic 4, sampled
# fake labels, EMA start, orthogonal reg; StyleGAN2's lazy regularization), at `tiny()`'s widths.
EXPERIMENTS = Path(__file__).resolve().parents[3] / "experiments"
WIDTHS = {"channels", "d_channels", "latent_dim", "shared_dim", "attention_resolution", "w_dim", "mapping_layers",
          "channel_base", "channel_max", "image_shape", "num_classes"}
FROM_YAML = {"BigGAN (biggan/digits.yaml)": "biggan/digits.yaml", "StyleGAN2 (stylegan2/digits.yaml)": "stylegan2/digits.yaml"}
OPTIONS: dict[str, dict[str, Any]] = {
    "diffaugment": dict(augment="diffaugment"),
    "ada": dict(augment="ada", ada_interval=1, ada_kimg=0.01),
    "lecam": dict(lecam_weight=0.1),
    "gp": dict(penalty="gp", penalty_weight=1.0),
    "r1": dict(penalty="r1", penalty_weight=1.0),
    "r2": dict(penalty="r2", penalty_weight=1.0),
    "instance_noise": dict(instance_noise=0.5),
    "feature_matching": dict(feature_matching=True),
    "ema": dict(ema_decay=0.5, ema_start=0),
}
ITERATIONS = 4  # at least; and at least one G update (n_critic: 4 for BigGAN, 5 for WGAN(-GP))


def _build(name: str, **options: Any):
    if name in FROM_YAML:
        model = yaml.safe_load((EXPERIMENTS / FROM_YAML[name]).read_text())["model"]
        cls = getattr(genmodels, model["class_path"].rsplit(".", 1)[1])
        settings = {k: v for k, v in model["init_args"].items() if k not in WIDTHS}
        return cls(**{**cls.tiny(), **settings, **options})
    cls = getattr(genmodels, TINY[name].get("class", name))
    return cls(**{**cls.tiny(), **TINY[name].get("args", {}), **options})


def _batches(name: str, model, iterations: int, n: int = 4) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    c, h, w = model.image_shape
    out = []
    for _ in range(iterations):
        image = torch.rand(n, c, h, w, generator=g) * 2 - 1
        batch: dict[str, Any] = {"image": image}
        if getattr(model, "num_classes", 0):
            batch["label"] = torch.randint(0, 3, (n,), generator=g)
        if name in ("Pix2Pix", "CycleGAN"):
            batch.update(A=torch.rand(n, c, h, w, generator=g) * 2 - 1, B=image)
        if name in ("StackGAN", "AttnGAN", "DFGAN"):
            batch.update(tokens=torch.randint(2, len(VOCAB), (n, 4), generator=g), lengths=torch.full((n,), 4))
        out.append(batch)
    return out


def _critic_modules(model) -> list[nn.Module]:
    """The modules each discriminator call runs (a partial of D for the growing families)."""
    return [c if isinstance(c, nn.Module) else model.discriminator for c in model.critics().values()]


def _train(name: str, tmp_path, options: dict[str, Any], always_real: bool = False):
    """ITERATIONS iterations from seed 0; returns (model, D inputs seen, logged dicts, initial EMA)."""
    torch.manual_seed(0)
    model = _build(name, **options)
    ema_start = [p.detach().clone() for p in model.generator_ema.parameters()] if model.generator_ema is not None else None
    seen: list[Any] = []
    logged: list[dict[str, Any]] = []
    for module in _critic_modules(model):
        module.register_forward_pre_hook(lambda m, args: seen.append(args[0]) if len(seen) < 8 else None)
        if always_real:  # a D that always says "real": every output far on the real side
            module.register_forward_hook(lambda m, args, out: out + 100.0)
    log_dict = model.log_dict
    model.log_dict = lambda values, **kw: (logged.append(dict(values)), log_dict(values, **kw))
    iterations = max(ITERATIONS, model.n_critic)
    trainer = pl.Trainer(max_steps=1000, accelerator="cpu", logger=CSVLogger(tmp_path), log_every_n_steps=1,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_train_batches=iterations, max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(model, torch.utils.data.DataLoader(_batches(name, model, iterations), batch_size=None))
    return model, seen, logged, ema_start


def _first_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else x[0]


def _refusal(name: str, options: dict[str, Any]) -> str | None:
    try:
        _build(name, **options)
    except UserError as err:
        return str(err)
    return None


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("name", FAMILIES + list(FROM_YAML))
def test_shared_option_acts_or_is_refused_in_one_line(name, option, tmp_path):
    options = OPTIONS[option]
    refusal = _refusal(name, options)
    if refusal is not None:
        key = "augment" if option in ("diffaugment", "ada") else "penalty" if option in ("gp", "r1", "r2") else None
        assert "\n" not in refusal and ((key or option) in refusal or (key or option).replace("_", " ") in refusal), refusal
        return
    model, seen, logged, ema_start = _train(name, tmp_path / "with", options, always_real=option == "ada")
    keys = set().union(*logged)
    if option in ("diffaugment", "instance_noise"):
        _, plain_seen, _, _ = _train(name, tmp_path / "without", {})
        first, plain_first = _first_tensor(seen[0]), _first_tensor(plain_seen[0])
        assert first.shape == plain_first.shape and not torch.allclose(first, plain_first)
    elif option == "ada":
        assert model.augment_pipe.rt.item() == pytest.approx(1.0)  # every observed real output is positive
        assert model.augment_pipe.p.item() > 0
    elif option == "lecam":
        anchors = torch.stack([torch.stack([a.real, a.fake]) for a in model.lecam.values()])
        assert (anchors != 1000.0).all() and len(model.lecam) == len(model.heads())  # moved from their start
        assert "train/penalty_lecam" in keys
    elif option in ("gp", "r1", "r2"):
        values = [d[f"train/penalty_{option}"] for d in logged if f"train/penalty_{option}" in d]
        assert values and all(v > 0 for v in values)
    elif option == "feature_matching":
        values = [d["train/feature_matching"] for d in logged if "train/feature_matching" in d]
        assert values and all(v > 0 for v in values)
    elif option == "ema":
        ema = list(model.generator_ema.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(ema, ema_start))
        assert any(not torch.equal(a, b) for a, b in zip(ema, model.generator.parameters()))


def test_a_refusal_names_the_option_and_the_families_that_take_it():
    with pytest.raises(UserError) as err:
        _build("CycleGAN", feature_matching=True)
    message = str(err.value)
    assert "\n" not in message and "feature_matching" in message
    assert "DCGAN" in message and "GAN" in message and "CycleGAN" not in message.split("do: ")[1]
