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
initialized N(0, 0.02) (ajbrock/BigGAN-PyTorch, ``--G_init N02 --D_init N02`` on CIFAR).

Training is `AdversarialModel`'s loop: hinge loss, 4 D steps per G step, Adam 2e-4 for both with
betas (0, 0.999), an EMA of G (0.9999 from iteration 1000) for sampling and metrics, and BigGAN's
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
from genmodels.gans.gan import LatentGAN
from genmodels.gans.stabilization import apply_spectral_norm

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
    """BatchNorm without affine parameters, then gain (1 + W_g c) and bias W_b c per sample."""

    def __init__(self, channels: int, condition_dim: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
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

    def __init__(self, in_channels: int, out_channels: int, condition_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm(in_channels, condition_dim)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn2 = ConditionalBatchNorm(out_channels, condition_dim)
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


def _init_normal(module: nn.Module, std: float = 0.02) -> None:
    """N(0, 0.02) for every conv, linear and embedding weight (the official CIFAR setting)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(layer.weight, 0.0, std)


class BigGANGenerator(nn.Module):
    """G(z, y) with a shared class embedding, hierarchical z and conditional BatchNorm."""

    def __init__(
        self, image_shape: tuple[int, int, int], num_classes: int, latent_dim: int, channels: int,
        shared_dim: int, attention_resolution: Optional[int],
    ) -> None:
        super().__init__()
        image_channels, resolution, _ = image_shape
        num_blocks = int(math.log2(resolution)) - 2  # from 4x4
        self.chunk = latent_dim // (num_blocks + 1)
        self.shared = nn.Embedding(num_classes, shared_dim)
        self.linear = nn.Linear(self.chunk, channels * 4 * 4)
        self.blocks = nn.ModuleList(GeneratorBlock(channels, channels, shared_dim + self.chunk) for _ in range(num_blocks))
        # Attention after the block whose output has that resolution.
        self.attention_after = int(math.log2(attention_resolution)) - 3 if attention_resolution else -1
        self.attention = SelfAttention(channels) if attention_resolution else None
        self.output_bn = nn.BatchNorm2d(channels)
        self.output_conv = nn.Conv2d(channels, image_channels, 3, padding=1)
        self.channels = channels
        _init_normal(self)

    @property
    def latent_dim(self) -> int:
        return self.chunk * (len(self.blocks) + 1)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        """z (n, latent_dim), labels (n,) long -> images (n, C, H, W) in [-1, 1]."""
        chunks = torch.split(z, self.chunk, dim=1)
        shared = self.shared(labels)
        h = self.linear(chunks[0]).view(z.shape[0], self.channels, 4, 4)
        for index, (block, z_k) in enumerate(zip(self.blocks, chunks[1:])):
            h = block(h, torch.cat([shared, z_k], dim=1))
            if index == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.output_conv(F.relu(self.output_bn(h))))


class BigGANDiscriminator(nn.Module):
    """D(x, y): residual blocks down to 8x8, two more at 8x8, sum pooling and projection."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, channels: int, attention_resolution: Optional[int]) -> None:
        super().__init__()
        image_channels, resolution, _ = image_shape
        num_down = int(math.log2(resolution)) - 3  # to 8x8 (32x32: two down-sampling blocks)
        blocks: list[nn.Module] = []
        size = resolution
        for index in range(num_down + 2):
            down = index < num_down
            blocks.append(DiscriminatorBlock(image_channels if index == 0 else channels, channels, down, preactivation=index > 0))
            size = size // 2 if down else size
            if attention_resolution == size and not any(isinstance(b, SelfAttention) for b in blocks):
                blocks.append(SelfAttention(channels))
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(channels, 1)
        self.embed = nn.Embedding(num_classes, channels)
        _init_normal(self)

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
        latent_dim: size of z, split into (number of G blocks + 1) equal chunks (128: 4 x 32).
        channels: width of every block (4 * ch, ch = 64: 256, ajbrock/BigGAN-PyTorch's CIFAR G_arch).
        shared_dim: size of the shared class embedding (128).
        attention_resolution: where G and D get a self-attention block (16), null for none.
        orthogonal_reg: beta of the orthogonal regularization of G (1e-4; 0 disables).
        loss, n_critic, lr_g, lr_d, betas, ema_decay, ema_start: hinge, 4 D steps per G step,
            Adam 2e-4 / 2e-4 with betas (0, 0.999), EMA 0.9999 from iteration 1000.
        **kwargs: other training options of `AdversarialModel` (augment, lecam_weight, ...).

    Example:
        >>> model = BigGAN(image_shape=(1, 16, 16), num_classes=3, latent_dim=12, channels=16, shared_dim=8,
        ...     attention_resolution=8)
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
        **kwargs: Any,
    ) -> None:
        _check_options(image_shape, num_classes, latent_dim, channels, attention_resolution, orthogonal_reg)
        super().__init__(
            image_shape, latent_dim, "normal", loss=loss, n_critic=n_critic, lr_g=lr_g, lr_d=lr_d, betas=betas,
            ema_decay=ema_decay, ema_start=ema_start, **kwargs,
        )
        self.save_hyperparameters()
        self.conditioning: ClassLabels = make_condition(num_classes, None)
        self.num_classes = int(num_classes)
        self.orthogonal_reg = orthogonal_reg
        generator = BigGANGenerator(self.image_shape, num_classes, latent_dim, channels, shared_dim, attention_resolution)
        discriminator = BigGANDiscriminator(self.image_shape, num_classes, channels, attention_resolution)
        apply_spectral_norm(generator)  # SN in G too (Sec. 4), but not on the shared embedding
        apply_spectral_norm(discriminator)
        nn.utils.parametrizations.spectral_norm(discriminator.embed)  # the projection matrix V
        self.latent_dim = generator.latent_dim  # rounded down to a multiple of the chunks
        self.build(generator, discriminator)
        self._first_batch_checked = False

    # -- conditioning: D and G take the labels themselves (embeddings, not one-hot) --------------
    def condition(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's class labels, long (B,)."""
        return self.conditioning.from_batch(batch)

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        """Fakes of the batch's own classes, so D compares like with like."""
        labels = self.condition(batch)
        return self.generator(self.sample_latent(labels.shape[0], generator), labels)

    def generator_extras(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Any, dict[str, Tensor]]:
        """The orthogonal regularization of G's weights (added to the hinge loss -E[D(G(z), y)])."""
        if self.orthogonal_reg <= 0:
            return 0.0, {}
        ortho = orthogonal_regularization(self.ortho_weights(), self.orthogonal_reg)
        return ortho, {"train/orthogonal_reg": ortho.detach()}

    def ortho_weights(self) -> list[Tensor]:
        """G's weight matrices under the orthogonal regularization: all >= 2-D, minus the shared embedding."""
        shared = {id(p) for p in self.generator.shared.parameters()}
        return [p for p in self.generator.parameters() if p.dim() >= 2 and id(p) not in shared]

    # -- the public API (as ConditionalGAN) ---------------------------------------------------
    def decode(self, z: Tensor, condition: Any) -> Tensor:
        """G(z, y) through the sampling generator (EMA when enabled); differentiable in ``z``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
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
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.conditioning.check_datamodule(datamodule)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if not self._first_batch_checked:  # one host sync per run, for data without a datamodule
            labels = self.conditioning.from_batch(batch)
            self.conditioning.check(labels, labels.shape[0], labels.device)
            self._first_batch_checked = True


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
            raise ValueError(f"model option {key}={value!r} is invalid: must be {allowed}")
