"""StackGAN: conditioning augmentation and its KL term (the authors' KL_loss and weight), the matching-aware
D loss with the code's averaging of conditional and unconditional heads, the default sizes, stage II on a
frozen stage-I checkpoint, captions in `sample`, weights-only checkpoints."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from genmodels import StackGAN
from genmodels.checkpoints import load_model
from genmodels.conditioning import ConditionError
from genmodels.gans.losses import LOSSES
from genmodels.gans.stackgan import StackGANDiscriminator
from genmodels.gans.text_to_image import (ConditioningAugmentation, kl_to_standard_normal, matching_aware_d_loss,
                                          matching_aware_g_loss)
from tests.genmodels.gans.text_helpers import TINY_TEXT, fit, one_thread, shapes  # noqa: F401 (autouse fixture)

TINY = dict(gf_dim=4, df_dim=4, condition_dim=8, **TINY_TEXT)


def _official_kl(mu, logvar):
    """KL_loss of StackGAN-Pytorch miscc/utils.py, element by element: -1/2 mean(1 + logvar - mu^2 - exp(logvar))."""
    total, count = 0.0, 0
    for m, lv in zip(mu.flatten().tolist(), logvar.flatten().tolist()):
        total += 1 + lv - m * m - math.exp(lv)
        count += 1
    return -0.5 * total / count


def test_kl_is_the_codes_mean_and_stackgan_weights_it_by_two():
    mu = torch.tensor([[0.5, -1.0, 0.0], [2.0, 0.3, -0.2]])
    logvar = torch.tensor([[0.1, -0.5, 1.0], [0.0, 0.7, -1.2]])
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), torch.tensor(_official_kl(mu, logvar)))
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)) == 0
    # In G's loss: TRAIN.COEFF.KL = 2 times KL_loss(mu, logvar), mu and logvar from CA_NET (fc, ReLU).
    torch.manual_seed(0)
    model = StackGAN((3, 16, 16), ["<pad>", "<unk>", "a", "red", "blue"], **TINY).eval()
    batch = {"image": torch.zeros(2, 3, 16, 16), "tokens": torch.tensor([[2, 3], [2, 4]]), "lengths": torch.tensor([2, 2])}
    text = model.condition(batch)
    x = torch.relu(model.generator.ca.fc(text))
    mu, logvar = x[:, :8], x[:, 8:]
    fake = torch.rand(2, 3, 16, 16) * 2 - 1
    loss, logs = model.generator_loss(batch, fake)
    torch.testing.assert_close(logs["train/kl"], torch.tensor(_official_kl(mu, logvar)))
    adversarial = F.softplus(-model.discriminator(fake, mu)).mean()  # D conditioned on mu, as in the code
    torch.testing.assert_close(loss, adversarial + 2.0 * logs["train/kl"])


def test_conditioning_augmentation_samples_with_sigma_from_logvar():
    ca = ConditioningAugmentation(16, 8, "relu")
    text = torch.randn(5, 16)
    c, mu, logvar = ca(text, torch.Generator().manual_seed(0))
    assert c.shape == mu.shape == logvar.shape == (5, 8) and (mu >= 0).all() and (logvar >= 0).all()
    eps = torch.randn((5, 8), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(c, mu + torch.exp(0.5 * logvar) * eps)
    glu = ConditioningAugmentation(16, 8, "glu")
    assert glu.fc.out_features == 32 and glu(text)[1].shape == (5, 8)


def test_default_sizes_are_the_codes():
    model = StackGAN(vocab=["<pad>", "<unk>", "bird"])
    g, d = model.generator, model.discriminator
    assert g.fc[0].in_features == 128 + 100 and g.fc[0].out_features == 128 * 8 * 16  # [c (Ng=128), z (100)] -> 4x4x1024
    assert g.ca.fc.in_features == 256 and g.ca.fc.out_features == 2 * 128  # the DAMSM sentence embedding -> mu, logvar
    assert d.joint[0].in_channels == 64 * 8 + 128 and d.joint[0].kernel_size == (3, 3)  # [code, mu] (D_GET_LOGITS)
    assert d.unconditional_logit is None  # STAGE1_D: conditional only
    assert model.kl_weight == 2.0 and model.betas == (0.5, 0.999) and model.lr_g == model.lr_d == 2e-4


def _bce(logits, target):
    """nn.BCELoss on sigmoid outputs, as the authors' code computes it, one element at a time."""
    values = [-math.log(p) if target == 1 else -math.log(1 - p) for p in torch.sigmoid(logits).tolist()]
    return sum(values) / len(values)


