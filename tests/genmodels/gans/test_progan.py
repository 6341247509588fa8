"""ProGAN: the growing schedule, fade-in, real images at the current resolution, exact resume."""

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from genmodels import ProGAN
from genmodels.callbacks import StopAtIteration
from genmodels.gans.progan import GrowthSchedule, Phase, ProGANDiscriminator, ProGANGenerator
from tests.cli.common import fit, load
from tests.genmodels.helpers import loader

TINY = dict(image_shape=(1, 16, 16), latent_dim=8, channel_base=32, channel_max=8)


def _trainer(iterations: int, callbacks=()) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
                      callbacks=[*callbacks, StopAtIteration(iterations)])


def test_schedule_stabilizes_4x4_then_fades_and_stabilizes_each_level():
    schedule = GrowthSchedule(final_level=2, fade_images=10, stabilize_images=20)
    assert schedule.phase(0) == schedule.phase(19) == Phase(0, 1.0)
    # alpha rises linearly from 0 to 1 over the fade of 8x8, then 8x8 is stable.
    alphas = [schedule.phase(t).alpha for t in range(20, 30)]
    assert [schedule.phase(t).level for t in range(20, 50)] == [1] * 30
    assert alphas == pytest.approx([k / 10 for k in range(10)])
    assert schedule.phase(30) == schedule.phase(49) == Phase(1, 1.0)
    assert schedule.phase(50) == Phase(2, 0.0) and schedule.phase(55) == Phase(2, 0.5)
    assert schedule.phase(60) == schedule.phase(10**9) == Phase(2, 1.0)
    assert schedule.images_until_final() == 60 and schedule.phase(60).resolution == 16
    assert GrowthSchedule(final_level=2, growing=False).phase(0) == Phase(2, 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image_shape=(1, 24, 24)), "power-of-2"),
        (dict(image_shape=(1, 16, 8)), "square"),
        (dict(fade_images=-1), "fade_images"),
        (dict(fade_images=0, stabilize_images=0), "images per phase"),
        (dict(drift=-0.1), "drift"),
        (dict(spectral_norm=True), "spectral_norm"),
    ],
)
def test_bad_configs_fail_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProGAN(**{**TINY, **kwargs})


def test_networks_fade_between_resolutions():
    torch.manual_seed(0)
    g = ProGANGenerator(latent_dim=8, resolution=16, image_channels=1, channel_base=32, channel_max=8)
    d = ProGANDiscriminator(resolution=16, image_channels=1, channel_base=32, channel_max=8)
    z = torch.randn(4, 8)
    assert [g(z, level).shape[-1] for level in range(3)] == [4, 8, 16]
    # alpha = 0: the new block is invisible (the previous level's image, upsampled).
    torch.testing.assert_close(g(z, 1, 0.0), torch.nn.functional.interpolate(g(z, 0), scale_factor=2.0))
    half = g(z, 1, 0.5)
    torch.testing.assert_close(half, 0.5 * g(z, 1, 0.0) + 0.5 * g(z, 1, 1.0))
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(d(x, 1, 0.0), d(torch.nn.functional.avg_pool2d(x, 2), 0))
    assert d(torch.randn(4, 1, 16, 16), 2).shape == (4,)


def test_real_images_follow_the_phase():
    model = ProGAN(**TINY, fade_images=8, stabilize_images=8)
    images = torch.randn(4, 1, 16, 16)
    assert model.real_images(images, Phase(0, 1.0)).shape[-1] == 4
    torch.testing.assert_close(model.real_images(images, Phase(1, 1.0)), torch.nn.functional.avg_pool2d(images, 2))
    blurred = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(images, 4), scale_factor=2.0)
    torch.testing.assert_close(model.real_images(images, Phase(1, 0.0)), blurred)
    assert model.sample(3).shape == (3, 1, 16, 16)  # sampling is always at the final resolution


class _RecordPhase(pl.Callback):
    def __init__(self) -> None:
        self.phases: list[Phase] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.phases.append(pl_module.phase)


def test_resolution_grows_at_the_configured_iterations():
    torch.manual_seed(0)
    model = ProGAN(**TINY, fade_images=32, stabilize_images=16)  # batch 8: 4 fade + 2 stable iterations
    record = _RecordPhase()
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
                         callbacks=[record, StopAtIteration(14)])
    trainer.fit(model, loader(32, (1, 16, 16), 8))
    assert [p.resolution for p in record.phases] == [4] * 2 + [8] * 6 + [16] * 6
    assert [p.alpha for p in record.phases[2:8]] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert int(model.images_seen) == 14 * 8 and model.phase == Phase(2, 1.0)


