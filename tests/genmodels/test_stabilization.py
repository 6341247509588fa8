"""The stabilization options of every adversarial model, switched on from config."""

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.plugins import MixedPrecision

from genmodels import DCGAN, GAN, WGAN, WGANGP
from genmodels.callbacks import StopAtIteration
from genmodels.errors import UserError
from genmodels.gans.stabilization import ema_decay_at, instance_noise_std, lr_factor
from tests.genmodels.helpers import loader


def _fit(model, iterations, **kwargs):
    defaults = dict(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, callbacks=[StopAtIteration(iterations)],
    )
    defaults.update(kwargs)
    trainer = pl.Trainer(**defaults)
    trainer.fit(model, loader(64, model.image_shape, 16))
    return trainer


def _dcgan(**kwargs):
    return DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, **kwargs)


def test_schedule_factors():
    assert [lr_factor(i, "linear", 0, 10, 20) for i in (0, 10, 15, 20, 30)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert lr_factor(15, "cosine", 0, 10, 20) == pytest.approx(0.5)
    assert [lr_factor(i, "constant", 4) for i in (0, 1, 3, 4, 100)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert [instance_noise_std(i, 0.2, 100) for i in (0, 50, 100, 200)] == pytest.approx([0.2, 0.1, 0.0, 0.0])
    assert ema_decay_at(3, 0.999, start=5) == 0.0 and ema_decay_at(5, 0.999, start=5) == pytest.approx(0.1)
    assert ema_decay_at(10_000, 0.999, start=5) == 0.999


def test_linear_lr_decay_follows_iterations_for_both_players():
    model = _dcgan(lr_schedule="linear", lr_decay_start=2, lr_decay_end=6, n_critic=2)
    trainer = _fit(model, 4)
    opt_g, opt_d = trainer.optimizers
    # After 4 iterations the next iteration (4) runs at factor 1 - (4 - 2) / 4 = 0.5 for G and D alike.
    assert opt_d.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)


def test_ema_ramp_counts_generator_updates_not_iterations():
    """With n_critic 3 the average's k-th update (k from 0) uses min(decay, (1 + t) / (10 + t)),
    t = k - ema_start counted in G updates (TF ExponentialMovingAverage's num_updates), and copies
    G before ema_start: recomputed here from G's weights after each of its updates."""
    torch.manual_seed(0)
    model = WGANGP(**{**WGANGP.tiny(), "n_critic": 3, "ema_decay": 0.9, "ema_start": 1})
    start = [p.detach().clone() for p in model.generator_ema.parameters()]
    after_g_updates = []

    class AfterGUpdate(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            if pl_module.iteration % 3 == 0:  # G's phase was due in the iteration that just ended
                after_g_updates.append([p.detach().clone() for p in pl_module.generator.parameters()])

    _fit(model, 12, callbacks=[StopAtIteration(12), AfterGUpdate()])
    assert len(after_g_updates) == 4
    expected = start
    for k, weights in enumerate(after_g_updates):
        t = k - 1
        beta = 0.0 if t < 0 else min(0.9, (1 + t) / (10 + t))  # 0, 0.1, 2/11, 3/12 (iterations would give 2/11, 5/14, ...)
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, weights)]
    for ema, want in zip(model.generator_ema.parameters(), expected):
        torch.testing.assert_close(ema, want)


def test_ema_generator_is_used_for_sampling_and_differs_from_raw_weights():
    model = _dcgan(ema_decay=0.9)
    _fit(model, 6)
    raw = torch.cat([p.flatten() for p in model.generator.parameters()])
    ema = torch.cat([p.flatten() for p in model.generator_ema.parameters()])
    assert not torch.equal(raw, ema)
    assert all(not p.requires_grad for p in model.generator_ema.parameters())
    model.eval()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    z = model.sample_latent(4, g())
    torch.testing.assert_close(model.sample(4, generator=g()), model.generator_ema(z))
    assert not torch.allclose(model.sample(4, generator=g()), model.generator(z))
    assert any(k.startswith("generator_ema.") for k in model.state_dict())  # saved in checkpoints


def test_spectral_norm_bounds_the_discriminators_layers():
    torch.manual_seed(0)
    model = _dcgan(spectral_norm=True, discriminator_norm="none", loss="hinge")
    _fit(model, 20)
    convs = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    model.discriminator.train()
    for conv in convs:
        # During training sigma comes from one power iteration per step (as in Miyato et al.), which
        # trails the moving weight by a few percent; on the final weight it converges and every
        # layer's normalized weight has spectral norm 1.
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.15)
        with torch.no_grad():
            for _ in range(100):
                conv.weight  # each access in training mode runs one power iteration
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=1e-3)


