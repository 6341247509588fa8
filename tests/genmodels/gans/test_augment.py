"""DiffAugment and ADA (genmodels/gans/augment.py) and how AdversarialModel applies them; LeCam."""

import math

import pytest
import pytorch_lightning as pl
import torch

from genmodels import DCGAN, GAN
from genmodels.callbacks import StopAtIteration
from genmodels.gans.augment import (
    AdaptiveAugment, DiffAugment, cutout, rand_brightness, rand_contrast, rand_saturation, translate,
)
from genmodels.gans.losses import LeCamAnchors, lecam_penalty
from tests.genmodels.helpers import loader

# Reference outputs of the official code on fixed inputs and seeds, recorded by running
# mit-han-lab/data-efficient-gans DiffAugment_pytorch.py and NVlabs/stylegan2-ada-pytorch
# training/augment.py (AugmentPipe with every bgc multiplier at 1) with the same torch RNG draws.
DIFFAUGMENT_SEED11 = [
    0.0117, 0.373, 0.7343, -1.2529, 0.5536, -1.4336, -1.0723, -0.711, -1.2529, -0.8916, -0.5303, -0.169, -0.711,
    -0.3496, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3869, 0.7848, 1.1827, -1.0056, 0.0, 0.0, -0.8067, -0.4088, 0.0, 0.0,
    -0.2099, 0.188,
]
ADA_RGB_P1_SEED123 = [
    -0.1322, -0.2883, -0.3322, 0.1942, -0.2544, -0.1396, -0.1622, 0.0526, 0.1767, 0.023, 0.0233, -0.0461, -0.13,
    0.0038, 0.0764, 0.1819, -0.2438, -0.0841, -0.1002, -0.0396, -0.0687, 0.1941, -0.2012, -0.0489, 0.059, -0.0409,
    0.1, 0.1706, -0.922, -0.7585, -0.5109, 0.4036, 1.1475, 1.2346, -0.798, 1.2615, 0.6221, 0.5768, 0.5552, 0.4911,
    1.3534, 0.2551, -1.1445, 0.6618, 0.9873, 1.1194, -0.071, 0.3387, 0.7195, 0.8455, -0.3129, 0.7642, 0.9228, -0.4983,
]
ADA_GRAY_P05_SEED7 = [
    -0.1409, 0.1515, 0.4883, 0.1492, -0.5223, -0.2614, -0.0679, 0.0893, 0.2403, 0.1166, 0.2333, -0.4205, 0.3234,
    0.4015, -1.0098, -0.3474, -0.2515, 0.1853,
]
NOT_ONLY = ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast", "lumaflip", "hue", "saturation"]


def _only(*ops, p=1.0):
    """An ADA pipeline with only ``ops`` enabled, at probability ``p``."""
    pipe = AdaptiveAugment(**{op: (1.0 if op in ops else 0.0) for op in NOT_ONLY})
    pipe.p.fill_(p)
    return pipe


def _ramp(shape):
    return (torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape) % 17) / 8 - 1


# -- DiffAugment ops on fixed tensors ----------------------------------------------------------


def test_translation_by_a_known_shift_is_a_roll_with_zero_fill():
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5) + 1
    out = translate(x, torch.tensor([[1, 0], [0, -2]]))
    expected0 = torch.zeros_like(x[0])
    expected0[:, :3] = x[0, :, 1:]  # dy = +1: row i shows row i + 1, the last row empty
    expected1 = torch.zeros_like(x[1])
    expected1[:, :, 2:] = x[1, :, :, :3]  # dx = -2: column j shows column j - 2
    assert torch.equal(out[0], expected0) and torch.equal(out[1], expected1)


def test_cutout_zeroes_exactly_the_rectangle():
    x = torch.ones(1, 2, 6, 6)
    out = cutout(x, torch.tensor([[2, 5]]), (2, 4))  # rows 1-2, columns 3-6 (clipped to 3-5)
    expected = torch.ones(1, 2, 6, 6)
    expected[:, :, 1:3, 3:6] = 0
    assert torch.equal(out, expected)


def test_colour_ops_values():
    x = torch.tensor([[[[0.2, -0.4]], [[0.6, 0.0]], [[-0.2, 0.4]]]])  # (1, 3, 1, 2)
    r = torch.full((1, 1, 1, 1), 0.75)
    assert torch.allclose(rand_brightness(x, r), x + 0.25)
    channel_mean = torch.tensor([[[[0.2, 0.0]]]])
    assert torch.allclose(rand_saturation(x, r), (x - channel_mean) * 1.5 + channel_mean)
    assert torch.allclose(rand_contrast(x, r), (x - x.mean()) * 1.25 + x.mean())


