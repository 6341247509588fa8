"""StyleGAN / StyleGAN2: mapping + synthesis, truncation, mixing, regularizers, the apps' W space."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from genmodels import StyleGAN, StyleGAN2
from genmodels.apps.generation import generate, interpolation_frames
from genmodels.apps.latent import latent_space
from genmodels.callbacks import StopAtIteration
from tests.cli.common import fit, load, tiny_args
from genmodels.gans.stylegan import StyleGAN2Synthesis, StyleGANSynthesis
from tests.genmodels.helpers import loader

TINY = dict(image_shape=(1, 16, 16), latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32, channel_max=8)
SMALL = dict(TINY, image_shape=(1, 8, 8))


def _trainer(iterations: int, callbacks=()) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
                      callbacks=[*callbacks, StopAtIteration(iterations)])


def test_paper_sized_networks():
    """Default arguments build the papers' 1024x1024 networks (parameter counts of the official models)."""
    g2 = StyleGAN2Synthesis()
    assert g2.num_ws == 18 and abs(sum(p.numel() for p in g2.parameters()) / 1e6 - 28.0) < 1.0
    g1 = StyleGANSynthesis()
    assert g1.num_ws == 18 and g1.const.shape == (1, 512, 4, 4)


def test_psi_zero_gives_the_average_w_image_for_every_seed():
    torch.manual_seed(0)
    model = StyleGAN2(**TINY).eval()
    with torch.no_grad():
        model.generator_ema.w_avg.normal_()  # any tracked average
        average = model.synthesis(model.mean_w[None])
    for seed in (0, 1, 2):
        torch.testing.assert_close(generate(model, 1, seed, truncation=0.0), average)
    assert not torch.allclose(generate(model, 1, 0), generate(model, 1, 1))
    # psi = 1 leaves w unchanged; psi = 0.5 is half-way to the average.
    w = model.mapping(torch.randn(2, 8))
    torch.testing.assert_close(model.truncate(w, 1.0), w)
    torch.testing.assert_close(model.truncate(w, 0.5), 0.5 * (w + model.mean_w))


def test_average_w_is_an_ema_buffer_tracked_in_training_and_saved():
    torch.manual_seed(0)
    model = StyleGAN(**TINY, w_avg_decay=0.5, fade_images=8, stabilize_images=8)
    assert torch.equal(model.generator.w_avg, torch.zeros(8))
    model.train()
    z = torch.randn(4, 8)
    w = model.generator.map(z, track_w_avg=True)
    torch.testing.assert_close(model.generator.w_avg, 0.5 * w.mean(0))
    assert "generator.w_avg" in model.state_dict() and "generator_ema.w_avg" in model.state_dict()


def test_style_mixing_switches_w_at_a_crossover_layer():
    torch.manual_seed(0)
    model = StyleGAN2(**TINY, style_mixing=1.0).train()
    ws = model.mixed_ws(16)
    assert ws.shape == (16, 6, 8)
    for sample in ws:
        changes = [k for k in range(1, 6) if not torch.equal(sample[k], sample[k - 1])]
        assert len(changes) == 1  # one crossover layer in [1, num_ws)
        assert torch.equal(sample[changes[0]:], sample[-1:].expand(6 - changes[0], -1))
    no_mix = StyleGAN2(**TINY, style_mixing=0.0).train().mixed_ws(4)
    assert torch.equal(no_mix, no_mix[:, :1].expand_as(no_mix))


def test_noise_changes_training_images_and_a_seed_repeats_its_samples():
    torch.manual_seed(0)
    model = StyleGAN(**TINY, growing=False)
    with torch.no_grad():
        for p in model.generator_ema.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-zero noise scales
    gen = lambda: model.sample(2, generator=torch.Generator().manual_seed(0))  # noqa: E731
    torch.testing.assert_close(gen(), gen())
    w = model.generator_ema.broadcast(model.mapping(torch.randn(2, 8)))
    a, b = (model.generator_ema.synthesis(w, 2) for _ in range(2))
    assert not torch.allclose(a, b)