def test_d_loss_averages_conditional_and_unconditional_heads_as_the_code():
    real = torch.tensor([[1.5, 0.2], [-0.3, 0.8], [0.7, -1.1]])
    fake = torch.tensor([[-0.4, 0.1], [0.9, -2.0], [0.0, 0.3]])
    wrong = torch.tensor([[0.6, 5.0], [-1.3, 5.0], [0.2, 5.0]])  # its unconditional column is never used
    d_loss, g_loss = LOSSES["nonsaturating"].d, LOSSES["nonsaturating"].g
    # compute_discriminator_loss with get_uncond_logits (StackGAN-Pytorch miscc/utils.py):
    expected = ((_bce(real[:, 0], 1) + _bce(real[:, 1], 1)) / 2
                + (_bce(fake[:, 0], 0) + _bce(wrong[:, 0], 0) + _bce(fake[:, 1], 0)) / 3)
    torch.testing.assert_close(matching_aware_d_loss(d_loss, real, fake, wrong), torch.tensor(expected))
    # ... and without it: errD_real + (errD_fake + errD_wrong) * 0.5
    expected = _bce(real[:, 0], 1) + 0.5 * (_bce(fake[:, 0], 0) + _bce(wrong[:, 0], 0))
    torch.testing.assert_close(matching_aware_d_loss(d_loss, real[:, 0], fake[:, 0], wrong[:, 0]), torch.tensor(expected))
    # compute_generator_loss: conditional + unconditional, summed.
    torch.testing.assert_close(matching_aware_g_loss(g_loss, fake), torch.tensor(_bce(fake[:, 0], 1) + _bce(fake[:, 1], 1)))


def test_stage_two_discriminator_has_the_unconditional_head():
    d = StackGANDiscriminator(256, 128, 64, unconditional=True)
    assert d.unconditional_logit.in_channels == 64 * 8 and d.unconditional_logit.kernel_size == (4, 4)
    # STAGE2_D's encoder: six 4x4 stride-2 convolutions to 4x4 x 32 ndf, then 3x3 to 16 ndf and 8 ndf.
    convs = [m for m in d.encode.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in convs] == [
        (3, 64, 4), (64, 128, 4), (128, 256, 4), (256, 512, 4), (512, 1024, 4), (1024, 2048, 4), (2048, 1024, 3), (1024, 512, 3)]
    tiny = StackGANDiscriminator(16, 8, 4, unconditional=True).eval()
    images, condition = torch.randn(3, 3, 16, 16), torch.randn(3, 8)
    out = tiny(images, condition)
    assert out.shape == (3, 2)
    torch.testing.assert_close(out[:, 1], tiny(images, torch.randn(3, 8))[:, 1])  # ignores the text
    torch.testing.assert_close(out[:, 1], tiny.unconditional_logit(tiny.encode(images)).flatten())


def test_matching_aware_discriminator_loss():
    torch.manual_seed(0)
    model = StackGAN((3, 32, 32), ["<pad>", "<unk>", "a", "red", "blue"], stage=2, stage1_size=16, residual_blocks=1,
                     **TINY)
    batch = {"image": torch.rand(4, 3, 32, 32) * 2 - 1, "tokens": torch.tensor([[2, 3], [2, 4], [2, 3], [2, 4]]),
             "lengths": torch.tensor([2, 2, 2, 2])}
    fake = torch.rand(4, 3, 32, 32) * 2 - 1
    model.eval()
    loss, logs = model.discriminator_loss(batch, fake)
    mu = torch.relu(model.generator.ca.fc(model.condition(batch)))[:, :8]
    real_out, fake_out = model.discriminator(batch["image"], mu), model.discriminator(fake, mu)
    wrong_out = model.discriminator(batch["image"], mu.roll(1, 0))
    expected = ((_bce(real_out[:, 0], 1) + _bce(real_out[:, 1], 1)) / 2
                + (_bce(fake_out[:, 0], 0) + _bce(wrong_out[:, 0], 0) + _bce(fake_out[:, 1], 0)) / 3)
    torch.testing.assert_close(loss, torch.tensor(expected))
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


