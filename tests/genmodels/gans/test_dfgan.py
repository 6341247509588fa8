"""DF-GAN: the paper's sizes and optimizer defaults, text fusion changes the image, MA-GP, a training step."""

import warnings

import torch

from genmodels import DFGAN
from genmodels.gans.dfgan import Affine, matching_aware_gradient_penalty
from tests.genmodels.gans.text_helpers import TINY_TEXT, fit, one_thread, shapes  # noqa: F401 (autouse fixture)

VOCAB = ["<pad>", "<unk>", "a", "red", "blue", "flower"]


def test_default_sizes_and_optimizer_are_the_papers():
    model = DFGAN(vocab=VOCAB)
    assert model.image_shape == (3, 256, 256)
    assert model.generator.fc.out_features == 8 * 32 * 16  # z -> 4x4 x 8 ngf
    assert len(model.generator.blocks) == 7  # 4x4 block, then one per doubling up to 256
    assert model.generator.blocks[-1].conv2.out_channels == 32  # 1 ngf at 256
    assert model.discriminator.blocks[-1].residual[0].out_channels == 16 * 32  # 16 ndf at 4x4
    # every residual block starts as its shortcut (learnable scale from 0, the authors' code)
    assert all(b.scale.item() == 0 for b in [*model.generator.blocks, *model.discriminator.blocks])
    assert (model.loss_name, model.lr_g, model.lr_d, model.betas) == ("hinge", 1e-4, 4e-4, (0.0, 0.9))
    assert (model.ma_gp_weight, model.ma_gp_power) == (2.0, 6.0)


def test_affine_starts_as_identity_and_the_caption_changes_the_image():
    affine = Affine(4, 3)
    h = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(affine(h, torch.randn(2, 4)), h)
    torch.manual_seed(0)
    model = DFGAN((3, 16, 16), VOCAB, ngf=2, ndf=2, **TINY_TEXT).eval()
    for p in model.generator.parameters():  # away from the identity initialization...
        p.data.add_(0.1 * torch.randn_like(p))
    for block in model.generator.blocks:  # ...and with the residual branches switched on
        assert block.scale.item() != 0
        block.scale.data.fill_(1.0)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    red, blue = model.sample(2, condition="a red flower", generator=g()), model.sample(2, condition="a blue flower", generator=g())
    assert (red - blue).abs().mean() > 1e-3


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
