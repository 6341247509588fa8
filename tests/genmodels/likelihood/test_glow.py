"""Glow: exact inverse, log-determinants against autograd, actnorm's data-dependent init, errors."""

import numpy as np
import pytest
import torch

from genmodels import Glow
from genmodels.likelihood.glow import ActNorm, InvertibleConv1x1
from tests.genmodels.likelihood.helpers import brute_force_log_det, perturb_


def _model(shape=(1, 8, 8), num_levels=2, **kwargs) -> Glow:
    torch.manual_seed(0)
    model = Glow(image_shape=shape, num_levels=num_levels, steps_per_level=2, hidden_channels=8, **kwargs)
    model.train().bits_per_dim({"image": torch.rand(8, *shape) * 2 - 1})  # data-dependent init
    return perturb_(model, 0.05).eval()


@pytest.mark.parametrize("lu, coupling", [(True, "affine"), (False, "affine"), (True, "additive")])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 8, 8)])
def test_inverse_recovers_the_input(shape, lu, coupling):
    model = _model(shape, lu=lu, coupling=coupling)
    x = torch.rand(4, *shape) - 0.5
    with torch.no_grad():
        latents, _, _ = model.flow(x)
        assert sum(z[0].numel() for z in latents) == x[0].numel()
        assert (model.flow.inverse(latents) - x).abs().max() < 1e-4


@pytest.mark.parametrize("lu, coupling", [(True, "affine"), (False, "affine"), (True, "additive")])
def test_log_det_matches_autograd(lu, coupling):
    model = _model((1, 4, 4), lu=lu, coupling=coupling).double()
    x = torch.rand(1, 1, 4, 4, dtype=torch.float64) - 0.5
    latents, log_det, _ = model.flow(x)
    assert log_det.item() == pytest.approx(brute_force_log_det(lambda v: model.flow(v)[0], x).item(), abs=1e-8)
    assert log_det.abs().item() > 0.1


def test_lu_and_plain_1x1_convolutions_agree_on_log_det():
    torch.manual_seed(0)
    for lu in (True, False):
        conv = perturb_(InvertibleConv1x1(6, lu=lu), 0.2).double()
        w = conv.weight_matrix()
        assert conv.log_abs_det().item() == pytest.approx(torch.linalg.slogdet(w)[1].item(), abs=1e-10)
        x = torch.randn(2, 6, 3, 5, dtype=torch.float64)
        y, log_det = conv(x)
        assert log_det.tolist() == pytest.approx([15 * conv.log_abs_det().item()] * 2)
        assert torch.allclose(conv.inverse(y), x, atol=1e-10)


def test_actnorm_initializes_from_the_first_training_batch_once():
    norm = ActNorm(3)
    x = torch.randn(16, 3, 4, 4) * torch.tensor([2.0, 0.5, 3.0]).view(1, 3, 1, 1) + 5
    norm.eval()(x)
    assert norm.initialized.item() == 0  # evaluation never initializes
    y, log_det = norm.train()(x)
    assert norm.initialized.item() == 1
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    assert log_det[0].item() == pytest.approx(-16 * torch.log(x.std((0, 2, 3), unbiased=False)).sum().item(), rel=1e-4)
    bias = norm.bias.detach().clone()
    norm(x * 10)
    assert torch.equal(norm.bias, bias)  # a second batch does not re-initialize


def test_actnorm_initialization_survives_a_checkpoint():
    model = _model()
    state = model.state_dict()
    flags = [k for k in state if k.endswith("initialized")]
    assert len(flags) == 2 * 2 * 3  # levels x steps x (flow actnorm + two in the coupling network)
    assert all(state[k].item() == 1 for k in flags)
    restored = Glow(image_shape=(1, 8, 8), num_levels=2, steps_per_level=2, hidden_channels=8)
    restored.load_state_dict(state)
    restored.train().bits_per_dim({"image": torch.rand(4, 1, 8, 8) * 2 - 1})
    for k, v in restored.state_dict().items():
        assert torch.equal(v, state[k]), k  # nothing re-initialized on the resumed model's first batch


def test_an_image_size_the_squeezes_cannot_divide_is_refused():
    with pytest.raises(ValueError, match=r"Glow squeezes 3 time\(s\).*divisible by 8; got 28x28.*num_levels"):
        Glow(image_shape=(1, 28, 28), num_levels=3)
    with pytest.raises(ValueError, match="coupling"):
        Glow(image_shape=(1, 8, 8), num_levels=1, coupling="multiplicative")


