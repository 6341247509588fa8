"""docs/contributing.md, "Writing a GAN with a new adversarial term", followed literally: its
code block is executed as written, and the family it defines trains with the shared options."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from genmodels.errors import UserError
from tests.genmodels.helpers import loader

DOC = Path(__file__).resolve().parents[1] / "docs" / "contributing.md"


def _doc_family() -> type:
    text = DOC.read_text()
    section = text.split("## Writing a GAN with a new adversarial term", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    namespace: dict = {"__name__": "contributing_snippet"}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace["MarginGAN"]


def test_the_documented_term_is_the_step_s_loss():
    MarginGAN = _doc_family()
    model = MarginGAN(margin=0.5)
    torch.manual_seed(0)
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    d_real, d_fake = model.discriminator(real), model.discriminator(fake)
    loss, logs = model.discriminator_loss({"image": real}, fake)
    torch.testing.assert_close(loss, F.relu(0.5 - d_real).mean() + F.relu(0.5 + d_fake).mean())
    g_loss, _ = model.generator_loss({"image": real}, fake)
    torch.testing.assert_close(g_loss, -d_fake.mean())


def test_the_documented_family_trains_with_the_shared_options(tmp_path):
    MarginGAN = _doc_family()
    torch.manual_seed(0)
    model = MarginGAN(augment="diffaugment", penalty="r1", penalty_weight=1.0, lecam_weight=0.1, ema_decay=0.5)
    seen = []
    model.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    batches = loader(n=16, shape=(1, 8, 8), batch_size=4)
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(model, batches)
    first_real = next(iter(batches))["image"]
    assert not torch.allclose(seen[0], first_real)  # D saw augmented images
    assert (model.lecam["d"].real != 1000.0) and (model.lecam["d"].fake != 1000.0)  # LeCam's anchors moved from their start
    assert model.iteration == 3  # 6 optimizer steps: D and G per iteration
    with pytest.raises(UserError, match="feature_matching"):
        MarginGAN(feature_matching=True)