TINY_CLI = ["--trainer.logger", "false", "--data.init_args.batch_size", "8", "--checkpoint.every_n_iterations", "100",
            "--sample_grid.every_n_iterations", "100", "--model.init_args.latent_dim", "8", "--model.init_args.channel_base", "32",
            "--model.init_args.channel_max", "8", "--model.init_args.fade_images", "32", "--model.init_args.stabilize_images", "16",
            "--trainer.check_val_every_n_epoch", "1000"]


@pytest.mark.slow
def test_resume_in_mid_fade_continues_with_the_same_alpha_and_resolution(tmp_path: Path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit("progan/digits.yaml", straight, "--max_iterations", "6", *TINY_CLI)
    fit("progan/digits.yaml", resumed, "--max_iterations", "4", *TINY_CLI)
    middle = load(resumed / "checkpoints/last.ckpt")
    # Stopped after 4 iterations = 32 images: 8x8, half-way through its fade.
    assert int(middle["state_dict"]["images_seen"]) == 32
    assert GrowthSchedule(2, 32, 16).phase(32) == Phase(1, 0.5)
    fit("progan/digits.yaml", resumed, "--max_iterations", "6", "--ckpt_path", "last", *TINY_CLI)
    a, b = load(straight / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert int(b["state_dict"]["images_seen"]) == 48


def test_exported_generator_keeps_the_phase_and_exports_as_a_program(tmp_path: Path):
    from genmodels.apps.export import export_program, export_weights, load_generative_model

    torch.manual_seed(0)
    model = ProGAN(**TINY, fade_images=8, stabilize_images=8).eval()
    model.add_images_seen(12)  # 8x8, half-way through its fade
    assert model.phase == Phase(1, 0.5)
    reopened = load_generative_model(export_weights(model, tmp_path / "g.pt"))
    assert reopened.phase == Phase(1, 0.5) and int(reopened.images_seen) == 12
    seeded = lambda m: m.sample(2, generator=torch.Generator().manual_seed(0))  # noqa: E731
    torch.testing.assert_close(seeded(reopened), seeded(model))
    path, difference = export_program(model, tmp_path / "g.pt2")
    assert path.is_file() and difference < 1e-5


def test_cli_refuses_an_image_size_that_cannot_grow(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as err:
        fit("progan/digits.yaml", tmp_path / "run", "--trainer.logger", "false", "--data.init_args.image_size", "24")
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert "power-of-2" in message and "image_size" in message


# ---------------------------------------------------------------------------------------------
# The official training loop (tkarras/progressive_growing_of_gans, NVlabs/stylegan)


def _official_lod(images: int, resolution_log2: int, initial_resolution: int, training: int, transition: int) -> float:
    """training_schedule() of the official code: lod 0 is the final resolution."""
    phase_dur = training + transition
    phase_idx = images // phase_dur
    lod = resolution_log2 - math.log2(initial_resolution) - phase_idx
    lod -= max(images - phase_idx * phase_dur - training, 0) / transition
    return max(lod, 0.0)


@pytest.mark.parametrize("initial", [4, 8])
def test_schedule_matches_the_official_lod(initial):
    schedule = GrowthSchedule(final_level=4, fade_images=6, stabilize_images=10, initial_level=int(math.log2(initial)) - 2)
    for images in range(0, 120):
        lod = _official_lod(images, 6, initial, 10, 6)
        phase = schedule.phase(images)
        # level L at alpha a is lod = final - L + (1 - a); at a fade's first image alpha 0 of the
        # new level is the same network output as the official lod (the previous level at alpha 1).
        assert phase.level - (1.0 - phase.alpha) == pytest.approx(4 - lod), images
        assert phase.level in (4 - math.floor(lod), 4 - math.floor(lod) + 1), images


def test_first_dense_layer_has_the_official_gain():
    g = ProGANGenerator(latent_dim=8, resolution=16, image_channels=1, channel_base=32, channel_max=8)
    assert g.blocks[0].dense.weight_scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(8))  # G_paper: gain=sqrt(2)/4
    assert g.blocks[0].conv.conv.weight_scale == pytest.approx(math.sqrt(2) / math.sqrt(8 * 9))


class _Record(pl.Callback):
    """Per update: resolution, alpha, micro-batches, images seen after it, D's Adam step count and lr."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module._micro_batches:
            return
        opt_d = module.optimizers()[1].optimizer
        steps = {int(s["step"]) for s in opt_d.state.values()}
        self.rows.append((module.iteration, module.accumulate_grad_batches, int(module.images_seen), steps, opt_d.param_groups[0]["lr"]))


def test_minibatch_schedule_lr_schedule_and_adam_reset_per_phase():
    """minibatch_dict as accumulated micro-batches, G/D_lrate_dict, reset_opt_for_new_lod at fade start and end."""
    torch.manual_seed(0)
    model = ProGAN(**{**TINY, "image_shape": (1, 8, 8)}, fade_images=16, stabilize_images=32,
                   minibatch_schedule={4: 16, 8: 8}, lr_schedule_by_resolution={8: 0.004})
    record = _Record()
    _trainer(5, [record]).fit(model, loader(64, (1, 8, 8), 8))
    # [0, 32): 4x4, 16 images = 2 micro-batches per update; [32, 48): fade to 8x8; then 8x8 stable.
    assert [(it, k, seen) for it, k, seen, _, _ in record.rows] == [(1, 2, 16), (2, 2, 32), (3, 1, 40), (4, 1, 48), (5, 1, 56)]
    # Adam restarts when the fade starts (update 3) and when it ends (update 5).
    assert [steps for *_, steps, _ in record.rows] == [{1}, {2}, {1}, {2}, {1}]
    assert [lr for *_, lr in record.rows] == [0.001, 0.001, 0.004, 0.004, 0.004]


def test_minibatch_schedule_must_be_a_multiple_of_the_loader_batch():
    from genmodels.errors import UserError

    model = ProGAN(**{**TINY, "image_shape": (1, 8, 8)}, fade_images=16, stabilize_images=32, minibatch_schedule={4: 12})
    with pytest.raises(UserError, match="data.init_args.batch_size"):
        _trainer(1).fit(model, loader(32, (1, 8, 8), 8))


def test_a_phase_boundary_inside_an_accumulated_update_keeps_one_phase():
    """Regression: with 2 micro-batches per update, the phase is fixed at the update's first micro-batch."""
    torch.manual_seed(0)
    model = ProGAN(**{**TINY, "image_shape": (1, 8, 8)}, fade_images=64, stabilize_images=8, accumulate_grad_batches=2)
    seen: list[tuple] = []
    discriminate = model.discriminate
    model.discriminate = lambda images, condition=None, critic="d": (seen.append((model.iteration, images.shape[-1], model.phase)), discriminate(images))[1]
    _trainer(2).fit(model, loader(32, (1, 8, 8), 8))
    # Update 1 starts at 0 images (4x4) although its 2nd micro-batch starts at 8 = the boundary;
    # update 2 starts at 16 images: level 1, alpha (16 - 8) / 64 for both micro-batches.
    assert {(it, size, phase) for it, size, phase in seen} == {(0, 4, Phase(0, 1.0)), (1, 8, Phase(1, 0.125))}
    assert int(model.images_seen) == 32


# -- D's downsampling block against the official layers (issue #26) ----------------------------


def _official_conv1_down(x: torch.Tensor, conv, blur: bool) -> torch.Tensor:
    """``Conv1_down`` written from the official TF layers on fixed tensors, independently of _DBlock.

    progressive_growing_of_gans ``D_paper`` (fused_scale=True) and stylegan ``D_basic``:
    act(apply_bias(conv2d_downscale2d([blur2d](x)))), where the fused downscale pads the 3x3 kernel
    to 5x5, sums its four 1-px shifts times 0.25 into a 4x4 kernel and convolves with stride 2,
    SAME padding (1 px per side here). blur2d: [1, 2, 1] outer product / 16, depthwise, padding 1.
    """
    if blur:
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
        x = torch.nn.functional.conv2d(x, k, padding=1, groups=x.shape[1])
    w = torch.nn.functional.pad(conv.weight * conv.weight_scale, (1, 1, 1, 1))
    w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
    y = torch.nn.functional.conv2d(x, w, stride=2, padding=1) + conv.bias.view(1, -1, 1, 1)
    return torch.nn.functional.leaky_relu(y, 0.2)


@pytest.mark.parametrize("blur_taps", [None, (1.0, 2.0, 1.0)], ids=["progan", "stylegan"])
def test_discriminator_block_activates_after_the_downscale_as_the_official_code(blur_taps):
    torch.manual_seed(0)
    d = ProGANDiscriminator(resolution=16, image_channels=1, channel_base=64, channel_max=8, blur_taps=blur_taps)
    block = d.blocks[2]  # 16x16 -> 8x8
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p))  # non-zero biases: the order of bias, pool and activation shows
        x = torch.randn(2, block.conv0.weight.shape[1], 16, 16)
        conv0 = torch.nn.functional.leaky_relu(torch.nn.functional.conv2d(
            x, block.conv0.weight * block.conv0.weight_scale, block.conv0.bias, padding=1), 0.2)
        expected = _official_conv1_down(conv0, block.conv1, blur=blur_taps is not None)
        assert torch.allclose(block(x), expected, atol=1e-5)
        # The other order (ProGAN's fused_scale=False) is a named option and differs on these tensors.
        block.activate_after_downscale = False
        assert not torch.allclose(block(x), expected, atol=1e-2)