def test_w_space_hooks_for_the_apps():
    model = StyleGAN2(**TINY).eval()
    space = latent_space(model)
    assert space.kind == "w"
    frames = interpolation_frames(model, 0, 1, steps=3)
    assert frames.shape == (3, 1, 1, 16, 16)
    torch.testing.assert_close(frames[0, 0], generate(model, 1, 0)[0])


@pytest.mark.parametrize("cls", [StyleGAN, StyleGAN2])
def test_trains_with_lazy_regularizers(cls):
    torch.manual_seed(0)
    model = cls(**TINY, penalty_interval=2, path_length_interval=2, path_length_weight=2.0, fade_images=8, stabilize_images=8)
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    r1_at: list[int] = []
    penalty = model.discriminator_regularizer
    model.discriminator_regularizer = lambda *a: (r1_at.append(model.iteration), penalty(*a))[1]
    _trainer(4).fit(model, loader(32, (1, 16, 16), 8))
    assert model.iteration == 4 and int(model.images_seen) == 32
    assert r1_at == [0, 2]  # lazy R1: every penalty_interval-th iteration
    assert float(model.path_length_mean) > 0  # the EMA target a of Eq. 4 moved
    changed = [k for k, v in model.generator.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("mapping.") for k in changed) and "w_avg" in changed


def test_bad_options_fail_clearly():
    with pytest.raises(ValueError, match="architecture"):
        StyleGAN(**TINY, architecture="stylegan3")
    with pytest.raises(ValueError, match="growing"):
        StyleGAN(**TINY, architecture="stylegan2", growing=True)
    with pytest.raises(ValueError, match="style_mixing"):
        StyleGAN(**TINY, style_mixing=1.5)
    with pytest.raises(ValueError, match="power-of-2"):
        StyleGAN2(**{**TINY, "image_shape": (1, 12, 12)})


