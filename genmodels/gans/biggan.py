"""BigGAN: Large Scale GAN Training for High Fidelity Natural Image Synthesis (Brock et al. 2019,
arXiv:1809.11096), in its CIFAR-10 (32x32) form.

G (Sec. 3, App. B): a shared class embedding feeds every conditional BatchNorm; z is split into
one chunk per block plus one for the input linear layer (hierarchical latent, "skip-z"), and each
block's cBN takes [shared embedding, its z chunk] through linear maps to per-channel gains
(1 + ...) and biases; up-sampling residual blocks of constant width (4 * ch at 32x32), one
self-attention block (Zhang et al. 2019, arXiv:1805.08318) at 16x16, BN-ReLU-conv-tanh output.
D: residual down-sampling blocks (the first without pre-activation), self-attention at 16x16,
ReLU, global sum pooling and a projection output (Miyato & Koyama 2018, arXiv:1802.05637):
D(x, y) = w^T phi(x) + embed(y)^T phi(x). Both networks are spectrally normalized (Sec. 4) and
initialized N(0, 0.02) by default (ajbrock/BigGAN-PyTorch, ``--G_init N02 --D_init N02`` on CIFAR).
The switches of the official CIFAR runs are options (``hier``, ``shared``, D width and attention
blocks, init, BN eps); experiments/biggan/ holds one YAML per official run (docs/reproducing.md).

Training is `AdversarialModel`'s loop: hinge loss, 4 D steps per G step (each one D pass on fakes
and reals together, as BigGAN.py's G_D), fake labels drawn uniformly, Adam 2e-4 for both with
betas (0, 0.999), an EMA of G (0.9999 from G step 1000, BN statistics averaged too, as both
official codes) for sampling and metrics, and BigGAN's
orthogonal regularization of G (Sec. 3.1): beta ||W W^T * (1 - I)||_F^2 summed over G's weight
matrices (conv kernels flattened per output channel) except the shared embedding. The official
code adds the gradient 2 beta (W W^T * (1 - I)) W directly (utils.ortho); the term here is
(beta / 2) ||W W^T * (1 - I)||_F^2, whose gradient is exactly that.

Not implemented: BigGAN-deep, truncation trick at sampling (``truncation`` of the apps applies to
the latent of any model), cross-replica BatchNorm (use the Trainer's ``sync_batchnorm``), and
BigGAN's fp16 tricks.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.conditioning import ClassLabels, ConditionError, make_condition
from genmodels.gans.adversarial import Judged
from genmodels.gans.gan import LatentGAN
from genmodels.gans.stabilization import apply_spectral_norm
from genmodels.errors import InvalidValue

__all__ = [
    "BigGAN", "BigGANGenerator", "BigGANDiscriminator", "ConditionalBatchNorm", "SelfAttention",
    "orthogonal_regularization",
]


def orthogonal_regularization(weights: list[Tensor], strength: float) -> Tensor:
    """(strength / 2) sum_W ||W W^T * (1 - I)||_F^2, W each weight viewed as (out, -1).

    Its gradient w.r.t. W is strength * 2 (W W^T * (1 - I)) W, what the official code adds.
    """
    total = weights[0].new_zeros((), dtype=torch.float32)
    for weight in weights:
        w = weight.float().reshape(weight.shape[0], -1)
        gram = w @ w.t()
        off_diagonal = gram * (1 - torch.eye(w.shape[0], device=w.device))
        total = total + off_diagonal.pow(2).sum()
    return 0.5 * strength * total


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine parameters, then gain (1 + W_g c) and bias W_b c per sample.

    With ``num_classes`` set, c is a class label and W_g, W_b are per-class embeddings (the
    official G without a shared embedding, ``--G_shared`` off); otherwise c is a vector and they
    are linear maps.
    """

    def __init__(
        self, channels: int, condition_dim: int, eps: float = 1e-5, momentum: float = 0.1,
        num_classes: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        if num_classes is not None:
            self.gain: nn.Module = nn.Embedding(num_classes, channels)
            self.bias: nn.Module = nn.Embedding(num_classes, channels)
        else:
            self.gain = nn.Linear(condition_dim, channels, bias=False)
            self.bias = nn.Linear(condition_dim, channels, bias=False)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        gain = 1 + self.gain(condition)
        bias = self.bias(condition)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN's non-local block: x + gamma * o(softmax(theta^T phi) g), phi and g max-pooled 2x2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.theta = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.phi = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.g = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.o = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))  # starts as the identity

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # (B, C/8, HW)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # (B, C/8, HW/4)
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # (B, C/2, HW/4)
        attention = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (B, HW, HW/4)
        o = self.o((g @ attention.transpose(1, 2)).view(b, c // 2, h, w))
        return x + self.gamma * o


class GeneratorBlock(nn.Module):
    """cBN-ReLU-up-conv3x3-cBN-ReLU-conv3x3, plus an upsampled 1x1-conv shortcut."""

    def __init__(
        self, in_channels: int, out_channels: int, condition_dim: int, eps: float = 1e-5,
        num_classes: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm(in_channels, condition_dim, eps, num_classes=num_classes)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn2 = ConditionalBatchNorm(out_channels, condition_dim, eps, num_classes=num_classes)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), condition)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DiscriminatorBlock(nn.Module):
    """(ReLU)-conv3x3-ReLU-conv3x3-(avgpool), plus a 1x1-conv shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, preactivation: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.downsample, self.preactivation = downsample, preactivation
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if (in_channels != out_channels or downsample) else None

    def _shortcut(self, x: Tensor) -> Tensor:
        if self.shortcut is None:
            return x
        # Pre-activated blocks convolve first (cheaper at the higher resolution is not the point:
        # this is the order of the official code); the first block pools first.
        if self.preactivation:
            x = self.shortcut(x)
            return F.avg_pool2d(x, 2) if self.downsample else x
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.shortcut(x)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self._shortcut(x)


INITS = ("N02", "ortho", "xavier")


def initialize(module: nn.Module, init: str = "N02", zero_bias: bool = False) -> None:
    """The official ``--G_init/--D_init`` of every conv, linear and embedding weight.

    ``N02`` is N(0, 0.02) (ajbrock's CIFAR scripts), ``ortho`` orthogonal (ajbrock's default and
    StudioGAN's CIFAR config), ``xavier`` Glorot-uniform. ajbrock leaves the biases at PyTorch's
    default; StudioGAN zeroes them (``zero_bias``).
    """
    for layer in module.modules():
        if not isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)):
            continue
        if init == "N02":
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif init == "ortho":
            nn.init.orthogonal_(layer.weight)
        else:
            nn.init.xavier_uniform_(layer.weight)
        if zero_bias and getattr(layer, "bias", None) is not None and not isinstance(layer, nn.Embedding):
            nn.init.zeros_(layer.bias)


class BigGANGenerator(nn.Module):
    """G(z, y) with a shared class embedding, hierarchical z and conditional BatchNorm."""

    def __init__(
        self, image_shape: tuple[int, int, int], num_classes: int, latent_dim: int, channels: int,
        shared_dim: int, attention_resolution: Optional[int], hier: bool = True, shared: bool = True,
        bn_eps: float = 1e-5, init: str = "N02", zero_bias: bool = False,
    ) -> None:
        super().__init__()
        image_channels, resolution, _ = image_shape
        num_blocks = int(math.log2(resolution)) - 2  # from 4x4
        self.hier = hier
        # Hierarchical z: one chunk for the input layer, one per block; otherwise all of z goes in.
        self.chunk = latent_dim // (num_blocks + 1) if hier else latent_dim
        self.shared = nn.Embedding(num_classes, shared_dim) if shared else None
        condition_dim = (shared_dim if shared else 0) + (self.chunk if hier else 0)
        per_class = None if shared else num_classes
        self.linear = nn.Linear(self.chunk, channels * 4 * 4)
        self.blocks = nn.ModuleList(
            GeneratorBlock(channels, channels, condition_dim, bn_eps, per_class) for _ in range(num_blocks)
        )
        # Attention after the block whose output has that resolution.
        self.attention_after = int(math.log2(attention_resolution)) - 3 if attention_resolution else -1
        self.attention = SelfAttention(channels) if attention_resolution else None
        self.output_bn = nn.BatchNorm2d(channels, eps=bn_eps)
        self.output_conv = nn.Conv2d(channels, image_channels, 3, padding=1)
        self.channels = channels
        initialize(self, init, zero_bias)

    @property
    def latent_dim(self) -> int:
        return self.chunk * (len(self.blocks) + 1) if self.hier else self.chunk

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        """z (n, latent_dim), labels (n,) long -> images (n, C, H, W) in [-1, 1]."""
        chunks = torch.split(z, self.chunk, dim=1) if self.hier else (z,)
        # What each cBN sees: [shared(y), z_k] (hier), shared(y), or y itself (per-class gains).
        y = self.shared(labels) if self.shared is not None else labels
        conditions = [torch.cat([y, z_k], dim=1) for z_k in chunks[1:]] if self.hier else [y] * len(self.blocks)
        h = self.linear(chunks[0]).view(z.shape[0], self.channels, 4, 4)
        for index, (block, condition) in enumerate(zip(self.blocks, conditions)):
            h = block(h, condition)
            if index == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.output_conv(F.relu(self.output_bn(h))))


def discriminator_blocks(resolution: int) -> int:
    """Number of D blocks: down-sampling ones to 8x8, then two at 8x8 (4 at 32x32)."""
    return int(math.log2(resolution)) - 3 + 2


def attention_after_blocks(resolution: int, attention_resolution: Optional[int]) -> list[int]:
    """D's attention after the first block whose output has ``attention_resolution`` (or none)."""
    size = resolution
    for index in range(discriminator_blocks(resolution) - 2):
        size //= 2
        if size == attention_resolution:
            return [index]
    return []


class BigGANDiscriminator(nn.Module):
    """D(x, y): residual blocks down to 8x8, two more at 8x8, sum pooling and projection."""

    def __init__(
        self, image_shape: tuple[int, int, int], num_classes: int, channels: int, attention_resolution: Optional[int],
        attention_blocks: Optional[list[int]] = None, init: str = "N02", zero_bias: bool = False,
    ) -> None:
        super().__init__()
        image_channels, resolution, _ = image_shape
        num_blocks = discriminator_blocks(resolution)
        num_down = num_blocks - 2  # to 8x8 (32x32: two down-sampling blocks)
        if attention_blocks is None:
            attention_blocks = attention_after_blocks(resolution, attention_resolution)
        blocks: list[nn.Module] = []
        for index in range(num_blocks):
            blocks.append(DiscriminatorBlock(image_channels if index == 0 else channels, channels, index < num_down, preactivation=index > 0))
            if index in attention_blocks:
                blocks.append(SelfAttention(channels))
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(channels, 1)
        self.embed = nn.Embedding(num_classes, channels)
        initialize(self, init, zero_bias)

    def features(self, images: Tensor, labels: Tensor) -> Tensor:
        """phi(x): ReLU then global sum pooling, (n, channels) (feature matching)."""
        return F.relu(self.blocks(images)).sum(dim=(2, 3))

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """One score per image, (n,)."""
        phi = self.features(images, labels)
        return self.linear(phi).squeeze(1) + (self.embed(labels) * phi).sum(dim=1)


class BigGAN(LatentGAN):
    """Class-conditional BigGAN for 32x32 images (CIFAR-10), on `AdversarialModel`'s loop.

    Args:
        image_shape: ``(C, H, W)``, square, H a power of 2 >= 8 (32 for the paper's CIFAR model).
        num_classes: number of classes (must equal the datamodule's; checked when fitting).
        latent_dim: size of z, split into (number of G blocks + 1) equal chunks when ``hier`` (128: 4 x 32).
        channels: width of every G block (4 * ch, ch = 64: 256, ajbrock/BigGAN-PyTorch's CIFAR G_arch).
        shared_dim: size of the shared class embedding (128).
        attention_resolution: where G gets a self-attention block (16), null for none; D too unless
            ``d_attention_blocks`` says otherwise.
        orthogonal_reg: beta of the orthogonal regularization of G (1e-4; 0 disables).
        hier: hierarchical z (``--hier``); off, all of z feeds G's input layer and the cBNs see only
            the class.
        shared: one shared class embedding feeding every cBN (``--G_shared``); off, each cBN has its own
            per-class gain and bias embeddings (ajbrock's default; ``hier`` needs ``shared``).
        d_channels: width of D's blocks (None: ``channels``; StudioGAN's CIFAR D is half of G's).
        d_attention_blocks: indices of the D blocks followed by self-attention (None: the block
            reaching ``attention_resolution``; ajbrock's CIFAR ``--D_attn 16`` labels all four blocks
            16, so it is [0, 1, 2, 3]; [] for none).
        init, zero_bias: weight initialization of both networks (``N02``, ``ortho``, ``xavier``), and
            whether biases start at 0 (StudioGAN) instead of PyTorch's default (ajbrock).
        bn_eps: epsilon of G's BatchNorms (ajbrock 1e-5, StudioGAN 1e-4).
        fake_labels: ``sample`` draws the fakes' classes uniformly and independently of the real
            batch (both official codes); ``real`` reuses the real batch's labels.
        ema_buffers: ``interpolate`` averages G's BatchNorm statistics (and spectral-norm vectors)
            like its weights, as both official codes do (their EMA runs over the state dict);
            ``copy`` copies the live G's buffers (the other genmodels GANs' EMA).
        **kwargs: other training options of `AdversarialModel` (augment, lecam_weight, ...).

    Example:
        >>> model = BigGAN(**BigGAN.tiny())  # 3 classes
        >>> model.eval().sample(3, condition=torch.tensor([0, 1, 2])).shape
        torch.Size([3, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        num_classes: int = 10,
        latent_dim: int = 128,
        channels: int = 256,
        shared_dim: int = 128,
        attention_resolution: Optional[int] = 16,
        orthogonal_reg: float = 1e-4,
        loss: str = "hinge",
        n_critic: int = 4,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.0, 0.999),
        ema_decay: Optional[float] = 0.9999,
        ema_start: int = 1000,
        hier: bool = True,
        shared: bool = True,
        d_channels: Optional[int] = None,
        d_attention_blocks: Optional[list[int]] = None,
        init: str = "N02",
        zero_bias: bool = False,
        bn_eps: float = 1e-5,
        fake_labels: str = "sample",
        ema_buffers: str = "interpolate",
        **kwargs: Any,
    ) -> None:
        _check_options(image_shape, num_classes, latent_dim, channels, attention_resolution, orthogonal_reg)
        _check_switches(image_shape, hier, shared, d_channels, d_attention_blocks, init, bn_eps, fake_labels, ema_buffers)
        super().__init__(
            image_shape, latent_dim, "normal", loss=loss, n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas,
            ema_decay=ema_decay, ema_start=ema_start, **kwargs,
        )
        self.save_hyperparameters()
        self.conditioning: ClassLabels = make_condition(num_classes, None)
        self.num_classes = int(num_classes)
        self.orthogonal_reg = orthogonal_reg
        self.fake_labels, self.ema_buffers = fake_labels, ema_buffers
        if fake_labels == "sample" and (self.penalty is not None or self.feature_matching):
            raise InvalidValue("model option fake_labels='sample' cannot be combined with a gradient penalty or feature matching: use fake_labels='real'")
        generator = BigGANGenerator(
            self.image_shape, num_classes, latent_dim, channels, shared_dim, attention_resolution, hier=hier,
            shared=shared, bn_eps=bn_eps, init=init, zero_bias=zero_bias,
        )
        discriminator = BigGANDiscriminator(
            self.image_shape, num_classes, d_channels or channels, attention_resolution, d_attention_blocks, init, zero_bias,
        )
        # SN in G too (Sec. 4), but not on the embeddings (the shared one or the per-class cBN gains).
        apply_spectral_norm(generator)
        apply_spectral_norm(discriminator)
        nn.utils.parametrizations.spectral_norm(discriminator.embed)  # the projection matrix V
        self.latent_dim = generator.latent_dim  # rounded down to a multiple of the chunks
        self.build(generator, discriminator)
        self._first_batch_checked = False

    def ema_beta(self, micro_batches: list[dict[str, Tensor]]) -> float:
        """The official EMA schedule: a copy before G step ``ema_start``, then ``ema_decay`` flat.

        Both official codes count ``ema_start`` in G steps (ajbrock: ``state_dict['itr']``, 1 at
        the first G step; StudioGAN: ``step_count``) and use the full decay from there on, where
        genmodels' other GANs count iterations and ramp the decay up.
        """
        g_step = (self.iteration + 1) // self.n_critic  # 1 at the first G update
        return 0.0 if g_step < self.ema_start else float(self.ema_decay)

    # -- conditioning: D and G take the labels themselves (embeddings, not one-hot) --------------
    def condition(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's class labels, long (B,)."""
        return self.conditioning.from_batch(batch)

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Any:
        """Fakes for one batch: (images, their labels) with labels drawn uniformly (``fake_labels``
        ``sample``, train_fns.py's ``y_.sample_()``), or images of the batch's own classes."""
        labels = self.condition(batch)
        if self.fake_labels == "real":
            return self.generator(self.sample_latent(labels.shape[0], generator), labels)
        z = self.sample_latent(labels.shape[0], generator)
        fake_labels = self.conditioning.draw(labels.shape[0], generator, labels.device)
        return self.generator(z, fake_labels), fake_labels

    def judged(self, batch: dict[str, Tensor], fake: Any) -> dict[str, Judged]:
        """Real images under their labels against fakes under theirs (`generate` gives (images, labels))."""
        images, labels = fake if isinstance(fake, tuple) else (fake, None)
        return {"d": Judged(batch["image"], images, self.condition(batch), fake_condition=labels)}

    def discriminate_pair(self, judged: Judged, critic: str = "d") -> tuple[Tensor, Tensor]:
        """One D pass on [fakes, reals] (BigGAN.py's G_D): one spectral-norm power-iteration step
        per D step, as in the official code, where two passes would take two."""
        fake, real = judged.fake, judged.real
        out = self.discriminate(torch.cat([fake, real]), torch.cat([judged.condition_of_fakes, judged.condition]), critic)
        fake_out, real_out = out.split([fake.shape[0], real.shape[0]])
        return real_out, fake_out

    def discriminate(self, images: Any, condition: Any = None, critic: str = "d") -> Tensor:
        """D(x, y); a fake from `generate` carries its own labels, which replace ``condition``."""
        if isinstance(images, tuple):
            images, condition = images
        return super().discriminate(images, condition, critic)

    def generator_extras(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Any, dict[str, Tensor]]:
        """The orthogonal regularization of G's weights (added to the hinge loss -E[D(G(z), y)])."""
        if self.orthogonal_reg <= 0:
            return 0.0, {}
        ortho = orthogonal_regularization(self.ortho_weights(), self.orthogonal_reg)
        return ortho, {"train/orthogonal_reg": ortho.detach()}

    def ortho_weights(self) -> list[Tensor]:
        """G's weight matrices under the orthogonal regularization: all >= 2-D, minus the shared embedding."""
        embedding = self.generator.shared
        shared = {id(p) for p in embedding.parameters()} if embedding is not None else set()
        return [p for p in self.generator.parameters() if p.dim() >= 2 and id(p) not in shared]

    # -- the public API (as ConditionalGAN) ---------------------------------------------------
    def decode(self, z: Tensor, condition: Any) -> Tensor:
        """G(z, y) through the sampling generator (EMA when enabled); differentiable in ``z``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InvalidValue(f"z must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        if condition is None:
            raise ConditionError(f"BigGAN.decode needs a condition ({self.conditioning.describe()})")
        return self.sampling_generator(z, self.conditioning.check(condition, z.shape[0], z.device))

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` images of the given classes (an int, or ``n`` labels; None draws them uniformly)."""
        if condition is None:
            labels = self.conditioning.draw(n, generator, self.device)
        else:
            labels = self.conditioning.check(condition, n, self.device)
        return self.sampling_generator(self.sample_latent(n, generator), labels)

    # -- checks when fitting ------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = self.trainer.datamodule
        if datamodule is not None:
            self.conditioning.check_datamodule(datamodule)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if not self._first_batch_checked:  # one host sync per run, for data without a datamodule
            labels = self.conditioning.from_batch(batch)
            self.conditioning.check(labels, labels.shape[0], labels.device)
            self._first_batch_checked = True

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size BigGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), num_classes=3, latent_dim=16, channels=16, d_channels=16, shared_dim=8,
                    attention_resolution=8)


def _check_switches(
    image_shape: tuple[int, int, int], hier: bool, shared: bool, d_channels: Optional[int],
    d_attention_blocks: Optional[list[int]], init: str, bn_eps: float, fake_labels: str, ema_buffers: str,
) -> None:
    blocks = discriminator_blocks(image_shape[1]) if image_shape[1] >= 8 else 0
    checks = [
        ("hier", shared or not hier, hier, "false when shared is false (the z chunks join the shared embedding)"),
        ("d_channels", d_channels is None or (d_channels >= 8 and d_channels % 8 == 0), d_channels, "null or a positive multiple of 8"),
        ("d_attention_blocks", d_attention_blocks is None or all(0 <= int(i) < blocks for i in d_attention_blocks),
         d_attention_blocks, f"null or block indices in [0, {blocks - 1}]"),
        ("init", init in INITS, init, f"one of {', '.join(INITS)}"),
        ("bn_eps", bn_eps > 0, bn_eps, "> 0"),
        ("fake_labels", fake_labels in ("sample", "real"), fake_labels, "sample or real"),
        ("ema_buffers", ema_buffers in ("interpolate", "copy"), ema_buffers, "interpolate or copy"),
    ]
    for key, ok, value, allowed in checks:
        if not ok:
            raise InvalidValue(f"model option {key}={value!r} is invalid: must be {allowed}")


def _check_options(
    image_shape: tuple[int, int, int], num_classes: int, latent_dim: int, channels: int,
    attention_resolution: Optional[int], orthogonal_reg: float,
) -> None:
    _, height, width = image_shape
    blocks = int(math.log2(height)) - 2 if height >= 8 else 0
    checks = [
        ("image_shape", height == width and height >= 8 and height & (height - 1) == 0, tuple(image_shape), "square with a power-of-2 size >= 8"),
        ("num_classes", num_classes >= 1, num_classes, ">= 1"),
        ("latent_dim", blocks > 0 and latent_dim >= blocks + 1, latent_dim, f">= {blocks + 1} (one chunk per G block plus one)"),
        ("channels", channels >= 8 and channels % 8 == 0, channels, "a positive multiple of 8 (attention uses channels / 8)"),
        ("attention_resolution", attention_resolution is None or (8 <= attention_resolution <= height // 2 and attention_resolution & (attention_resolution - 1) == 0),
         attention_resolution, f"null or a power of 2 in [8, {height // 2}]"),
        ("orthogonal_reg", orthogonal_reg >= 0, orthogonal_reg, ">= 0"),
    ]
    for key, ok, value, allowed in checks:
        if not ok:
            raise InvalidValue(f"model option {key}={value!r} is invalid: must be {allowed}")