def test_temperature_scales_the_latents_around_the_prior_mean():
    model = _model()
    state = torch.get_rng_state()
    samples = {t: model.sample(4, generator=torch.Generator().manual_seed(3), temperature=t) for t in (0.0, 0.5, 1.0)}
    assert torch.equal(torch.get_rng_state(), state)
    for images in samples.values():
        assert images.shape == (4, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    zero = samples[0.0]
    assert all(torch.equal(zero[0], zero[k]) for k in range(1, 4))  # T = 0: the mode, for every draw
    assert not torch.equal(samples[0.5], samples[1.0])
    assert torch.equal(samples[1.0], model.sample(4, generator=torch.Generator().manual_seed(3)))


def test_bits_per_dim_of_a_fresh_model_on_uniform_noise_is_close_to_8():
    # At initialization every coupling is the identity and actnorm whitens the data; uniform noise
    # then costs about 8 bits/dim plus the Gaussian's mismatch with a uniform (< 0.3).
    torch.manual_seed(0)
    model = Glow(image_shape=(1, 8, 8), num_levels=2, steps_per_level=2, hidden_channels=8).train()
    pixels = torch.randint(0, 256, (64, 1, 8, 8))
    bpd = model.bits_per_dim({"image": pixels / 127.5 - 1}).mean().item()
    assert 8.0 < bpd < 8.3


def test_sampling_never_triggers_the_data_dependent_init():
    model = Glow(image_shape=(1, 8, 8), num_levels=2, steps_per_level=1, hidden_channels=4).train()
    model.sample(2, generator=torch.Generator().manual_seed(0))
    assert model.training
    assert all(m.initialized.item() == 0 for m in model.modules() if isinstance(m, ActNorm))


# -- the authors' optimizer: Adamax and Polyak averaging (openai/glow optim.py) ------------------

import math  # noqa: E402

import pytorch_lightning as pl  # noqa: E402
import yaml  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from genmodels.likelihood.glow import GlowAdamax  # noqa: E402
from tests.cli.common import EXPERIMENTS  # noqa: E402


def test_glow_adamax_matches_the_authors_update_by_hand():
    lr, beta1, beta2, eps = 0.01, 0.9, 0.99, 1e-8
    grads = [[0.1, -0.2], [0.3, 0.05], [-0.2, 0.1]]
    w = torch.nn.Parameter(torch.tensor([0.5, -1.0], dtype=torch.float64))
    optimizer = GlowAdamax([w], lr=lr, betas=(beta1, beta2), eps=eps)
    expected, m, u = [0.5, -1.0], [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(grads, start=1):
        w.grad = torch.tensor(g, dtype=torch.float64)
        optimizer.step()
        alpha = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        for i in range(2):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            u[i] = max(beta2 * u[i], abs(g[i]))
            expected[i] -= alpha * m[i] / (u[i] + eps)
        assert w.tolist() == pytest.approx(expected, rel=1e-12), t
    # Not torch's Adamax: its first step is lr * m / ((1 - beta1) u) = lr, ten times the authors'
    # lr * sqrt(1 - beta2) here.
    v = torch.nn.Parameter(torch.tensor([0.5, -1.0], dtype=torch.float64))
    torch_adamax = torch.optim.Adamax([v], lr=lr, betas=(beta1, beta2), eps=eps)
    v.grad = torch.tensor(grads[0], dtype=torch.float64)
    torch_adamax.step()
    assert 0.5 - v[0].item() == pytest.approx(lr, rel=1e-6)


class _Weights(pl.Callback):
    """Records one coupling weight after every optimizer step."""

    def __init__(self):
        self.after = []

    def on_train_batch_end(self, trainer, model, outputs, batch, batch_idx):
        self.after.append(_coupling_weight(model.flow).detach().clone())


def _coupling_weight(flow):
    return next(p for name, p in flow.named_parameters() if name.endswith("nn.conv1.weight"))


def _fit_tiny(model, steps):
    torch.manual_seed(0)
    images = [{"image": torch.rand(1, 8, 8) * 2 - 1} for _ in range(4 * steps)]
    probe = _Weights()
    pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, max_steps=steps, callbacks=[probe]).fit(model, DataLoader(images, batch_size=4))
    return probe.after


def test_polyak_average_matches_a_hand_computed_moving_average():
    torch.manual_seed(0)
    model = Glow(image_shape=(1, 8, 8), num_levels=1, steps_per_level=1, hidden_channels=4, warmup_iterations=0,
                 optimizer="adamax", polyak_iterations=4)
    initial = _coupling_weight(model.flow).detach().clone()  # actnorm's init does not touch couplings
    after = _fit_tiny(model, 3)
    decay = 1 - 1 / 4
    average = initial
    for w in after:
        average = decay * average + (1 - decay) * w
    torch.testing.assert_close(_coupling_weight(model.flow_polyak), average)
    assert not torch.equal(after[-1], average)
    assert isinstance(model.optimizers().optimizer, GlowAdamax)
    assert model.optimizers().optimizer.param_groups[0]["betas"] == (0.9, decay)
    # Actnorm in the average starts from the data-dependent init, not from its constructor values.
    flags = [b for name, b in model.flow_polyak.named_buffers() if name.endswith("initialized")]
    assert flags and all(f.item() == 1 for f in flags)
    assert all(not p.requires_grad for p in model.flow_polyak.parameters())


def test_evaluation_and_sampling_use_the_average():
    torch.manual_seed(0)
    model = Glow(image_shape=(1, 8, 8), num_levels=1, steps_per_level=1, hidden_channels=4, warmup_iterations=0,
                 optimizer="adamax", polyak_iterations=2)
    _fit_tiny(model, 2)
    model.eval()
    y = torch.rand(3, 1, 8, 8)
    _, log_det, log_prior = model.flow_polyak(y - 0.5)
    torch.testing.assert_close(model.log_density(y), log_prior + log_det)
    raw = model.flow(y - 0.5)
    assert not torch.allclose(model.log_density(y), raw[2] + raw[1])
    model.polyak_evaluation = False
    torch.testing.assert_close(model.log_density(y), raw[2] + raw[1])


def test_cifar10_config_uses_the_authors_optimizer():
    config = yaml.safe_load((EXPERIMENTS / "glow/cifar10.yaml").read_text())
    args, batch = config["model"]["init_args"], config["data"]["init_args"]["batch_size"]
    assert args["optimizer"] == "adamax" and args["lr"] == 1e-3 and batch == 64
    # mpiexec -n 8 x n_batch_train 64 (openai/glow README): a global batch of 512
    global_batch = batch * config["trainer"]["accumulate_grad_batches"] * config["trainer"]["devices"]
    assert global_batch == 8 * 64 and args["train_images"] == 50_000
    assert math.ceil(args["train_images"] / global_batch) == 98  # the authors' train_its
    assert args["polyak_epochs"] == 1 and args["warmup_epochs"] == 10  # polyak_epochs, epochs_warmup defaults
    assert "polyak_iterations" not in args and "warmup_iterations" not in args
    assert "gradient_clip_val" not in config["trainer"]  # the authors do not clip


class _LearningRates(pl.Callback):
    def __init__(self):
        self.lrs, self.betas = [], []

    def on_train_batch_start(self, trainer, model, batch, batch_idx):
        group = trainer.optimizers[0].param_groups[0]
        self.lrs.append(group["lr"])
        self.betas.append(group["betas"][1])


def test_global_batch_from_accumulation_sets_the_authors_beta2_polyak_and_warmup():
    """openai/glow train.py under mpiexec -n R: train_its = ceil(n_train / (n_batch x R)),
    beta2 = polyak decay = 1 - 1/(train_its x polyak_epochs) (optim.py), and
    lr = lr0 x min(1, n_processed / (n_train x epochs_warmup)) with n_processed = steps x n_batch x R.
    Here R is played by accumulate_grad_batches 2 over loader batches of 4 (global 8), N = 20."""
    torch.manual_seed(0)
    n_train, warmup_epochs, polyak_epochs = 20, 2, 1.5
    model = Glow(image_shape=(1, 8, 8), num_levels=1, steps_per_level=1, hidden_channels=4, optimizer="adamax",
                 train_images=n_train, polyak_epochs=polyak_epochs, warmup_epochs=warmup_epochs, lr=1e-3)
    initial = _coupling_weight(model.flow).detach().clone()
    images = [{"image": torch.rand(1, 8, 8) * 2 - 1} for _ in range(4 * 2 * 6)]
    probe, weights = _LearningRates(), _Weights()
    pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, max_steps=6, accumulate_grad_batches=2,
               callbacks=[probe, weights]).fit(model, DataLoader(images, batch_size=4))
    train_its = math.ceil(n_train / 8)  # 3
    beta2 = 1 - 1 / (train_its * polyak_epochs)
    assert model.global_batch == 8 and model.polyak_decay == pytest.approx(beta2)
    assert probe.betas[1:] == [pytest.approx(beta2)] * (len(probe.betas) - 1)
    # one lr per optimizer step (two micro-batches each): step k uses min(1, 8k / (20 x 2))
    expected = [1e-3 * min(1.0, k * 8 / (n_train * warmup_epochs)) for k in range(6)]
    assert probe.lrs[0::2] == [pytest.approx(e) for e in expected] and expected[0] == 0.0 and expected[5] == 1e-3
    # the Polyak average uses the same decay, once per optimizer step (6 recorded after-step weights)
    after = weights.after[1::2]
    average = initial
    for w in after:
        average = beta2 * average + (1 - beta2) * w
    torch.testing.assert_close(_coupling_weight(model.flow_polyak), average)