@pytest.mark.slow
@pytest.mark.parametrize("config", ["stylegan/digits.yaml", "stylegan2/digits.yaml"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, config):
    """w_avg, the path-length EMA, the growth phase and the mixing RNG all resume exactly."""
    args = ["--trainer.logger", "false", "--data.init_args.batch_size", "8", "--checkpoint.every_n_iterations", "100",
            "--sample_grid.every_n_iterations", "100", "--trainer.check_val_every_n_epoch", "1000",
            *tiny_args(config)]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(config, straight, "--max_iterations", "4", *args)
    fit(config, resumed, "--max_iterations", "2", *args)
    fit(config, resumed, "--max_iterations", "4", "--ckpt_path", "last", *args)
    a, b = load(straight / "checkpoints/last.ckpt")["state_dict"], load(resumed / "checkpoints/last.ckpt")["state_dict"]
    assert a.keys() == b.keys() and {"generator.w_avg", "path_length_mean", "images_seen"} <= set(a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------------------------------------
# The official training loop (StyleGAN2-ADA training_loop.py / loss.py, StyleGAN train.py)


def test_style_mixing_draws_one_crossover_per_batch():
    """One mixing decision and one cutoff in [1, num_ws) per batch (official loss.py style_mixing)."""
    torch.manual_seed(0)
    model = StyleGAN2(**TINY, style_mixing=0.5).train()
    cutoffs = []
    for _ in range(100):
        ws = model.mixed_ws(8)
        switch = [k for k in range(1, 6) if not torch.equal(ws[:, k], ws[:, k - 1])]
        assert len(switch) <= 1
        cutoff = switch[0] if switch else 6
        # every sample switches at the same layer, from its w1 to its w2
        assert torch.equal(ws[:, :cutoff], ws[:, :1].expand(-1, cutoff, -1))
        assert torch.equal(ws[:, cutoff:], ws[:, -1:].expand(-1, 6 - cutoff, -1))
        cutoffs.append(cutoff)
    assert set(cutoffs) == {1, 2, 3, 4, 5, 6}  # 6: not mixed
    assert 30 < cutoffs.count(6) < 70  # P(no mixing) = 0.5


def test_path_length_pass_uses_mixed_styles():
    torch.manual_seed(0)
    model = StyleGAN2(**TINY, style_mixing=1.0).train()
    seen = []
    model.generator.synthesis.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    model.path_length_penalty(4)
    (ws,) = seen
    assert not torch.equal(ws[:, 0], ws[:, -1])  # two latents: crossover before the last layer


def test_sample_draws_random_noise_from_the_generator_and_synthesis_keeps_it_fixed():
    torch.manual_seed(0)
    model = StyleGAN2(**TINY).eval()
    with torch.no_grad():
        for layer in model.generator_ema.synthesis.convs:
            layer.act.noise.weight.fill_(0.5)
    seeded = lambda s: model.sample(2, generator=torch.Generator().manual_seed(s))  # noqa: E731
    torch.testing.assert_close(seeded(0), seeded(0))  # reproducible from the generator
    z = model.sample_latent(2, torch.Generator().manual_seed(0))
    fixed = model.synthesis(model.mapping(z))  # const noise (apps, official generate.py)
    assert not torch.allclose(seeded(0), fixed)  # same z, random noise
    torch.testing.assert_close(model.synthesis(model.mapping(z)), fixed)
    const = StyleGAN2(**TINY, sample_noise="const").eval()
    const.load_state_dict(model.state_dict())
    torch.testing.assert_close(const.sample(2, generator=torch.Generator().manual_seed(0)), fixed)


@pytest.mark.parametrize("architecture", ["stylegan", "stylegan2"])
def test_per_batch_noise_is_one_draw_per_layer_shared_by_the_batch(architecture):
    torch.manual_seed(0)
    model = StyleGAN(**TINY, architecture=architecture, growing=False).eval()
    with torch.no_grad():
        for m in model.sampling_generator.modules():
            if hasattr(m, "const_noise"):
                m.noise.weight.fill_(0.5)
    w = model.mapping(torch.randn(1, 8)).expand(2, -1)  # one w twice: images differ only by their noise
    rng = torch.Generator().manual_seed(1)
    first, second = model.synthesis(w, "per_batch", rng), model.synthesis(w, "per_batch", rng)
    torch.testing.assert_close(first[0], first[1])  # shared by the batch
    assert not torch.allclose(first, second)  # a new draw per call
    assert not torch.allclose(first[0], model.synthesis(w)[0])  # not the fixed noise
    per_image = model.synthesis(w, "random", torch.Generator().manual_seed(1))
    assert not torch.allclose(per_image[0], per_image[1])
    # The same images as the fixed-noise path with the fixed images replaced by the generator's draws,
    # in layer order (what stylegan2-ada-pytorch's PPL does to its noise_const buffers).
    copy = StyleGAN(**TINY, architecture=architecture, growing=False).eval()
    copy.load_state_dict(model.state_dict())
    replay = torch.Generator().manual_seed(1)
    for m in copy.sampling_generator.modules():
        if hasattr(m, "const_noise"):
            m.const_noise.copy_(torch.randn(m.const_noise.shape, generator=replay))
    torch.testing.assert_close(copy.synthesis(w), first)


def test_ema_beta_is_the_official_half_life():
    model = StyleGAN2(**TINY, ema_kimg=10.0)
    batches = [{"image": torch.zeros(32, 1, 16, 16)}]
    assert model.ema_beta(batches) == pytest.approx(0.5 ** (32 / 10_000))  # config F, no ramp
    assert model.ema_beta(batches * 2) == pytest.approx(0.5 ** (64 / 10_000))  # an update of 2 micro-batches
    ramped = StyleGAN2(**TINY, ema_kimg=20.0, ema_rampup=0.05)
    ramped._update_start_images = 1000  # half-life min(20k, 0.05 * 1000) = 50 images
    assert ramped.ema_beta(batches) == pytest.approx(0.5 ** (32 / 50))


def _r1_independently(model, real):
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.discriminator(x, model.phase.level, model.phase.alpha).sum(), x)
    return grad.pow(2).sum(dim=(1, 2, 3)).mean()


def test_separate_lazy_regularization_steps_and_adam_scaling():
    """Official loop: Dreg every k (R1 * gamma/2 * k), Greg every k, Adam lr * c and betas ** c, c = k / (k + 1)."""
    torch.manual_seed(0)
    model = StyleGAN2(**SMALL, penalty_weight=0.5, penalty_interval=2, path_length_interval=2)
    opt_g, opt_d = model.configure_optimizers()
    for opt in (opt_g, opt_d):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.002 * 2 / 3)
        assert opt.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (2 / 3)))
    real = torch.rand(4, 1, 8, 8) * 2 - 1
    value, logs = model.discriminator_regularizer({"image": real}, None)
    torch.testing.assert_close(value, _r1_independently(model, real) * 0.5 / 2 * 2)
    # Trained 4 iterations: D steps = 4 main + 2 R1 steps, G steps = 4 main + 2 path-length steps.
    _trainer(4).fit(model, loader(32, (1, 8, 8), 8))
    opt_g, opt_d = (o.optimizer for o in model.optimizers())
    d, g = model.discriminator, model.generator
    assert {int(opt_d.state[p]["step"]) for p in d.parameters() if p is not d.head.out.bias} == {6}
    assert int(opt_d.state[d.head.out.bias]["step"]) == 4  # no R1 gradient: it does not change dD/dx
    assert int(opt_g.state[g.mapping.layers[0].weight]["step"]) == 6
    assert int(opt_g.state[g.synthesis.to_rgb[-1].bias]["step"]) == 4  # no path-length gradient