def test_diffaugment_matches_the_official_code():
    x = (torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8) % 13) / 6 - 1
    torch.manual_seed(11)
    out = DiffAugment("color,translation,cutout")(x)
    assert torch.allclose(out[:, 0, ::2, ::2].flatten(), torch.tensor(DIFFAUGMENT_SEED11), atol=1e-3)


def test_diffaugment_is_differentiable_and_rejects_unknown_ops():
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    DiffAugment()(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="augment_policy"):
        DiffAugment("color,flip")


# -- ADA pipeline -------------------------------------------------------------------------------


def test_ada_matches_the_official_pipeline():
    pipe = AdaptiveAugment()
    pipe.p.fill_(1.0)
    torch.manual_seed(123)
    out = pipe(_ramp((2, 3, 8, 8)))
    assert torch.allclose(out[:, :, ::3, ::3].flatten(), torch.tensor(ADA_RGB_P1_SEED123), atol=1e-3)
    pipe.p.fill_(0.5)
    torch.manual_seed(7)
    out = pipe(_ramp((2, 3, 8, 8))[:, :1])
    assert torch.allclose(out[:, :, ::3, ::3].flatten(), torch.tensor(ADA_GRAY_P05_SEED7), atol=1e-3)


def test_ada_at_p0_is_the_identity_up_to_the_resampling_filter():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert torch.allclose(AdaptiveAugment()(x), x, atol=1e-4)  # sym6 up/down is orthogonal: a round trip


def test_ada_integer_translation_is_exact_with_reflection():
    x = torch.rand(16, 1, 16, 16)
    out = _only("xint")(x)
    padded = torch.nn.functional.pad(x, [2, 2, 2, 2], mode="reflect")
    for i in range(len(x)):  # every image is x shifted by some (dy, dx) in [-2, 2]^2, reflected at the border
        errors = [(out[i] - padded[i, :, 2 - dy:18 - dy, 2 - dx:18 - dx]).abs().max() for dy in range(-2, 3) for dx in range(-2, 3)]
        assert min(errors) < 1e-4
    assert not torch.allclose(out, x, atol=1e-3)  # at p = 1 most images moved


def test_ada_lumaflip_negates_grayscale_and_brightness_shifts():
    x = torch.rand(32, 1, 8, 8) * 2 - 1
    out = _only("lumaflip")(x)
    same = (out - x).flatten(1).abs().amax(1) < 1e-5
    flipped = (out + x).flatten(1).abs().amax(1) < 1e-5
    assert bool((same | flipped).all()) and 0 < int(flipped.sum()) < 32  # fair coin per image
    shift = _only("brightness")(x) - x
    assert torch.allclose(shift, shift.mean(dim=(1, 2, 3), keepdim=True).expand_as(shift), atol=1e-5)


def test_ada_hue_rotation_keeps_luma_and_saturation_scales_chroma():
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    assert torch.allclose(_only("hue")(x).mean(dim=1), x.mean(dim=1), atol=1e-5)
    out = _only("saturation")(x)
    chroma_in, chroma_out = x - x.mean(dim=1, keepdim=True), out - out.mean(dim=1, keepdim=True)
    ratio = (chroma_out.flatten(1) * chroma_in.flatten(1)).sum(1) / chroma_in.flatten(1).square().sum(1)
    assert torch.allclose(chroma_out, chroma_in * ratio[:, None, None, None], atol=1e-5)


def test_ada_probability_zero_ops_are_skipped_per_image():
    x = torch.rand(64, 1, 8, 8)
    out = _only("lumaflip", p=0.0)(x)
    assert torch.allclose(out, x, atol=1e-6)