def test_actnorm_log_scale_is_stored_divided_by_the_authors_factor():
    """openai/glow tfops.actnorm_scale: logs = v x 3 with v initialised to log(1 / (std + 1e-6)) / 3,
    y = (x - mean) x exp(logs); so dL/dv = 3 x dL/dlogs. Checked on fixed numbers against numpy."""
    x = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]], [[3.0, 1.0], [1.0, 5.0]]]]).repeat(2, 1, 1, 1)
    x[1] *= 0.5
    norm = ActNorm(2)
    norm.train()
    y, log_det = norm(x)
    flat = x.permute(1, 0, 2, 3).reshape(2, -1).double().numpy()
    mean, std = flat.mean(1), flat.std(1)
    v = np.log(1 / (std + 1e-6)) / 3
    torch.testing.assert_close(norm.log_scale.detach().flatten().double(), torch.from_numpy(v))
    expected = (flat - mean[:, None]) * np.exp(3 * v)[:, None]
    torch.testing.assert_close(y.permute(1, 0, 2, 3).reshape(2, -1).double(), torch.from_numpy(expected))
    torch.testing.assert_close(log_det.double(), torch.full((2,), 4 * 3 * v.sum(), dtype=torch.float64))
    weights = torch.arange(16.0).view(2, 2, 2, 2) / 10
    (norm(x)[0] * weights).sum().backward()
    grad_logs = (norm(x)[0] * weights).sum((0, 2, 3)).detach()  # dL/dlogs = sum y * w per channel
    torch.testing.assert_close(norm.log_scale.grad.flatten(), 3 * grad_logs)
    assert ActNorm(2, logscale_factor=1.0).logscale_factor == 1.0
    assert all(m.logscale_factor == 3.0 for m in Glow(image_shape=(1, 8, 8), num_levels=1, steps_per_level=1,
                                                      hidden_channels=4).modules() if isinstance(m, ActNorm))




def test_checkpoints_without_the_factor_load_with_the_plain_log_scale_they_stored():
    """Glow checkpoints written before actnorm_logscale_factor existed record none; their stored
    log-scales are plain ones, so `build_model` reads them with factor 1 (`Glow.checkpoint_defaults`)."""
    from genmodels.checkpoints import build_model

    old = Glow(image_shape=(1, 8, 8), num_levels=1, steps_per_level=1, hidden_channels=4, actnorm_logscale_factor=1.0)
    hparams = {k: v for k, v in dict(old.hparams).items() if k != "actnorm_logscale_factor"}
    checkpoint = {"hyper_parameters": {**hparams, "_class_path": "genmodels.Glow"}, "state_dict": old.state_dict(),
                  "genmodels": {"model_class": "genmodels.likelihood.glow.Glow", "iteration": 0}}
    loaded = build_model(checkpoint)
    assert all(m.logscale_factor == 1.0 for m in loaded.modules() if isinstance(m, ActNorm))
    recorded = build_model({**checkpoint, "hyper_parameters": {**checkpoint["hyper_parameters"], "actnorm_logscale_factor": 3.0}})
    assert all(m.logscale_factor == 3.0 for m in recorded.modules() if isinstance(m, ActNorm))