def test_fused_lazy_regularization_adds_the_penalty_to_the_main_loss():
    torch.manual_seed(0)
    model = StyleGAN2(**SMALL, penalty_weight=0.5, penalty_interval=2, path_length_interval=2, lazy_regularization="fused")
    opt_g, opt_d = model.configure_optimizers()
    assert opt_d.param_groups[0]["lr"] == 0.002 and opt_d.param_groups[0]["betas"] == (0.0, 0.99)
    r1_at: list[int] = []
    penalty = model.discriminator_regularizer
    model.discriminator_regularizer = lambda *a: (r1_at.append(model.iteration), penalty(*a))[1]
    _trainer(4).fit(model, loader(32, (1, 8, 8), 8))
    assert r1_at == [0, 2]
    assert {int(s["step"]) for s in model.optimizers()[1].optimizer.state.values()} == {4}


def test_stylegan_official_growth_starts_at_8x8_with_per_resolution_rates():
    model = StyleGAN(**{**TINY, "image_shape": (1, 256, 256)}, fade_images=10, stabilize_images=10)
    assert model.phase.resolution == 8
    assert [model.learning_rates(r)[0] for r in (64, 128, 256)] == [0.001, 0.0015, 0.002]
    assert model.schedule.phase(10).resolution == 16 and model.schedule.phase(15).alpha == 0.5


def test_celeba_config_is_the_active_official_minibatch_preset():
    """NVlabs/stylegan train.py's active preset `-8gpu`: minibatch_base 32, minibatch_dict
    {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}; training_loop.py: minibatch = dict.get(res, base).
    The images per update at every resolution and the update count for 25M images are re-derived."""
    from genmodels.gans.progan import GrowthSchedule

    config = yaml.safe_load((Path(__file__).parents[3] / "experiments/stylegan/celeba.yaml").read_text())
    args, batch = config["model"]["init_args"], config["data"]["init_args"]["batch_size"]
    official_dict, official_base = {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}, 32
    model = StyleGAN(**TINY, minibatch_schedule=args["minibatch_schedule"])
    for resolution in (8, 16, 32, 64, 128, 256, 512, 1024):
        images = official_dict.get(resolution, official_base)
        assert model._micro_batches_per_update(resolution, batch) * batch == images, resolution
    schedule = GrowthSchedule(final_level=5, fade_images=args["fade_images"], stabilize_images=args["stabilize_images"],
                              initial_level=1)  # 128x128 from 8x8 (lod_initial_resolution 8)
    seen = updates = 0
    while seen < 25_000_000:  # total_kimg 25000
        seen += official_dict.get(schedule.phase(seen).resolution, official_base)
        updates += 1
    assert config["max_iterations"] == updates
