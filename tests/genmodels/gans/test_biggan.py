"""BigGAN (genmodels/gans/biggan.py): networks, conditional BN, orthogonal regularization, the loop."""

import pytest
import pytorch_lightning as pl
import torch

from genmodels import BigGAN
from genmodels.callbacks import StopAtIteration
from genmodels.conditioning import ConditionError
from genmodels.gans.biggan import ConditionalBatchNorm, SelfAttention, orthogonal_regularization
from tests.cli.common import fit, load

#: The tiny configuration used by the tests (and the contract tests' per-model table).
TINY_BIGGAN = dict(image_shape=(1, 16, 16), num_classes=3, latent_dim=12, channels=16, shared_dim=8, attention_resolution=8)


class _Labelled(torch.utils.data.Dataset):
    def __init__(self, n=32, shape=(1, 16, 16), classes=3):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand((n, *shape), generator=g) * 2 - 1
        self.labels = torch.arange(n) % classes

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": self.labels[i]}


def _trainer(iterations, **kwargs):
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, callbacks=[StopAtIteration(iterations)], **kwargs,
    )


def test_shapes_hierarchical_latent_and_attention_placement():
    model = BigGAN(**TINY_BIGGAN)
    g, d = model.generator, model.discriminator
    assert g.chunk == 4 and len(g.blocks) == 2 and model.latent_dim == 12  # z: linear + 2 blocks, 4 each
    # every block's cBN reads [shared embedding (8), its z chunk (4)]
    assert all(block.bn1.gain.in_features == 12 for block in g.blocks)
    assert g.attention_after == 0  # after the block that outputs 8x8
    assert isinstance(d.blocks[1], SelfAttention)  # D: after the first (down-sampling) block, at 8x8
    labels = torch.tensor([0, 1, 2, 2])
    images = g(torch.randn(4, 12), labels)
    assert images.shape == (4, 1, 16, 16) and images.abs().max() <= 1
    assert d(images, labels).shape == (4,)
    assert model.eval().sample(5, condition=1).shape == (5, 1, 16, 16)
    cifar = BigGAN()
    assert len(cifar.generator.blocks) == 3 and cifar.generator.chunk == 32  # 32x32: 4 x 32 = 128


def test_spectral_norm_in_g_and_d_but_not_on_the_shared_embedding():
    model = BigGAN(**TINY_BIGGAN)
    parametrized = lambda m: hasattr(m, "parametrizations")  # noqa: E731
    assert parametrized(model.generator.linear) and parametrized(model.generator.blocks[0].bn1.gain)
    assert parametrized(model.discriminator.embed) and parametrized(model.discriminator.linear)
    assert not parametrized(model.generator.shared)


def test_projection_output_equals_linear_plus_class_embedding_inner_product():
    d = BigGAN(**TINY_BIGGAN).discriminator.eval()
    images, labels = torch.rand(3, 1, 16, 16), torch.tensor([2, 0, 1])
    phi = torch.relu(d.blocks(images)).sum(dim=(2, 3))
    expected = phi @ d.linear.weight.t() + d.linear.bias + (d.embed.weight[labels] * phi).sum(1, keepdim=True)
    assert torch.allclose(d(images, labels), expected.squeeze(1), atol=1e-5)


def test_conditional_batchnorm_value():
    cbn = ConditionalBatchNorm(2, 3)
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
        cbn.bias.weight.copy_(torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 0.0]]))
    x = torch.tensor([[[[1.0, 3.0]], [[0.0, 4.0]]], [[[5.0, 7.0]], [[2.0, 2.0]]]])  # (2, 2, 1, 2)
    c = torch.tensor([[1.0, 1.0, 2.0], [0.0, -1.0, 0.0]])
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    normalized = (x - mean) / torch.sqrt(var + 1e-5)
    gain = torch.tensor([[2.0, 3.0], [1.0, -1.0]])  # 1 + W_g c
    bias = torch.tensor([[2.0, 0.5], [0.0, 0.0]])  # W_b c
    expected = normalized * gain[:, :, None, None] + bias[:, :, None, None]
    assert torch.allclose(cbn(x, c), expected, atol=1e-5)


def test_orthogonal_regularization_value_and_official_gradient():
    w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]], requires_grad=True)
    value = orthogonal_regularization([w], 1e-4)
    # W W^T = [[5, 2], [2, 2]]; off-diagonal squared: 2 * 2^2 = 8; times beta / 2
    assert torch.isclose(value, torch.tensor(4e-4))
    value.backward()
    with torch.no_grad():
        gram = w @ w.t()
        official = 2 * (gram * (1 - torch.eye(2))) @ w  # BigGAN-PyTorch utils.ortho, times beta
    assert torch.allclose(w.grad, 1e-4 * official)


