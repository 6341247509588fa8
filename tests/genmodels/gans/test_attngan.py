"""AttnGAN: word attention masks padding and sums to one, three stages at S/4, S/2, S, the code's
defaults and next-stage structure, each stage's D with conditional and unconditional heads and the
code's loss averaging, G's loss with the mean KL, and G's DAMSM term from a trained DAMSM."""

import math
import warnings

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from genmodels import AttnGAN
from genmodels.commands import main
from genmodels.gans.attngan import WordAttention, _NextStage
from tests.genmodels.gans.text_helpers import TINY_TEXT, fit, one_thread, shapes  # noqa: F401 (autouse fixture)

TINY = dict(ngf=4, df_dim=4, condition_dim=8, **TINY_TEXT)
VOCAB = ["<pad>", "<unk>", "a", "red", "bird"]


def test_word_attention_ignores_padding_and_normalizes():
    attention = WordAttention(channels=4, text_dim=6)
    h, words = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 5)
    lengths = torch.tensor([2, 5])
    context, beta = attention(h, words, lengths)
    assert context.shape == h.shape and beta.shape == (2, 9, 5)
    torch.testing.assert_close(beta.sum(dim=2), torch.ones(2, 9))
    assert beta[0, :, 2:].abs().max() == 0
    changed = words.clone()
    changed[0, :, 2:] = 50.0
    torch.testing.assert_close(attention(h, changed, lengths)[0][0], context[0])


def test_three_stages_and_paper_defaults():
    model = AttnGAN(vocab=VOCAB)
    assert model.image_shape == (3, 256, 256) and model.damsm_weight == 5.0 and model.gammas == (4.0, 5.0, 10.0)
    assert model.discriminator.sizes == (64, 128, 256)
    assert model.generator.fc[0].out_features == 2 * 16 * 32 * 16  # 4x4 x 16 ngf (GLU halves it)
    tiny = AttnGAN((3, 32, 32), VOCAB, **TINY).eval()
    batch = {"tokens": torch.tensor([[2, 3, 4]]), "lengths": torch.tensor([3]), "image": torch.zeros(1, 3, 32, 32)}
    images = tiny.generate(batch)
    assert [tuple(x.shape[-2:]) for x in images] == [(8, 8), (16, 16), (32, 32)]


def test_next_stage_is_the_codes_residual_blocks_on_2_ngf_then_the_up_block():
    # NEXT_STAGE_G: ATT_NET(ngf, nef); R_NUM ResBlock(2 ngf); upBlock(2 ngf, ngf). No conv between.
    ngf, nef, r = 32, 256, 2
    stage = _NextStage(ngf, nef, r)
    res_block = 2 * ngf * (4 * ngf) * 9 + 2 * (4 * ngf) + (2 * ngf) * (2 * ngf) * 9 + 2 * (2 * ngf)  # conv-BN-GLU-conv-BN
    up_block = (2 * ngf) * (2 * ngf) * 9 + 2 * (2 * ngf)  # conv3x3(2 ngf -> 2 ngf), BN, GLU
    attention = nef * ngf  # conv_context 1x1, no bias
    assert sum(p.numel() for p in stage.parameters()) == attention + r * res_block + up_block
    assert list(stage.residual[0].body[0].weight.shape) == [4 * ngf, 2 * ngf, 3, 3]
    assert [name for name, _ in stage.named_children()] == ["attention", "residual", "up"]
    h, words = torch.randn(2, ngf, 4, 4), torch.randn(2, nef, 5)
    assert stage.eval()(h, words, torch.tensor([5, 3])).shape == (2, ngf, 8, 8)


def _bce(logits, target):
    values = [-math.log(p) if target == 1 else -math.log(1 - p) for p in torch.sigmoid(logits).tolist()]
    return sum(values) / len(values)


def test_discriminator_loss_is_the_codes_per_stage_average_summed_over_stages():
    torch.manual_seed(0)
    model = AttnGAN((3, 32, 32), VOCAB, **TINY).eval()
    batch = {"image": torch.rand(3, 3, 32, 32) * 2 - 1, "tokens": torch.tensor([[2, 3], [2, 4], [3, 4]]),
             "lengths": torch.tensor([2, 2, 2])}
    fake = model.generate(batch)
    loss, _ = model.discriminator_loss(batch, fake)
    text = model.condition(batch)
    expected = 0.0
    for net, x in zip(model.discriminator.nets, fake):
        assert net.unconditional_logit is not None  # UNCOND_DNET in every D_NET
        real = F.interpolate(batch["image"], size=x.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        r, f, w = net(real, text), net(x, text), net(real, text.roll(1, 0))
        # discriminator_loss of miscc/losses.py with UNCOND_DNET:
        expected += (_bce(r[:, 0], 1) + _bce(r[:, 1], 1)) / 2 + (_bce(f[:, 1], 0) + _bce(f[:, 0], 0) + _bce(w[:, 0], 0)) / 3
    torch.testing.assert_close(loss, torch.tensor(expected))


def test_generator_loss_sums_both_heads_of_every_stage_and_the_mean_kl():
    torch.manual_seed(0)
    model = AttnGAN((3, 32, 32), VOCAB, **TINY).eval()
    batch = {"image": torch.zeros(3, 3, 32, 32), "tokens": torch.tensor([[2, 3], [2, 4], [3, 4]]),
             "lengths": torch.tensor([2, 2, 2])}
    fake = model.generate(batch)
    loss, logs = model.generator_loss(batch, fake)
    text = model.condition(batch)
    x = F.glu(model.generator.ca.fc(text), dim=1)  # CA_NET: fc to 4 c_dim, GLU
    mu, logvar = x[:, :8], x[:, 8:]
    kl = -0.5 * sum(1 + lv - m * m - math.exp(lv) for m, lv in zip(mu.flatten().tolist(), logvar.flatten().tolist())) / mu.numel()
    torch.testing.assert_close(logs["train/kl"], torch.tensor(kl))
    adversarial = 0.0
    for net, image in zip(model.discriminator.nets, fake):
        out = net(image, text)
        adversarial += _bce(out[:, 1], 1) + _bce(out[:, 0], 1)  # errG + cond_errG
    torch.testing.assert_close(loss, torch.tensor(adversarial + 1.0 * kl))


def test_training_with_a_damsm_adds_its_loss_to_g(tmp_path):
    damsm = tmp_path / "damsm.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train-damsm", "--dataset", "shapes", "--image-size", "32", "--synthetic-size", "32", "--batch-size", "8",
              "--num-workers", "0", "--epochs", "1", "--dim", "16", "--embedding-dim", "8", "--width", "4", "--out", str(damsm)])
        dm = shapes(image_size=32)
        model = AttnGAN((3, 32, 32), dm.vocab, damsm_ckpt=str(damsm), **TINY)
        fit(model, dm, 2, tmp_path)
    assert model.iteration == 2 and len(model._image_encoder) == 1
    assert not any(k.startswith("_image_encoder") for k in model.state_dict())  # not saved with the model
    batch = dm.on_after_batch_transfer(dm._dataset("train").__getitems__(range(4)), 0)
    _, logs = model.generator_loss(batch, model.generate(batch))
    assert logs["train/damsm_word"] > 0 and logs["train/damsm_sentence"] > 0
    assert model.eval().sample(2, condition="a red circle").shape == (2, 3, 32, 32)