def _caption_batch(model, texts_per_image):
    """A batch whose image i has the captions ``texts_per_image[i]`` as ``embedding_tokens`` (rows
    of length 0 where an image has fewer), its first caption as ``tokens``."""
    k = max(len(t) for t in texts_per_image)
    tokens = torch.zeros(len(texts_per_image), k, model.max_length, dtype=torch.long)
    lengths = torch.zeros(len(texts_per_image), k, dtype=torch.long)
    for i, texts in enumerate(texts_per_image):
        t, n = model.tokenize(texts)
        tokens[i, : len(texts), : t.shape[1]], lengths[i, : len(texts)] = t, n
    return {"tokens": tokens[:, 0], "lengths": lengths[:, 0], "embedding_tokens": tokens, "embedding_lengths": lengths}


def test_text_embedding_is_the_mean_of_the_images_caption_embeddings_as_the_tf_code():
    """TF StackGAN misc/datasets.py sample_embeddings: an image's embedding is the mean of
    NUM_EMBEDDING of its captions' embeddings; here each caption is encoded alone and averaged by hand."""
    vocab = ["<pad>", "<unk>", "a", "red", "blue", "bird", "small", "wing"]
    model = StackGAN(**StackGAN.tiny(), vocab=vocab).eval()
    texts = [["a red bird", "a blue wing", "small bird", "red red wing"], ["a small blue bird", "wing"]]
    condition = model.condition(_caption_batch(model, texts))
    for i, captions in enumerate(texts):
        one_by_one = [model.encode_text(*model.tokenize([c]))[1][0] for c in captions]
        torch.testing.assert_close(condition[i], torch.stack(one_by_one).mean(0))
    assert not torch.allclose(condition[0], model.encode_text(*model.tokenize(texts[0][:1]))[1][0])


def test_wrong_images_are_judged_with_the_real_images_text():
    """TF StackGAN: D scores (wrong image, real text); without wrong images, StackGAN-Pytorch's (real image, rolled text)."""
    vocab = ["<pad>", "<unk>", "a", "red", "blue", "bird"]
    model = StackGAN(**StackGAN.tiny(), vocab=vocab).eval()
    tokens, lengths = model.tokenize(["a red bird", "a blue bird", "red bird"])
    gen = torch.Generator().manual_seed(0)
    real, wrong, fake = (torch.rand(3, 3, 16, 16, generator=gen) * 2 - 1 for _ in range(3))
    batch = {"image": real, "tokens": tokens, "lengths": lengths}
    mu = model.generator.ca.encode(model.encode_text(tokens, lengths)[1])[0]
    rolled = model.judge(batch, fake)["d"]
    torch.testing.assert_close(rolled.wrong, model.discriminator(real, mu.roll(1, dims=0)))
    judged = model.judge({**batch, "wrong_image": wrong}, fake)["d"]
    torch.testing.assert_close(judged.wrong, model.discriminator(wrong, mu))
    torch.testing.assert_close(judged.real, model.discriminator(real, mu))
    assert model.judge({**batch, "wrong_image": wrong}, fake, real=False)["d"].wrong is None


def test_tf_data_features_train_stackgan_and_are_refused_by_models_that_ignore_them(tmp_path):
    from genmodels import DFGAN

    dm = shapes()
    dm.captions_per_embedding, dm.wrong_images = 4, "other_class"
    model = StackGAN((3, 16, 16), dm.vocab, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(model, dm, 2, tmp_path)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    other = DFGAN(**DFGAN.tiny(), vocab=dm.vocab)
    batch = next(iter(dm.train_dataloader()))
    with pytest.raises(ConditionError, match="captions_per_embedding 1"):
        other.on_train_batch_start(batch, 0)
    batch.pop("embedding_tokens")
    with pytest.raises(ConditionError, match="wrong_images none"):
        other.on_train_batch_start(batch, 0)