def test_orthogonal_regularization_covers_g_weights_but_not_the_shared_embedding():
    model = BigGAN(**TINY_BIGGAN)
    weights = {id(p) for p in model.ortho_weights()}
    assert id(model.generator.shared.weight) not in weights
    assert id(model.generator.blocks[0].conv1.parametrizations.weight.original) in weights
    model.discriminator.eval()  # no power iteration between the two calls of D
    batch = {"image": torch.rand(4, 1, 16, 16) * 2 - 1, "label": torch.tensor([0, 1, 2, 0])}
    fake = model.generate(batch)
    loss, logs = model.generator_loss(batch, fake)
    hinge = -model.discriminate(fake, batch["label"]).mean()
    assert torch.allclose(loss, hinge + logs["train/orthogonal_reg"], atol=1e-6)


def test_hinge_loop_takes_four_d_steps_per_g_step():
    model = BigGAN(**TINY_BIGGAN)
    assert (model.loss_name, model.n_critic, model.betas, model.lr_g, model.lr_d) == ("hinge", 4, (0.0, 0.999), 2e-4, 2e-4)
    g_before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    data = torch.utils.data.DataLoader(_Labelled(), batch_size=4)
    _trainer(3).fit(model, data)
    weights = [k for k in g_before if not any(s in k for s in ("._u", "._v", "running_", "num_batches"))]  # not SN/BN state
    assert all(torch.equal(g_before[k], model.generator.state_dict()[k]) for k in weights)
    assert any(not torch.equal(v, model.discriminator.state_dict()[k]) for k, v in d_before.items())
    _trainer(4).fit(model, data)  # the 4th iteration updates G
    assert any(not torch.equal(v, model.generator.state_dict()[k]) for k, v in g_before.items() if k.endswith("original"))


def test_sample_checks_the_condition():
    model = BigGAN(**TINY_BIGGAN).eval()
    with pytest.raises(ConditionError):
        model.sample(2, condition=torch.tensor([0, 5]))
    torch.manual_seed(0)
    a = model.sample(3, condition=torch.tensor([0, 1, 2]), generator=torch.Generator().manual_seed(1))
    b = model.sample(3, condition=torch.tensor([0, 1, 2]), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_bad_options_fail_clearly():
    for kwargs, key in (({"image_shape": (1, 12, 12)}, "image_shape"), ({"channels": 12}, "channels"),
                        ({"attention_resolution": 16}, "attention_resolution"), ({"orthogonal_reg": -1.0}, "orthogonal_reg")):
        with pytest.raises(ValueError, match=key):
            BigGAN(**{**TINY_BIGGAN, **kwargs})


def test_bf16_autocast_step_is_finite():
    model = BigGAN(**TINY_BIGGAN, augment="diffaugment", lecam_weight=0.1)
    _trainer(4, precision="bf16-mixed").fit(model, torch.utils.data.DataLoader(_Labelled(), batch_size=4))
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in model.parameters())


TINY_CLI = [
    "--model.init_args.channels", "16", "--model.init_args.latent_dim", "16", "--model.init_args.shared_dim", "8",
]


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run_ada_and_lecam_included(tmp_path):
    """G, D, EMA, cBN statistics, ADA's p and statistics, LeCam's anchors all resume exactly.

    p is adjusted after every 2nd iteration: the resume at 5 falls inside an interval, and the run
    ends at 11 with one D step's observation pending (a run ending on an adjustment has zeroed it).
    """
    args = [*TINY_CLI, "--data.init_args.image_size", "16", "--data.init_args.batch_size", "8",
            "--model.init_args.attention_resolution", "8", "--model.init_args.augment", "ada",
            "--model.init_args.ada_kimg", "0.01", "--model.init_args.ada_interval", "2", "--model.init_args.lecam_weight", "0.3",
            "--trainer.logger", "false", "--checkpoint.every_n_iterations", "100", "--sample_grid.every_n_iterations", "100",
            "--trainer.check_val_every_n_epoch", "1000", "--trainer.callbacks", "[]"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit("biggan/digits.yaml", straight, "--max_iterations", "11", *args)
    fit("biggan/digits.yaml", resumed, "--max_iterations", "5", *args)
    fit("biggan/digits.yaml", resumed, "--max_iterations", "11", "--ckpt_path", "last", *args)
    a, b = load(straight / "checkpoints/last.ckpt")["state_dict"], load(resumed / "checkpoints/last.ckpt")["state_dict"]
    assert {"augment_pipe.p", "augment_pipe.sign_sum", "lecam.d.real", "lecam.d.fake"} <= set(a)
    # ADA observed the 8 real outputs of the last D step (its one pass on [fakes, reals]); the anchors moved.
    assert float(a["augment_pipe.sign_count"]) == 8 and float(a["lecam.d.real"]) != 0
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# -- the official runs' switches (issue #26) ----------------------------------------------------
EXPERIMENTS = __import__("pathlib").Path(__file__).resolve().parents[3] / "experiments" / "biggan"


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "config, counts",
    [
        # StudioGAN 8c60058 logs/CIFAR10/BigGAN-train-2021_01_15_14_48_48.log: "Number of parameters".
        ("cifar10.yaml", (9_416_196, 2_415_170)),
        # ajbrock train.py / DiffAugment train.py classes built from the scripts' flags (the note).
        ("cifar10_ajbrock.yaml", (4_304_387, 4_207_361)),
        ("cifar10_diffaugment.yaml", (4_304_387, 4_207_361)),
        ("cifar10_diffaugment_0.1.yaml", (4_304_387, 4_207_361)),
    ],
)
def test_cifar_configs_build_the_official_networks(config, counts):
    import yaml

    with open(EXPERIMENTS / config) as f:
        init_args = yaml.safe_load(f)["model"]["init_args"]
    # The count does not depend on the init; N02 skips 30 s of orthogonalizing 384-wide kernels.
    model = BigGAN(**dict(init_args, init="N02"))
    assert (_count(model.generator), _count(model.discriminator)) == counts