def test_ada_heuristic_adjusts_p_by_the_official_step():
    pipe = AdaptiveAugment(target=0.6, interval=4, kimg=1.0)
    for logits in ([1.0, 2.0, -1.0, 3.0], [0.5, 0.5, 0.5, 0.5]):  # 7 positive, 1 negative: r_t = 0.75
        pipe.observe(torch.tensor(logits))
    pipe.adjust()
    assert math.isclose(float(pipe.rt), 0.75) and math.isclose(float(pipe.p), 8 / 1000, rel_tol=1e-6)
    pipe.observe(-torch.ones(16))  # r_t = -1 < target: p falls by 16 / 1000, clamped at 0
    pipe.adjust()
    assert float(pipe.p) == 0.0 and float(pipe.sign_count) == 0.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_augmentations_keep_the_dtype_under_autocast(dtype):
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).to(dtype)
    pipe = AdaptiveAugment()
    pipe.p.fill_(0.8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for t in (DiffAugment(), pipe):
            out = t(x)
            assert out.dtype == dtype and torch.isfinite(out.float()).all()


# -- how AdversarialModel applies T --------------------------------------------------------------


class _Recorder(torch.nn.Module):
    """Wraps an augmentation and records every batch it transforms."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.inner(x)


def _dcgan(**kwargs):
    return DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, **kwargs)


def _fit(model, iterations, data):
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        max_epochs=-1, num_sanity_val_steps=0, callbacks=[StopAtIteration(iterations)],
    )
    trainer.fit(model, data)
    return trainer


def test_the_same_t_sees_reals_and_fakes_in_d_step_and_fakes_in_g_step_and_penalty_inputs():
    model = _dcgan(augment="diffaugment", penalty="r1", discriminator_norm="layer")  # a penalty needs a per-sample D
    recorder = model.augment_pipe = _Recorder(model.augment_pipe)
    batch = {"image": torch.rand(4, 1, 16, 16) * 2 - 1}
    torch.manual_seed(0)
    fake = model.generate(batch)
    model.discriminator_loss(batch, fake.detach())
    assert torch.equal(recorder.seen[0], batch["image"]) and torch.equal(recorder.seen[1], fake.detach())
    assert torch.equal(recorder.seen[2], batch["image"])  # R1's input: reals, differentiated through T
    recorder.seen.clear()
    model.generator_loss(batch, fake)
    assert len(recorder.seen) == 1 and torch.equal(recorder.seen[0], fake.detach())


def test_generator_gradients_flow_through_the_augmentation():
    for augment in ("diffaugment", "ada"):
        model = _dcgan(augment=augment)
        if augment == "ada":
            model.augment_pipe.p.fill_(1.0)
        images_at_d = []
        d_forward = model.discriminator.forward
        model.discriminator.forward = lambda x: (images_at_d.append(x.detach()), d_forward(x))[1]
        fake = model.generate({"image": torch.zeros(4, 1, 16, 16)})
        loss, _ = model.generator_loss({"image": torch.zeros(4, 1, 16, 16)}, fake)
        loss.backward()
        assert not torch.allclose(images_at_d[0], fake.detach())  # D saw T(G(z)), not G(z)
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters() if p.requires_grad)


def test_no_augmentation_outside_training():
    model = _dcgan(augment="diffaugment").eval()
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(model.augment(x), x)
    assert not torch.equal(model.train().augment(x), x)


class _MemorizingDiscriminator(torch.nn.Module):
    """+1 on images within ``radius`` of a memorized set, -1 elsewhere: a D that has overfit ``memory``."""

    def __init__(self, memory, radius=1e-3):
        super().__init__()
        self.register_buffer("memory", memory.flatten(1))
        self.radius = radius
        self.scale = torch.nn.Parameter(torch.ones(()))  # something for D's optimizer

    def forward(self, x):
        distance = torch.cdist(x.flatten(1).float(), self.memory).amin(dim=1)
        # the small image term only gives G a gradient; it never flips the sign
        return self.scale * (1 - 2 * (distance > self.radius).float()) + 1e-3 * x.flatten(1).mean(dim=1)


class _Images(torch.utils.data.Dataset):
    def __init__(self, images, length):
        self.images, self.length = images, length

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        return {"image": self.images[i % len(self.images)]}


def _ada_p_after_training(train_images, memory):
    torch.manual_seed(0)
    model = GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(16,), discriminator_hidden=(16,), augment="ada", ada_kimg=1.0)
    model.discriminator = _MemorizingDiscriminator(memory)
    rts, ps = [], []
    adjust = model.augment_pipe.adjust
    model.augment_pipe.adjust = lambda: (adjust(), rts.append(float(model.augment_pipe.rt)), ps.append(float(model.augment_pipe.p)))
    data = torch.utils.data.DataLoader(_Images(train_images, 4 * 80), batch_size=4)
    _fit(model, 80, data)
    return ps, rts


def test_ada_p_rises_when_d_overfits_a_tiny_set_and_stays_at_0_on_a_large_one():
    """r_t = E[sign D(x_real)]: a D that memorized the 4 training images says +1 on every real image,
    so p rises until enough augmented reals fool it (r_t pulled back around the 0.6 target); the
    same D on a 1,000-image set has memorized 4 of them, r_t is about -1 and p stays 0."""
    g = torch.Generator().manual_seed(0)
    full = torch.rand(1000, 1, 8, 8, generator=g) * 2 - 1
    tiny = full[:4]
    ps_tiny, rts_tiny = _ada_p_after_training(tiny, tiny)
    ps_full, rts_full = _ada_p_after_training(full, tiny)
    # Every adjustment moves p by 16 images / 1 kimg = 0.016: up while r_t > 0.6, down below.
    assert rts_tiny[0] == 1.0 and ps_tiny[:2] == pytest.approx([0.016, 0.032])
    assert min(rts_tiny) < 0.6 and 0 < sum(ps_tiny[10:]) / 10 < 0.2  # held where augmented reals fool D
    assert max(ps_full) == 0.0 and max(rts_full) < 0.0


def test_invalid_augmentation_options_name_the_key():
    for kwargs, key in (({"augment": "mixup"}, "augment"), ({"ada_target": 1.5}, "ada_target"),
                        ({"lecam_weight": -1.0}, "lecam_weight"), ({"ada_interval": 0}, "ada_interval")):
        with pytest.raises(ValueError, match=key):
            _dcgan(**kwargs)


# -- LeCam ----------------------------------------------------------------------------------------


def test_lecam_value_against_a_hand_computation():
    real, fake = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([-1.0, 0.5])
    anchors = LeCamAnchors(decay=0.99, start_iteration=0)
    anchors.real.fill_(0.4)
    anchors.fake.fill_(-0.2)
    value = anchors(real, fake)
    # anchors first move 1% toward this batch's means (0.8333..., -0.25)
    a_r, a_f = 0.99 * 0.4 + 0.01 * (2.5 / 3), 0.99 * -0.2 + 0.01 * -0.25
    real_term = sum(max(0.0, r - a_f) ** 2 for r in (1.0, -0.5, 2.0)) / 3
    fake_term = sum(max(0.0, a_r - f) ** 2 for f in (-1.0, 0.5)) / 2
    assert math.isclose(float(anchors.real), a_r, rel_tol=1e-6) and math.isclose(float(anchors.fake), a_f, rel_tol=1e-6)
    assert math.isclose(float(value), real_term + fake_term, rel_tol=1e-5)
    assert math.isclose(float(lecam_penalty(real, fake, torch.tensor(a_r), torch.tensor(a_f))), real_term + fake_term, rel_tol=1e-5)


def test_lecam_enters_d_loss_and_its_anchors_are_state():
    model = _dcgan(lecam_weight=0.5, loss="hinge")
    assert {"lecam.d.real", "lecam.d.fake"} <= set(model.state_dict())  # one pair of anchors per D head
    old = {k.replace("lecam.d.", "lecam."): v for k, v in model.state_dict().items()}  # a checkpoint from before heads
    old["lecam.real"] = torch.tensor(0.25)
    model.load_state_dict(old)
    assert float(model.lecam["d"].real) == 0.25
    model.lecam["d"].steps.fill_(1001)  # past the official 1000-iteration start
    batch = {"image": torch.rand(4, 1, 16, 16) * 2 - 1}
    fake = model.generate(batch).detach()
    loss, logs = model.discriminator_loss(batch, fake)
    real_out, fake_out = model.discriminate(batch["image"]), model.discriminate(fake)
    hinge = torch.relu(1 - real_out).mean() + torch.relu(1 + fake_out).mean()
    assert torch.allclose(loss, hinge + 0.5 * logs["train/penalty_lecam"], atol=1e-6)
    assert float(logs["train/penalty_lecam"]) > 0


def test_lecam_follows_the_official_anchor_schedule():
    """google/lecam-gan BigGAN CIFAR: `ema_losses(init=1000, decay=0.9, start_itr)` updated inside the
    hinge D loss (decay 0 while itr < start), the term added only when itr > start; itr counts G
    iterations of `num_D_steps` D steps. Re-derived here with plain floats, start 2, 3 D steps."""
    start, d_steps, decay = 2, 3, 0.9
    anchors = LeCamAnchors(decay=decay, init=1000.0, start_iteration=start, d_steps_per_iteration=d_steps)
    gen = torch.Generator().manual_seed(0)
    ema_real = ema_fake = 1000.0
    for step in range(4 * d_steps):
        real, fake = torch.randn(5, generator=gen), torch.randn(5, generator=gen) - 1
        itr = step // d_steps
        d = 0.0 if itr < start else decay
        ema_fake = ema_fake * d + fake.mean().item() * (1 - d)
        ema_real = ema_real * d + real.mean().item() * (1 - d)
        expected = 0.0
        if itr > start:
            expected = (sum(max(0.0, r - ema_fake) ** 2 for r in real.tolist()) / 5
                        + sum(max(0.0, ema_real - f) ** 2 for f in fake.tolist()) / 5)
        value = float(anchors(real, fake))
        assert math.isclose(float(anchors.real), ema_real, rel_tol=1e-5, abs_tol=1e-5), step
        assert math.isclose(float(anchors.fake), ema_fake, rel_tol=1e-5, abs_tol=1e-5), step
        assert math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-7), step
    assert float(anchors(torch.ones(2), torch.zeros(2))) > 0  # the term is on after the start
    # the adversarial model passes its D steps per G step and the official decay
    model = _dcgan(lecam_weight=0.3, n_critic=4)
    assert (model.lecam["d"].d_steps_per_iteration, model.lecam["d"].decay, model.lecam["d"].start_iteration) == (4, 0.9, 1000)
    assert float(model.lecam["d"].real) == 1000.0