def test_weight_clipping_happens_before_each_critic_step_as_the_official_code():
    """martinarjovsky/WassersteinGAN main.py: `for p in netD.parameters(): p.data.clamp_(...)` at the
    start of every D iteration, then errD, backward, optimizerD.step(). So every D forward of a D
    step sees clipped weights, while the weights after the last step (what G's step sees) are not."""
    model = WGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, weight_clip=0.01, lr_d=1e-2)
    seen = []

    def record(module, inputs):
        if torch.is_grad_enabled() and module.training:
            seen.append(max(p.abs().max().item() for p in module.parameters()))

    _fit(model, 3)  # builds the networks; three D-only iterations (n_critic 5)
    handle = model.discriminator.register_forward_pre_hook(record)
    _fit(model, 5)  # iterations 4 and 5; the 5th ends with G's step (n_critic 5)
    handle.remove()
    # D's forwards in its two steps (real and fake each) see clipped weights; G's step after the
    # 5th D step sees them as RMSprop (lr 1e-2) left them, past c
    assert len(seen) == 5 and max(seen[:4]) <= 0.01 + 1e-9 and seen[4] > 0.01


def test_feature_matching_loss_matches_the_mean_feature_gap():
    model = GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(6,), feature_matching=True, dropout=0.0)
    real, fake = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8)
    loss, _ = model.generator_loss({"image": real}, fake)
    d = model.discriminator
    expected = (d.features(real).mean(0) - d.features(fake).mean(0)).pow(2).mean()
    torch.testing.assert_close(loss, expected)
    with pytest.raises(UserError, match="features"):
        GAN(image_shape=(1, 8, 8), feature_matching=True).build(model.generator, torch.nn.Linear(64, 1))


def test_instance_noise_only_while_training():
    model = _dcgan(instance_noise=0.5, instance_noise_iterations=100)
    x = torch.zeros(2, 1, 16, 16)
    model.eval()
    assert torch.equal(model.discriminate(x), model.discriminator(x))
    model.train()
    torch.manual_seed(0)
    noisy = model.discriminate(x)
    torch.manual_seed(0)
    expected = model.discriminator(x + 0.5 * torch.randn_like(x))
    torch.testing.assert_close(noisy, expected)


def test_invalid_options_name_the_key():
    with pytest.raises(ValueError, match="loss"):
        _dcgan(loss="wgan")
    with pytest.raises(ValueError, match="label_smoothing"):
        _dcgan(label_smoothing=1.5)
    with pytest.raises(ValueError, match="lr_decay_end"):
        _dcgan(lr_schedule="linear")
    with pytest.raises(ValueError, match="BatchNorm"):
        WGANGP(image_shape=(1, 16, 16), discriminator_norm="batch")


def test_diagnostics_are_logged(tmp_path):
    model = WGANGP(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, n_critic=1)
    _fit(model, 4, logger=CSVLogger(tmp_path), log_every_n_steps=2)
    (metrics,) = tmp_path.rglob("metrics.csv")
    header = set(metrics.read_text().splitlines()[0].split(","))
    assert {"train/grad_norm_d", "train/grad_norm_g", "train/wasserstein_estimate", "train/gp_grad_norm",
            "train/penalty_gp", "train/d_real", "train/d_fake"} <= header


@pytest.mark.slow
def test_wgan_gp_200_iterations_in_fp16_stay_finite():
    torch.manual_seed(0)
    model = WGANGP(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4)
    trainer = _fit(model, 200, plugins=[MixedPrecision("16-mixed", "cpu")])
    assert trainer.precision_plugin.scaler is not None  # real fp16 with a GradScaler
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.isfinite(model.sample(8)).all()


class _RecordGP(WGANGP):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norms = []

    def discriminator_loss(self, batch, fake):
        loss, logs = super().discriminator_loss(batch, fake)
        self.norms.append(logs["train/gp_grad_norm"].item())
        return loss, logs


@pytest.mark.slow
def test_gradient_penalty_drives_critic_gradient_norm_toward_one():
    torch.manual_seed(0)
    # The DCGAN-style critic starts far from unit gradient norm (measured: mean 0.686 over the first
    # 10 steps, 0.944 over the last 10); the authors' critic with their init starts at 1.004, which
    # leaves nothing to drive.
    model = _RecordGP(image_shape=(1, 16, 16), latent_dim=8, feature_maps=8, architecture="dcgan", discriminator_norm="layer")
    _fit(model, 150)
    start, end = sum(model.norms[:10]) / 10, sum(model.norms[-10:]) / 10
    assert abs(end - 1.0) < 0.5 * abs(start - 1.0), (start, end)