def test_diffaugment_configs_train_as_long_as_their_scripts():
    import yaml

    steps = {}
    for name in ("cifar10_diffaugment.yaml", "cifar10_diffaugment_0.1.yaml"):
        with open(EXPERIMENTS / name) as f:
            config = yaml.safe_load(f)
        images = config["data"]["init_args"].get("max_train_images", 50_000)
        epochs = 1000 if "0.1" not in name else 5000  # --num_epochs of the two scripts
        # An official epoch is images / (50 x 4) iterations of 4 D steps; genmodels counts D steps.
        steps[name] = (config["max_iterations"], epochs * images // 200 * 4)
    assert all(ours == theirs for ours, theirs in steps.values()), steps
    assert steps["cifar10_diffaugment_0.1.yaml"][0] == 500_000


def test_generator_without_hier_or_shared_is_ajbrocks_default():
    model = BigGAN(**dict(TINY_BIGGAN, hier=False, shared=False))
    g = model.generator
    assert g.shared is None and model.latent_dim == 12
    assert g.linear.parametrizations.weight.original.shape == (16 * 16, 12)  # all of z goes in
    bn = g.blocks[0].bn1
    assert isinstance(bn.gain, torch.nn.Embedding) and bn.gain.weight.shape == (3, 16)
    assert not hasattr(bn.gain, "parametrizations")  # embeddings are never spectrally normalized
    # Value: with per-class gains, cBN(x, y) = BN(x) * (1 + gain[y]) + bias[y].
    x = torch.randn(4, 16, 4, 4)
    y = torch.tensor([0, 2, 1, 2])
    expected = torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-5)
    expected = expected * (1 + bn.gain.weight[y])[:, :, None, None] + bn.bias.weight[y][:, :, None, None]
    torch.testing.assert_close(bn(x, y), expected)
    with pytest.raises(ValueError, match="hier"):
        BigGAN(**dict(TINY_BIGGAN, hier=True, shared=False))


def test_discriminator_width_attention_blocks_init_and_eps():
    from genmodels.gans.biggan import SelfAttention

    model = BigGAN(**dict(TINY_BIGGAN, d_channels=8, d_attention_blocks=[0, 1, 2], init="ortho", zero_bias=True, bn_eps=1e-4))
    d = model.discriminator
    kinds = [type(b).__name__ for b in d.blocks]
    assert kinds == ["DiscriminatorBlock", "SelfAttention", "DiscriminatorBlock", "SelfAttention", "DiscriminatorBlock", "SelfAttention"]
    assert d.linear.parametrizations.weight.original.shape == (1, 8) and isinstance(d.blocks[1], SelfAttention)
    # Orthogonal init: rows of a wide matrix are orthonormal; StudioGAN's zero biases.
    w = model.generator.blocks[0].conv1.parametrizations.weight.original.reshape(16, -1)
    torch.testing.assert_close(w @ w.t(), torch.eye(16), atol=1e-5, rtol=0)
    assert model.generator.blocks[0].conv1.bias.abs().max() == 0
    assert model.generator.output_bn.eps == 1e-4 and model.generator.blocks[0].bn1.bn.eps == 1e-4
    with pytest.raises(ValueError, match="d_attention_blocks"):
        BigGAN(**dict(TINY_BIGGAN, d_attention_blocks=[3]))


