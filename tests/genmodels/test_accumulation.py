"""Gradient accumulation under manual optimization: k micro-batches equal one k-times-larger batch."""

import copy

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from genmodels import GAN
from genmodels.callbacks import StopAtIteration
from tests.genmodels.helpers import RandomImages


class _DeterministicLatents:
    """z taken from the real images themselves, so fakes do not depend on how a batch is split."""

    def generate(self, batch, generator=None):
        z = batch["image"].flatten(1)[:, : self.latent_dim]
        return self.generator(z)


class AccGAN(_DeterministicLatents, GAN):
    pass


def _train(model, batch_size, iterations):
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[StopAtIteration(iterations)],
    )
    data = DataLoader(RandomImages(32, model.image_shape), batch_size=batch_size, shuffle=False, drop_last=True)
    trainer.fit(model, data)
    return trainer


@pytest.mark.parametrize("make", [
    lambda **kw: AccGAN(image_shape=(1, 8, 8), latent_dim=8, generator_hidden=(16,), discriminator_hidden=(8,), dropout=0.0, **kw),
    # Wasserstein critic with R1 on reals and n_critic 2 (per-sample terms only: the split cannot
    # matter; DCGAN's generator is left out because BatchNorm statistics depend on the batch).
    lambda **kw: AccGAN(image_shape=(1, 8, 8), latent_dim=8, generator_hidden=(16,), discriminator_hidden=(8,), dropout=0.0,
                        loss="wasserstein", penalty="r1", n_critic=2, ema_decay=0.9, **kw),
], ids=["gan", "wasserstein_r1_ncritic2_ema"])
def test_k_micro_batches_equal_one_k_times_larger_batch(make):
    torch.manual_seed(0)
    reference = make()
    big = copy.deepcopy(reference)
    big_trainer = _train(big, batch_size=8, iterations=4)
    accumulated = make(accumulate_grad_batches=2)
    accumulated.load_state_dict(reference.state_dict())
    acc_trainer = _train(accumulated, batch_size=4, iterations=4)

    assert big.iteration == accumulated.iteration == 4
    assert acc_trainer.global_step == big_trainer.global_step  # same number of optimizer steps
    for (name, p), q in zip(big.named_parameters(), accumulated.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=name)
    for a, b in zip(big_trainer.optimizers, acc_trainer.optimizers):
        for sa, sb in zip(a.state_dict()["state"].values(), b.state_dict()["state"].values()):
            torch.testing.assert_close(sb["exp_avg"], sa["exp_avg"], rtol=1e-5, atol=1e-7)