def _authors_weights_init(kind):
    """The authors' weights_init, re-typed from its description: class-name matching as in their
    code (AttnGAN/StackGAN code/miscc/utils.py), applied with net.apply."""
    def init(m):
        name = m.__class__.__name__
        if name.find("Conv") != -1:
            if kind == "orthogonal":
                torch.nn.init.orthogonal_(m.weight.data, 1.0)
            else:
                m.weight.data.normal_(0.0, 0.02)
        elif name.find("BatchNorm") != -1:
            m.weight.data.normal_(1.0, 0.02)
            m.bias.data.fill_(0)
        elif name.find("Linear") != -1:
            if kind == "orthogonal":
                torch.nn.init.orthogonal_(m.weight.data, 1.0)
            else:
                m.weight.data.normal_(0.0, 0.02)
            if m.bias is not None:
                m.bias.data.fill_(0.0)
    return init


def test_networks_start_from_the_authors_initialization():
    """AttnGAN: orthogonal conv/linear weights; StackGAN: N(0, 0.02); both BN N(1, 0.02). The model
    built with the same seed equals PyTorch-default networks to which the authors' weights_init is
    then applied with net.apply (same RNG stream), tensor for tensor."""
    from genmodels import StackGAN

    for cls, kind, extra in ((AttnGAN, "orthogonal", TINY),
                             (StackGAN, "normal", dict(gf_dim=4, df_dim=4, condition_dim=8, **TINY_TEXT))):
        torch.manual_seed(1)
        model = cls((3, 64, 64), VOCAB, **extra)
        torch.manual_seed(1)
        reference = cls((3, 64, 64), VOCAB, weight_init="pytorch", **extra)
        changed = {k: v.clone() for k, v in reference.generator.state_dict().items()}
        reference.generator.apply(_authors_weights_init(kind))
        reference.discriminator.apply(_authors_weights_init(kind))
        for net, ref in ((model.generator, reference.generator), (model.discriminator, reference.discriminator)):
            for (key, value), (ref_key, ref_value) in zip(net.state_dict().items(), ref.state_dict().items()):
                assert key == ref_key and torch.equal(value, ref_value), (cls.__name__, key)
        assert any(not torch.equal(changed[k], v) for k, v in reference.generator.state_dict().items())
        convs = [m.weight.detach().flatten(1) for m in model.generator.modules() if isinstance(m, torch.nn.Conv2d)]
        if kind == "orthogonal":  # rows (or columns) orthonormal
            for w in convs:
                gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
                torch.testing.assert_close(gram, torch.eye(gram.shape[0]), atol=1e-5, rtol=0)
        else:
            assert abs(float(torch.cat([w.flatten() for w in convs]).std()) - 0.02) < 0.002


def test_generator_average_is_the_codes_constant_0999_from_the_initial_weights(tmp_path):
    """code/trainer.py: avg_param_G = copy of G's initial parameters; after every G step
    avg_p.mul_(0.999).add_(0.001, p); no warm-up. Re-derived from recorded G weights."""
    dm = shapes(image_size=64, n=16, batch_size=4)
    torch.manual_seed(0)
    model = AttnGAN((3, 64, 64), dm.vocab, ema_decay=0.999, **TINY)
    average = [p.detach().clone() for p in model.generator.parameters()]

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            for a, p in zip(average, module.generator.parameters()):
                a.mul_(0.999).add_(p.detach(), alpha=0.001)

    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, default_root_dir=str(tmp_path), callbacks=[Record()])
    trainer.fit(model, dm)
    assert model.iteration == 3
    for a, e in zip(average, model.generator_ema.parameters()):
        torch.testing.assert_close(e, a, rtol=1e-5, atol=1e-7)
    assert not all(torch.allclose(e, p) for e, p in zip(model.generator_ema.parameters(), model.generator.parameters()))
    assert model.sampling_generator is model.generator_ema