def test_ema_interpolates_batchnorm_statistics_like_the_official_code():
    from genmodels.gans.stabilization import make_ema, update_ema

    torch.manual_seed(0)
    live = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    ema = make_ema(live)
    live(torch.randn(8, 2, 4, 4))  # moves the live running statistics
    old_mean, old_var = ema[1].running_mean.clone(), ema[1].running_var.clone()
    old_w = ema[0].weight.clone()
    update_ema(ema, live, 0.9, "interpolate")
    # ajbrock utils.ema.update / StudioGAN: target = target * decay + source * (1 - decay), state dict.
    torch.testing.assert_close(ema[1].running_mean, old_mean * 0.9 + live[1].running_mean * 0.1)
    torch.testing.assert_close(ema[1].running_var, old_var * 0.9 + live[1].running_var * 0.1)
    torch.testing.assert_close(ema[0].weight, old_w * 0.9 + live[0].weight * 0.1)
    assert ema[1].num_batches_tracked == live[1].num_batches_tracked  # integer counter: copied
    update_ema(ema, live, 0.9, "copy")  # the other GANs (DCGAN with EMA): the live statistics
    torch.testing.assert_close(ema[1].running_mean, live[1].running_mean, rtol=0, atol=0)
    assert BigGAN(**TINY_BIGGAN).ema_buffers == "interpolate"


def test_ema_of_a_spectrally_normalized_layer_samples_with_the_official_sigma():
    from genmodels.gans.stabilization import make_ema, update_ema

    torch.manual_seed(0)
    live = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(6, 5))
    ema = make_ema(live)
    weight = lambda layer: layer.parametrizations.weight.original
    vectors = lambda layer: (layer.parametrizations.weight[0]._u, layer.parametrizations.weight[0]._v)
    for _ in range(3):  # training moves W, and the live power iteration moves u and v with it
        with torch.no_grad():
            weight(live).add_(torch.randn(5, 6))
        live(torch.randn(2, 6))
    w_ema, u_ema, v_ema, b_ema = weight(ema).clone(), *[t.clone() for t in vectors(ema)], ema.bias.clone()
    update_ema(ema, live, 0.7, "interpolate")

    # ajbrock: G_ema's whole state dict is averaged (weight, bias, u0); in eval mode layers.SN takes
    # one power step from the averaged u0: v1 = normalize(W^T u0), sigma = ||W v1||.
    w = 0.7 * w_ema + 0.3 * weight(live)
    u = 0.7 * u_ema + 0.3 * vectors(live)[0]
    sigma = (w @ torch.nn.functional.normalize(w.t() @ u, dim=0)).norm()
    x = torch.randn(4, 6)
    official = x @ (w / sigma).t() + (0.7 * b_ema + 0.3 * live.bias)
    torch.testing.assert_close(ema.eval()(x), official)
    # What PyTorch's eval mode reads from the averaged vectors alone is another sigma.
    averaged = torch.vdot(u, w @ (0.7 * v_ema + 0.3 * vectors(live)[1]))
    assert abs(averaged / sigma - 1) > 0.05, (averaged, sigma)


def test_fake_labels_are_sampled_independently_of_the_real_batch():
    model = BigGAN(**TINY_BIGGAN)
    batch = {"image": torch.zeros(64, 1, 16, 16), "label": torch.zeros(64, dtype=torch.long)}
    images, labels = model.generate(batch, generator=torch.Generator().manual_seed(0))
    assert images.shape == (64, 1, 16, 16) and labels.shape == (64,)
    assert set(labels.tolist()) == {0, 1, 2}  # uniform over the classes, not the batch's all-zero labels
    # D scores the fakes with their own labels: identical to calling D with them directly
    # (eval mode: no power iteration between the two calls).
    model.eval()
    torch.testing.assert_close(model.discriminate((images, labels), batch["label"]), model.discriminator(images, labels))
    real = BigGAN(**dict(TINY_BIGGAN, fake_labels="real")).generate(batch)
    assert isinstance(real, torch.Tensor)


def test_ema_schedule_is_the_official_one_in_g_steps():
    model = BigGAN(**dict(TINY_BIGGAN, ema_decay=0.9999, ema_start=1000, n_critic=4))
    betas = {}
    for g_step in (1, 999, 1000, 5000):
        model.iteration = 4 * g_step - 1  # the iteration on which G takes its g_step-th update
        betas[g_step] = model.ema_beta([])
    # ajbrock utils.ema.update(itr): decay 0 while itr < start_itr, else the full decay.
    assert betas == {1: 0.0, 999: 0.0, 1000: 0.9999, 5000: 0.9999}
