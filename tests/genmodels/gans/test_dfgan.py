"""DF-GAN (the CVPR 2022 code): its sizes and optimizer defaults, text fusion changes the image, MA-GP, the
D loss of the code on fixed tensors, a training step."""

import warnings

import torch

from genmodels import DFGAN
from genmodels.gans.dfgan import Affine, matching_aware_gradient_penalty
from tests.genmodels.gans.text_helpers import TINY_TEXT, fit, one_thread, shapes  # noqa: F401 (autouse fixture)

VOCAB = ["<pad>", "<unk>", "a", "red", "blue", "flower"]


def test_default_sizes_and_optimizer_are_the_codes():
    model = DFGAN(vocab=VOCAB)
    g, d = model.generator, model.discriminator
    assert model.image_shape == (3, 256, 256)
    assert g.fc.out_features == 8 * 32 * 16  # z -> 4x4 x 8 ngf
    # get_G_in_out_chs(32, 256) / get_D_in_out_chs(32, 256) of code/models/GAN.py: six blocks each way.
    assert [(b.conv1.in_channels, b.conv1.out_channels) for b in g.blocks] == [
        (256, 256), (256, 256), (256, 256), (256, 128), (128, 64), (64, 32)]
    assert [(b.residual[0].in_channels, b.residual[0].out_channels) for b in d.blocks] == [
        (32, 64), (64, 128), (128, 256), (256, 256), (256, 256), (256, 256)]
    # G_Block's fusion: y = [z, sentence] (100 + 256) through Linear(y, C), ReLU, Linear(C, C).
    affine = g.blocks[3].fuse2.affine1
    assert [tuple(affine.gamma[i].weight.shape) for i in (0, 2)] == [(128, 356), (128, 128)]
    assert d.joint[0].in_channels == 8 * 32 + 256 and d.joint[0].out_channels == 2 * 32 and d.joint[2].bias is None
    assert all(b.scale.item() == 0 for b in d.blocks)  # D_Block's gamma from 0 (G_Block has none)
    assert (model.loss_name, model.lr_g, model.lr_d, model.betas) == ("hinge", 1e-4, 4e-4, (0.0, 0.9))
    assert (model.ma_gp_weight, model.ma_gp_power) == (2.0, 6.0)


def test_affine_starts_as_identity_and_the_caption_changes_the_image():
    affine = Affine(4, 3)
    h = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(affine(h, torch.randn(2, 4)), h)
    torch.manual_seed(0)
    model = DFGAN((3, 16, 16), VOCAB, ngf=2, ndf=2, **TINY_TEXT).eval()
    for p in model.generator.parameters():  # away from the identity initialization
        p.data.add_(0.5 * torch.randn_like(p))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    red, blue = model.sample(2, condition="a red flower", generator=g()), model.sample(2, condition="a blue flower", generator=g())
    assert (red - blue).abs().mean() > 1e-3


def test_discriminator_loss_is_the_codes():
    torch.manual_seed(0)
    model = DFGAN((3, 16, 16), VOCAB, ngf=2, ndf=2, **TINY_TEXT)
    for p in model.discriminator.parameters():
        p.data.add_(0.1 * torch.randn_like(p))  # residual scales away from 0
    batch = {"image": torch.rand(4, 3, 16, 16) * 2 - 1, "tokens": torch.tensor([[2, 3], [2, 4], [3, 5], [4, 5]]),
             "lengths": torch.tensor([2, 2, 2, 2])}
    fake = torch.rand(4, 3, 16, 16) * 2 - 1
    loss, _ = model.discriminator_loss(batch, fake)
    # train() in code/lib/modules.py: mis_features = cat(real_features[1:], real_features[0:1]) with sent_emb;
    # errD = errD_real + (errD_fake + errD_mis) / 2 + MA_GP.
    D, real, text = model.discriminator, batch["image"], model.condition(batch)
    hinge = lambda out, negative: torch.relu(1.0 + out).mean() if negative else torch.relu(1.0 - out).mean()  # noqa: E731
    mis = torch.cat([real[1:], real[:1]])
    x, e = real.clone().requires_grad_(True), text.clone().requires_grad_(True)
    pred_real = D(x, e)
    grads = torch.autograd.grad(pred_real, (x, e), torch.ones_like(pred_real))
    ma_gp = 2.0 * torch.cat([grads[0].flatten(1), grads[1]], 1).pow(2).sum(1).sqrt().pow(6).mean()
    expected = hinge(pred_real, False) + (hinge(D(fake, text), True) + hinge(D(mis, text), True)) / 2 + ma_gp
    torch.testing.assert_close(loss, expected.detach())


def test_ma_gp_matches_its_definition():
    model = DFGAN((3, 8, 8), VOCAB, ngf=2, ndf=2, **TINY_TEXT)
    real, text = torch.randn(3, 3, 8, 8), torch.randn(3, 16)
    x, e = real.clone().requires_grad_(True), text.clone().requires_grad_(True)
    gx, ge = torch.autograd.grad(model.discriminator(x, e).sum(), (x, e))
    expected = 2.0 * torch.cat([gx.flatten(1), ge], 1).norm(dim=1).pow(6).mean()
    torch.testing.assert_close(matching_aware_gradient_penalty(model.discriminator, real, text), expected)


def test_training_steps_update_both_players(tmp_path):
    dm = shapes()
    model = DFGAN((3, 16, 16), dm.vocab, ngf=2, ndf=2, **TINY_TEXT)
    g0 = [p.clone() for p in model.generator.parameters()]
    d0 = [p.clone() for p in model.discriminator.parameters()]
    text0 = [p.clone() for p in model.text_encoder.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(model, dm, 2, tmp_path)
    assert model.iteration == 2
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(text0, model.text_encoder.parameters()))  # frozen
