"""The training loop does not synchronize device and host per iteration, only when it logs.

On a GPU every ``.item()`` / ``.cpu()`` / ``.tolist()`` stalls the pipeline; on the CPU these
calls are cheap, but counting them here finds the same places. Calls made inside ``torch.optim``
are not counted: on the CPU, PyTorch's single-tensor Adam reads its step counter with ``.item()``
(the CUDA path does not), and a hand-written loop pays exactly the same.
"""

import sys

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from genmodels import GAN, WGANGP
from genmodels.callbacks import StopAtIteration
from tests.genmodels.helpers import loader

SYNCING = ("item", "cpu", "tolist", "numpy")


class _CountPerIteration(pl.Callback):
    """Host-sync calls from the start of one training batch to the start of the next.

    The window covers everything Lightning does for a batch, including the logger connector
    turning logged tensors into numbers after the batch hooks. Keyed by the iteration the batch
    completes (1 for the first batch).
    """

    def __init__(self, counter):
        self.counter, self.per_iteration, self.last = counter, {}, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.last is not None:
            self.per_iteration[pl_module.iteration] = self.counter["n"] - self.last
        self.last = self.counter["n"]


@pytest.mark.parametrize("make", [
    lambda: GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(8,), ema_decay=0.9),
    lambda: WGANGP(image_shape=(1, 16, 16), latent_dim=4, feature_maps=4, n_critic=2, lr_schedule="linear",
                   lr_decay_end=100, ema_decay=0.9, grad_clip_norm=10.0),
], ids=["gan_ema", "wgangp_schedule_clip_ema"])
def test_syncs_only_on_logging_iterations(make, tmp_path, monkeypatch):
    counter = {"n": 0}
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            if not sys._getframe(1).f_globals.get("__name__", "").startswith("torch.optim"):
                counter["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    model = make()
    probe = _CountPerIteration(counter)
    trainer = pl.Trainer(
        accelerator="cpu", logger=CSVLogger(tmp_path), log_every_n_steps=5, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0,
        limit_val_batches=0, callbacks=[probe, StopAtIteration(12)],
    )
    trainer.fit(model, loader(256, model.image_shape, 16))  # 16 batches per epoch: no epoch boundary
    logging = {5, 10}
    quiet = {i: n for i, n in probe.per_iteration.items() if i not in logging}
    assert len(quiet) == 9 and all(n == 0 for n in quiet.values()), quiet  # iterations 1-11 observed
    assert all(probe.per_iteration[i] > 0 for i in logging)  # the check can see syncs when they happen
