"""StackGAN: conditioning augmentation and its KL term, the matching-aware D loss, the paper's default
sizes, stage II on a frozen stage-I checkpoint, captions in `sample`, weights-only checkpoints."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from genmodels import StackGAN
from genmodels.checkpoints import load_model
from genmodels.conditioning import ConditionError
from genmodels.gans.text_to_image import ConditioningAugmentation, kl_to_standard_normal
from tests.genmodels.gans.text_helpers import TINY_TEXT, fit, one_thread, shapes  # noqa: F401 (autouse fixture)

TINY = dict(gf_dim=4, df_dim=4, condition_dim=8, **TINY_TEXT)


def test_conditioning_augmentation_and_kl():
    ca = ConditioningAugmentation(16, 8)
    c, mu, log_sigma = ca(torch.randn(5, 16), torch.Generator().manual_seed(0))
    assert c.shape == mu.shape == log_sigma.shape == (5, 8)
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)) == 0
    mu, log_sigma = torch.full((1, 2), 1.0), torch.full((1, 2), 0.5)
    expected = 2 * 0.5 * (1.0 + torch.exp(torch.tensor(1.0)) - 1 - 1.0)  # per dim: (mu^2 + sigma^2 - 1 - log sigma^2) / 2
    torch.testing.assert_close(kl_to_standard_normal(mu, log_sigma), expected)


def test_default_sizes_are_the_papers():
    model = StackGAN(vocab=["<pad>", "<unk>", "bird"])
    g, d = model.generator, model.discriminator
    assert g.fc[0].in_features == 128 + 100 and g.fc[0].out_features == 128 * 8 * 16  # [c (Ng=128), z (100)] -> 4x4x1024
    assert g.ca.fc.in_features == 256  # the DAMSM sentence embedding
    assert d.compress[0].out_features == 128 and d.joint[0].in_channels == 64 * 8 + 128  # N_d = 128, M_d = 4
    assert model.kl_weight == 1.0 and model.betas == (0.5, 0.999) and model.lr_g == model.lr_d == 2e-4


def test_matching_aware_discriminator_loss():
    torch.manual_seed(0)
    model = StackGAN((3, 16, 16), ["<pad>", "<unk>", "a", "red", "blue"], **TINY)
    batch = {"image": torch.rand(4, 3, 16, 16) * 2 - 1, "tokens": torch.tensor([[2, 3], [2, 4], [2, 3], [2, 4]]),
             "lengths": torch.tensor([2, 2, 2, 2])}
    fake = torch.rand(4, 3, 16, 16) * 2 - 1
    model.eval()
    loss, logs = model.discriminator_loss(batch, fake)
    text = model.condition(batch)
    real_out, fake_out = model.discriminator(batch["image"], text), model.discriminator(fake, text)
    wrong_out = model.discriminator(batch["image"], text.roll(1, 0))
    expected = F.softplus(-real_out).mean() + 0.5 * F.softplus(fake_out).mean() + 0.5 * F.softplus(wrong_out).mean()
    torch.testing.assert_close(loss, expected)
    assert "train/d_wrong" in logs


def test_sample_takes_captions_and_reports_unknown_long_and_empty_text():
    model = StackGAN((3, 16, 16), ["<pad>", "<unk>", "a", "red", "bird"], max_length=3, **TINY).eval()
    with pytest.warns(UserWarning, match="read as <unk>: green"):
        assert model.sample(2, condition="a green bird").shape == (2, 3, 16, 16)
    with pytest.warns(UserWarning, match="only the first 3 words"):
        model.sample(1, condition="a red bird a red bird")
    with pytest.raises(ConditionError, match="holds no word"):
        model.sample(1, condition="  ")
    with pytest.raises(ConditionError, match="3 captions for 2 images"):
        model.sample(2, condition=["a", "red", "bird"])
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    torch.testing.assert_close(model.sample(2, condition="a red bird", generator=g()),
                               model.sample(2, condition=["a red bird"] * 2, generator=g()))


def test_training_fills_the_caption_bank_and_checkpoints_load_weights_only(tmp_path):
    dm = shapes()
    model = StackGAN((3, 16, 16), dm.vocab, caption_bank=4, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = fit(model, dm, 3, tmp_path)
    # The caption bank holds validation captions (caption 0 of each image first): sample(n) without
    # a condition, as the metrics callbacks call it, is conditioned on held-out captions.
    val = dm.records("val").captions
    assert [model.vocabulary.decode(t, int(n)) for t, n in zip(model.bank_tokens, model.bank_lengths)] == [
        caps[0] for caps in val[:4]]
    trainer.save_checkpoint(tmp_path / "s1.ckpt")
    checkpoint = torch.load(tmp_path / "s1.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["vocab"] == dm.vocab
    loaded = load_model(tmp_path / "s1.ckpt")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(loaded.sample(3, generator=g()), model.eval().sample(3, generator=g()))


def test_stage_two_refines_a_frozen_stage_one(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage1 = StackGAN((3, 16, 16), shapes().vocab, **TINY)
        fit(stage1, shapes(), 2, tmp_path).save_checkpoint(tmp_path / "stage1.ckpt")
        dm = shapes(image_size=32)
        stage2 = StackGAN((3, 32, 32), dm.vocab, stage=2, stage1_size=16, stage1_ckpt=str(tmp_path / "stage1.ckpt"),
                          residual_blocks=1, **TINY)
        before = {k: v.clone() for k, v in stage2.generator.state_dict().items()}
        fit(stage2, dm, 2, tmp_path)
    for key, value in stage1.generator.state_dict().items():
        torch.testing.assert_close(stage2.stage1.state_dict()[key], value)  # loaded, and unchanged by training
    assert not any(p.requires_grad for p in stage2.stage1.parameters())
    assert any(not torch.equal(before[k], v) for k, v in stage2.generator.state_dict().items())
    assert stage2.eval().sample(2, condition="a red circle").shape == (2, 3, 32, 32)


def test_stage_two_without_a_stage_one_checkpoint_says_so(tmp_path):
    model = StackGAN((3, 32, 32), shapes().vocab, stage=2, stage1_size=16, residual_blocks=1, **TINY)
    with pytest.raises(ConditionError, match="stage1_ckpt"):
        fit(model, shapes(image_size=32), 1, tmp_path)
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        StackGAN(stage=3)
