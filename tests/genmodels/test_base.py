"""The manual-optimization loop of AdversarialModel: the algorithm, counters, schedulers, AMP."""

import copy

import pytest
import pytorch_lightning as pl
import torch

from pytorch_lightning.plugins import MixedPrecision

from genmodels import DCGAN, GAN
from genmodels.callbacks import StopAtIteration
from genmodels.gans.losses import d_loss_nonsaturating, g_loss_nonsaturating
from tests.genmodels.helpers import loader


def _trainer(iterations: int, **kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[StopAtIteration(iterations)],
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def _tiny_gan(**kwargs) -> GAN:
    args = dict(image_shape=(1, 16, 16), latent_dim=8, generator_hidden=(32,), discriminator_hidden=(16,), dropout=0.0)
    args.update(kwargs)
    return GAN(**args)


def test_one_iteration_is_algorithm_1_step_by_step():
    """D then G, each on its own loss only: no gradient leaks between the players."""
    torch.manual_seed(0)
    model = _tiny_gan()
    reference = copy.deepcopy(model)
    data = loader(32, (1, 16, 16), 8)
    batch = next(iter(data))

    torch.manual_seed(123)
    _trainer(1).fit(model, data)

    # The same iteration written out by hand.
    torch.manual_seed(123)
    iter(data)  # a DataLoader iterator draws its base seed from the global RNG, as in fit
    opt_g = torch.optim.Adam(reference.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(reference.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    fake = reference.generator(torch.randn(8, 8))
    loss_d = d_loss_nonsaturating(reference.discriminator(batch["image"]), reference.discriminator(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = g_loss_nonsaturating(reference.discriminator(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()

    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, msg=f"{name} differs from the hand-written step")
    assert model.iteration == 1


def test_iteration_counts_batches_not_optimizer_steps():
    model = _tiny_gan()
    trainer = _trainer(5)
    trainer.fit(model, loader())
    assert model.iteration == 5
    assert trainer.global_step == 10  # two optimizer steps per batch: why iteration exists


def test_n_critic_updates_generator_every_nth_batch():
    model = _tiny_gan(n_critic=3)
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    _trainer(2).fit(model, loader())
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    _trainer(3).fit(model, loader())  # third batch: first generator update
    assert not all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))


class _Scheduled(GAN):
    def configure_optimizers(self):
        opt_g, opt_d = super().configure_optimizers()
        sched_g = torch.optim.lr_scheduler.StepLR(opt_g, step_size=1, gamma=0.5)
        sched_d = torch.optim.lr_scheduler.StepLR(opt_d, step_size=1, gamma=0.1)
        return [opt_g, opt_d], [sched_g, sched_d]


def test_schedulers_step_once_per_iteration_with_their_optimizer():
    model = _Scheduled(image_shape=(1, 16, 16), latent_dim=8, generator_hidden=(16,), discriminator_hidden=(8,), n_critic=2)
    trainer = _trainer(4)
    trainer.fit(model, loader())
    opt_g, opt_d = trainer.optimizers
    # D stepped on all 4 batches, G on batches 2 and 4.
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.1**4)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5**2)


def test_gradient_clipping_bounds_each_players_norm():
    seen = []

    class Recording(GAN):
        def on_before_optimizer_step(self, optimizer):
            super().on_before_optimizer_step(optimizer)
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            seen.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())

    model = Recording(image_shape=(1, 16, 16), latent_dim=8, generator_hidden=(16,), discriminator_hidden=(8,), grad_clip_norm=1e-3)
    _trainer(2).fit(model, loader())
    assert len(seen) == 4 and max(seen) <= 1e-3 * 1.001


def _fp16_plugin():
    # Trainer(precision="16-mixed") on CPU silently becomes bf16; ask for the real fp16 + GradScaler.
    return MixedPrecision("16-mixed", "cpu")


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains_without_nan(precision):
    torch.manual_seed(0)
    model = DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, grad_clip_norm=10.0)
    kwargs = {"plugins": [_fp16_plugin()]} if precision == "16-mixed" else {"precision": precision}
    trainer = _trainer(3, **kwargs)
    trainer.fit(model, loader())
    assert (trainer.precision_plugin.scaler is not None) == (precision == "16-mixed")
    assert model.iteration == 3
    for p in model.parameters():
        assert torch.isfinite(p).all() and p.dtype == torch.float32  # modules are never .half()'d
    assert torch.isfinite(model.sample(4)).all()


def test_scheduler_does_not_advance_when_amp_skips_the_step():
    class Exploding(_Scheduled):
        def discriminator_loss(self, batch, fake):
            loss, logs = super().discriminator_loss(batch, fake)
            return loss * float("inf"), logs  # non-finite gradients: GradScaler skips the step

    model = Exploding(image_shape=(1, 16, 16), latent_dim=8, generator_hidden=(16,), discriminator_hidden=(8,))
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = _trainer(2, plugins=[_fp16_plugin()])
    trainer.fit(model, loader())
    opt_g, opt_d = trainer.optimizers
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-4)  # D's schedule did not move
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5**2)  # G's steps were real
