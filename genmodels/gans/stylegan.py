"""StyleGAN (Karras et al. 2019, arXiv:1812.04948) and its StyleGAN2 option (Karras et al. 2020, arXiv:1912.04958).

**StyleGAN** (``architecture: stylegan``): a mapping network f: z -> w (8 equalized FC layers,
lr multiplier 0.01, Sec. 2) feeds a synthesis network that starts from a learned constant 4x4
input; after every convolution, per-pixel noise with a learned per-channel scale is added
(Sec. 3.2) and AdaIN applies the style A(w) (Eq. 1). Upsampling is nearest-neighbour followed by
the [1, 2, 1] blur, and D blurs before its downsampling convolution (official ``G_style`` /
``D_basic``). Training follows the official config (NVlabs/stylegan train.py): progressive growing
from 8x8 with 600k-image fades and stabilizations (a `genmodels.gans.growth.Growth`, the component
ProGAN holds too, with its per-resolution minibatch, learning rates and Adam resets), the ProGAN discriminator, the
non-saturating logistic loss with R1 (gamma = 10), style-mixing regularization (90% of the batches
use two latents with one random crossover layer for the batch, Sec. 3.1), Adam (0.001, betas
(0, 0.99)) and a G EMA with a 10k-image half-life. The truncation trick (Sec. 2, App. B) moves w
toward the average w, tracked as an EMA (decay 0.995) in the generator's ``w_avg`` buffer, which
is in the state dict (checkpoints and exports carry it).

**StyleGAN2** (``architecture: stylegan2``, or the `StyleGAN2` class with its paper defaults):
modulated/demodulated convolutions instead of AdaIN (Sec. 2.2, grouped-convolution
implementation in `genmodels.nn.modulated_conv`), noise and bias outside the style block, a
"skip" generator summing upsampled RGB outputs of every resolution and a residual discriminator
(Sec. 4.1, Fig. 7), all resampling with the [1, 3, 3, 1] FIR filter (`genmodels.nn.upfirdn2d`:
transposed conv + filter up, filter + stride-2 conv down), no growing, and the official lazy
regularization (Sec. 3.1; training_loop.py): R1 every 16 iterations and path length (weight 2,
target a = EMA of path lengths with decay 0.01, batch halved, style mixing on; Sec. 3.2, Eq. 4)
every 4, each as its own optimizer step on k times the regularizer, with that player's Adam at
lr * c and betas ** c, c = k / (k + 1), in the official order of phases: Gmain, Greg, Dmain, Dreg
(the phase table of `genmodels.gans.adversarial`). ``lazy_regularization: fused`` adds the
k-weighted regularizer to the main loss instead (the paper's description, Adam unchanged).

**Classes.** Everything but the networks, the regularizers and growth is shared, in
`StyleBasedGAN`: the style-based G, style mixing, path length, class conditions, truncation, the
apps' W-space hooks and the images-seen clock of the EMA (`genmodels.gans.clock.ImageClock`).
`StyleGAN` adds growth by composition (``self.growth``, called from the loop's update hooks);
`StyleGAN2` holds no growth: its networks run at the final resolution, and it has the StyleGAN2
paper's defaults, so ``class_path: genmodels.StyleGAN2`` needs no other argument.
``StyleGAN(architecture: stylegan2, growing: false)`` still builds StyleGAN2's networks, on a
growth that stays at the final resolution.

Deviations from the official code: in StyleGAN, the leaky-ReLU gain sqrt(2) sits in the equalized
weight scale rather than after the activation (StyleGAN2 uses the official placement, which trains
its biases sqrt(2) times faster: ``scale_bias`` in `genmodels.nn.equalized`); the truncation trick applies
to all layers (the official StyleGAN cuts off after 8 layers); fakes are generated once per batch
for D and G (the official loop draws separate latents for each phase, so its Dmain judges fakes of
the G just updated; here D judges the batch's fakes, detached), and G's EMA is updated at the end
of the iteration, as in the official loop. ``resample: bilinear`` keeps the earlier bilinear/average-pooling resampling as an option.
Not implemented: the mixed-precision tricks of the official StyleGAN2 (fp16 top layers, conv
clamping) and the path-length metric's own training (PPL evaluation is in `genmodels.apps.style`).

Noise: `sample` draws fresh per-layer noise (from its ``generator``, so a seed repeats its images),
as the official metrics do (``noise_mode='random'``); ``sample_noise: const`` uses each layer's
fixed noise image instead. `synthesis` (the apps' W-space hook) uses the fixed noise by default, like
the official generate.py (``noise_mode='const'``), so an image is a function of w alone;
``noise_mode='per_batch'`` draws one noise image per layer for the whole call, shared by every
image of the batch: what the authors' PPL code does (NVlabs/stylegan re-runs the noise variables'
initializers per minibatch, stylegan2-ada-pytorch refills its ``noise_const`` buffers per batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.gans.clock import ImageClock
from genmodels.gans.gan import LatentGAN
from genmodels.gans.growth import Growth, GrowthSchedule, Phase, fade, judge_at, num_levels, optimizer_stage, to_resolution, upsample2
from genmodels.gans.progan import NO_FEATURES, Blur, ProGANDiscriminator, channels_at, refuse_spectral_norm, square_levels
from genmodels.nn.equalized import EqualizedConv2d
from genmodels.nn.mapping import MappingNetwork
from genmodels.conditioning import ClassLabels, ConditionError, make_condition
from genmodels.nn.modulated_conv import ModulatedConv2d
from genmodels.nn.noise import NoiseInjection
from genmodels.nn.normalization import AdaIN
from genmodels.nn.projection import DiscriminatorEpilogue
from genmodels.nn.upfirdn2d import DEFAULT_TAPS, fir_filter, upsample2d
from genmodels.errors import InvalidValue

__all__ = ["StyleBasedGAN", "StyleGAN", "StyleGAN2", "StyleNetworks", "SynthesisNoise", "StyleGenerator", "StyleGANSynthesis", "StyleGAN2Synthesis", "StyleGAN2Discriminator"]

NoiseMode = Literal["random", "const"]
# What synthesis accepts: the training/sampling modes, plus one draw per layer shared by the batch (PPL).
SynthesisNoise = Literal["random", "const", "per_batch"]
Resample = Literal["fir", "bilinear"]
Architecture = Literal["stylegan", "stylegan2"]


def mean_over_ranks(x: Tensor) -> Tensor:
    """``x`` averaged over the DDP processes (``x`` itself outside DDP).

    The running statistics (the average w, the path-length target a) then describe the global
    batch and are identical on every rank, so the checkpoint (rank 0's) restores every rank exactly.
    Every rank reaches these updates at the same iterations, as a collective requires.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        x = x.clone()
        dist.all_reduce(x)
        x = x / dist.get_world_size()
    return x


def _bilinear_up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class _NoisyActivation(nn.Module):
    """Noise (B in Fig. 1b) + bias + leaky ReLU; a fixed noise image serves ``noise_mode='const'``.

    ``per_batch`` draws one (1, 1, H, W) image from ``generator`` and gives it to every image of the
    batch, as the authors' PPL code does with its per-minibatch noise redraw.
    """

    def __init__(self, channels: int, resolution: int, noise_channels: int, gain: float = 1.0) -> None:
        super().__init__()
        self.noise = NoiseInjection(noise_channels)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution, generator=torch.Generator().manual_seed(resolution)))
        self.gain = gain

    def forward(self, x: Tensor, noise_mode: SynthesisNoise, generator: Optional[torch.Generator] = None) -> Tensor:
        if noise_mode == "const":
            noise: Optional[Tensor] = self.const_noise.expand(x.shape[0], -1, -1, -1).to(x.dtype)
        elif noise_mode == "per_batch":
            shared = torch.randn(1, 1, x.shape[2], x.shape[3], generator=generator, device=x.device)
            noise = shared.expand(x.shape[0], -1, -1, -1).to(x.dtype)
        elif generator is not None:  # seeded random noise: sample(n, generator=...) is reproducible
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], generator=generator, device=x.device).to(x.dtype)
        else:
            noise = None  # NoiseInjection draws it
        x = self.noise(x, noise) + self.bias.view(1, -1, 1, 1).to(x.dtype)
        return F.leaky_relu(x, 0.2) * self.gain


# ---------------------------------------------------------------------------------------------
# StyleGAN (2019) synthesis network: Fig. 1b


class _StyleLayer(nn.Module):
    """[upsample, 3x3 conv, blur,] noise, bias, leaky ReLU, AdaIN(w). Without conv: the constant input's layer.

    ``resample="fir"`` is the official G_style: nearest-neighbour x2, conv, then the [1, 2, 1] blur;
    ``"bilinear"`` resizes bilinearly before the conv and does not blur.
    """

    def __init__(
        self, in_channels: int, out_channels: int, resolution: int, w_dim: int, conv: bool = True, up: bool = False, resample: Resample = "fir"
    ) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if conv else None
        self.up, self.resample = up, resample
        self.blur = Blur((1.0, 2.0, 1.0)) if up and resample == "fir" else nn.Identity()
        self.act = _NoisyActivation(out_channels, resolution, out_channels)
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x: Tensor, w: Tensor, noise_mode: SynthesisNoise, generator: Optional[torch.Generator] = None) -> Tensor:
        if self.up:
            x = upsample2(x) if self.resample == "fir" else _bilinear_up(x)
        if self.conv is not None:
            x = self.blur(self.conv(x))
        return self.adain(self.act(x, noise_mode, generator), w)


class StyleGANSynthesis(nn.Module):
    """ws (N, num_ws, w_dim) -> image at the phase's resolution; two style layers per resolution."""

    def __init__(
        self, w_dim: int = 512, resolution: int = 1024, image_channels: int = 3, channel_base: int = 16384, channel_max: int = 512, resample: Resample = "fir"
    ) -> None:
        super().__init__()
        levels = num_levels(resolution)
        ch = [channels_at(4 * 2**k, channel_base, channel_max) for k in range(levels)]
        self.const = nn.Parameter(torch.ones(1, ch[0], 4, 4))  # the learned constant input
        self.layers = nn.ModuleList()
        for k in range(levels):
            res, c_in = 4 * 2**k, ch[max(k - 1, 0)]
            self.layers.append(_StyleLayer(c_in, ch[k], res, w_dim, conv=k > 0, up=k > 0, resample=resample))
            self.layers.append(_StyleLayer(ch[k], ch[k], res, w_dim))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, image_channels, 1, gain=1.0) for c in ch)
        self.num_ws = 2 * levels

    def forward(
        self, ws: Tensor, level: int, alpha: float = 1.0, noise_mode: SynthesisNoise = "random", generator: Optional[torch.Generator] = None
    ) -> Tensor:
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        previous = x
        for k in range(level + 1):
            previous = x
            x = self.layers[2 * k](x, ws[:, 2 * k], noise_mode, generator)
            x = self.layers[2 * k + 1](x, ws[:, 2 * k + 1], noise_mode, generator)
        current = self.to_rgb[level](x)
        if level == 0 or alpha >= 1.0:
            return current
        return fade(upsample2(self.to_rgb[level - 1](previous)), current, alpha)


# ---------------------------------------------------------------------------------------------
# StyleGAN2 synthesis network (skip architecture, Fig. 7b) and residual discriminator (Fig. 7c)


class _ModulatedLayer(nn.Module):
    """Modulated (and demodulated) 3x3 conv, then noise, bias, leaky ReLU * sqrt(2) (Fig. 2d)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, w_dim: int, up: bool = False, resample: Resample = "fir") -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True, up=up, resample=resample)
        self.act = _NoisyActivation(out_channels, resolution, 1, gain=math.sqrt(2))

    def forward(self, x: Tensor, w: Tensor, noise_mode: SynthesisNoise, generator: Optional[torch.Generator] = None) -> Tensor:
        return self.act(self.conv(x, w), noise_mode, generator)


class _ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, plus a bias."""

    def __init__(self, in_channels: int, image_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, image_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(image_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1)


class StyleGAN2Synthesis(nn.Module):
    """ws (N, num_ws, w_dim) -> image at the final resolution (StyleGAN2 does not grow)."""

    def __init__(
        self, w_dim: int = 512, resolution: int = 1024, image_channels: int = 3, channel_base: int = 32768, channel_max: int = 512, resample: Resample = "fir"
    ) -> None:
        super().__init__()
        levels = num_levels(resolution)
        ch = [channels_at(4 * 2**k, channel_base, channel_max) for k in range(levels)]
        self.const = nn.Parameter(torch.randn(1, ch[0], 4, 4))
        self.convs = nn.ModuleList([_ModulatedLayer(ch[0], ch[0], 4, w_dim)])
        for k in range(1, levels):
            res = 4 * 2**k
            self.convs.append(_ModulatedLayer(ch[k - 1], ch[k], res, w_dim, up=True, resample=resample))
            self.convs.append(_ModulatedLayer(ch[k], ch[k], res, w_dim))
        self.to_rgb = nn.ModuleList(_ToRGB(c, image_channels, w_dim) for c in ch)
        self.levels, self.num_ws, self.resample = levels, 2 * levels, resample
        self.register_buffer("resample_filter", fir_filter(DEFAULT_TAPS), persistent=False)

    def forward(
        self, ws: Tensor, level: Optional[int] = None, alpha: float = 1.0, noise_mode: SynthesisNoise = "random", generator: Optional[torch.Generator] = None
    ) -> Tensor:
        # Layer k's ws: 4x4 conv ws[0], its toRGB ws[1]; level k >= 1: convs ws[2k-1], ws[2k], toRGB ws[2k+1]
        # (each toRGB shares its w with the next level's first conv, as in the paper's code).
        x = self.convs[0](self.const.expand(ws.shape[0], -1, -1, -1), ws[:, 0], noise_mode, generator)
        image = self.to_rgb[0](x, ws[:, 1])
        for k in range(1, self.levels):
            x = self.convs[2 * k - 1](x, ws[:, 2 * k - 1], noise_mode, generator)
            x = self.convs[2 * k](x, ws[:, 2 * k], noise_mode, generator)
            image = self._upsample(image) + self.to_rgb[k](x, ws[:, 2 * k + 1])  # skip generator
        return image

    def _upsample(self, image: Tensor) -> Tensor:
        return upsample2d(image, self.resample_filter) if self.resample == "fir" else _bilinear_up(image)


class _ResidualBlock(nn.Module):
    """Two 3x3 convs and a 2x downsampling, plus a 1x1-conv skip; the sum scaled by 1/sqrt(2).

    ``resample="fir"`` (official): the second conv and the skip downsample with the [1, 3, 3, 1]
    FIR filter and stride 2; ``"bilinear"``: 2x2 average pooling after the conv and before the skip.
    """

    def __init__(self, in_channels: int, out_channels: int, resample: Resample = "fir") -> None:
        super().__init__()
        down = 2 if resample == "fir" else 1
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, scale_bias=True)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, down=down, scale_bias=True)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, gain=1.0, down=down)
        self.pool = nn.Identity() if down == 2 else nn.AvgPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        main = self.pool(F.leaky_relu(self.conv1(F.leaky_relu(self.conv0(x), 0.2)), 0.2))
        return (main + self.skip(self.pool(x))) / math.sqrt(2)


class StyleGAN2Discriminator(nn.Module):
    """image (N, C, r, r) at the final resolution [, c (N, num_classes)] -> one logit per image (residual D).

    With ``num_classes > 0`` the head is StyleGAN2-ADA's projection (`DiscriminatorEpilogue`, with a
    ``mapping_layers``-layer ``cmap`` network of c) and ``forward`` needs the one-hot c. Leaky-ReLU
    layers use StyleGAN2's bias placement (``scale_bias``, `genmodels.nn.equalized`).
    """

    def __init__(
        self, resolution: int = 1024, image_channels: int = 3, channel_base: int = 32768, channel_max: int = 512, mbstd_group_size: int = 4,
        resample: Resample = "fir", num_classes: int = 0, mapping_layers: int = 8,
    ) -> None:
        super().__init__()
        levels = num_levels(resolution)
        ch = [channels_at(4 * 2**k, channel_base, channel_max) for k in range(levels)]
        self.from_rgb = EqualizedConv2d(image_channels, ch[-1], 1, scale_bias=True)
        self.blocks = nn.Sequential(*[_ResidualBlock(ch[k], ch[k - 1], resample) for k in range(levels - 1, 0, -1)])
        self.head = DiscriminatorEpilogue(ch[0], num_classes, None, mbstd_group_size, mapping_layers)

    def forward(self, x: Tensor, level: Optional[int] = None, alpha: float = 1.0, c: Optional[Tensor] = None) -> Tensor:
        x = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        return self.head(x, c)


# ---------------------------------------------------------------------------------------------
# The generator: mapping + synthesis + the tracked average w


class StyleGenerator(nn.Module):
    """Mapping network, synthesis network and ``w_avg`` (the truncation trick's centre, an EMA of w)."""

    def __init__(self, mapping: MappingNetwork, synthesis: nn.Module, w_avg_decay: float = 0.995) -> None:
        super().__init__()
        self.mapping, self.synthesis = mapping, synthesis
        self.num_ws, self.w_avg_decay = synthesis.num_ws, w_avg_decay
        self.register_buffer("w_avg", torch.zeros(mapping.w_dim))

    def map(self, z: Tensor, track_w_avg: bool = False, c: Optional[Tensor] = None) -> Tensor:
        w = self.mapping(z) if c is None else self.mapping(z, c)
        if track_w_avg:
            with torch.no_grad():
                self.w_avg.lerp_(mean_over_ranks(w.detach().float().mean(0)), 1.0 - self.w_avg_decay)
        return w

    def broadcast(self, w: Tensor) -> Tensor:
        """w (N, d) -> ws (N, num_ws, d); ws pass through."""
        return w if w.dim() == 3 else w[:, None].expand(-1, self.num_ws, -1)

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """w_avg + psi (w - w_avg) (Sec. 2, App. B): psi = 1 leaves w, psi = 0 gives the average."""
        return self.w_avg.to(w.dtype) + psi * (w - self.w_avg.to(w.dtype))

    def forward(self, z: Tensor, level: int, alpha: float = 1.0, noise_mode: NoiseMode = "random") -> Tensor:
        return self.synthesis(self.broadcast(self.map(z)), level, alpha, noise_mode)


# ---------------------------------------------------------------------------------------------
# The systems: what StyleGAN and StyleGAN2 share, then StyleGAN (which composes growth) and
# StyleGAN2 (which does not grow)


@dataclass(frozen=True)
class StyleNetworks:
    """The settings of a style-based G (mapping + synthesis) and its D, built by `build`.

    Kept apart from the system so a growing model can set up its growth before the networks are
    installed (installing them asks the model for its critics, at its phase).
    """

    architecture: Architecture
    latent_dim: int
    w_dim: int
    mapping_layers: int
    mapping_lr_mul: float
    channel_base: Optional[int]
    channel_max: int
    resample: Resample
    w_avg_decay: float
    mbstd_group_size: int
    num_classes: int
    discriminator_mapping_layers: int

    def build(self, image_shape: tuple[int, int, int]) -> tuple["StyleGenerator", nn.Module]:
        c, size, _ = image_shape
        v1 = self.architecture == "stylegan"
        base = self.channel_base or (16384 if v1 else 32768)
        mapping = MappingNetwork(self.latent_dim, self.w_dim, self.mapping_layers, self.mapping_lr_mul, c_dim=self.num_classes, scale_bias=not v1)
        if v1:
            synthesis: nn.Module = StyleGANSynthesis(self.w_dim, size, c, base, self.channel_max, self.resample)
            blur = (1.0, 2.0, 1.0) if self.resample == "fir" else None
            discriminator: nn.Module = ProGANDiscriminator(size, c, base, self.channel_max, self.mbstd_group_size, blur_taps=blur)
        else:
            synthesis = StyleGAN2Synthesis(self.w_dim, size, c, base, self.channel_max, self.resample)
            discriminator = StyleGAN2Discriminator(
                size, c, base, self.channel_max, self.mbstd_group_size, self.resample, self.num_classes, self.discriminator_mapping_layers)
        return StyleGenerator(mapping, synthesis, self.w_avg_decay), discriminator


class StyleBasedGAN(LatentGAN):
    """What StyleGAN and StyleGAN2 share: the style-based G, style mixing, path length, class
    conditions, the truncation trick, the apps' W-space hooks and the images-seen clock of the EMA.

    Neither grows here: `StyleGAN` composes a `genmodels.gans.growth.Growth`, `StyleGAN2` trains at
    the final resolution. A subclass gives the networks' ``phase`` and installs them with
    ``self.build(*self.networks.build(self.image_shape))`` once its own state exists. The
    arguments are `StyleGAN`'s (see there); the defaults are the StyleGAN paper's.
    """

    refused_options = NO_FEATURES

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 1024, 1024),
        architecture: Architecture = "stylegan",
        latent_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_lr_mul: float = 0.01,
        channel_base: Optional[int] = None,
        channel_max: int = 512,
        resample: Resample = "fir",
        style_mixing: float = 0.9,
        w_avg_decay: float = 0.995,
        mbstd_group_size: int = 4,
        path_length_weight: float = 0.0,
        path_length_interval: int = 4,
        path_length_decay: float = 0.01,
        path_length_batch_shrink: int = 2,
        lazy_regularization: Literal["separate", "fused"] = "separate",
        loss: str = "nonsaturating",
        penalty: Optional[Literal["gp", "r1", "r2"]] = "r1",
        penalty_weight: float = 10.0,
        penalty_interval: int = 1,
        lr_g: float = 0.001,
        lr_d: float = 0.001,
        betas: tuple[float, float] = (0.0, 0.99),
        ema_decay: Optional[float] = 0.999,
        ema_kimg: Optional[float] = 10.0,
        ema_rampup: Optional[float] = None,
        sample_noise: NoiseMode = "random",
        num_classes: int = 0,
        discriminator_mapping_layers: int = 8,
        **kwargs: Any,
    ) -> None:
        if num_classes and architecture != "stylegan2":
            raise InvalidValue(f"model option num_classes={num_classes} needs architecture stylegan2 (StyleGAN2-ADA's conditioning)")
        _check_style_options(
            architecture, style_mixing, w_avg_decay, path_length_weight, path_length_interval, path_length_batch_shrink,
            resample, lazy_regularization, sample_noise,
        )
        square_levels(image_shape, type(self).__name__)
        super().__init__(
            image_shape, latent_dim, "normal", loss=loss, penalty=penalty, penalty_weight=penalty_weight,
            penalty_interval=penalty_interval, lazy_regularization=lazy_regularization, lr_g=lr_g, lr_d=lr_d, betas=betas,
            ema_decay=ema_decay, **kwargs,
        )
        self.save_hyperparameters()
        refuse_spectral_norm(self)
        # The EMA's half-life is counted in images (and growth, where a subclass grows, reads the same clock).
        self.clock = ImageClock(self, ema_kimg, ema_rampup)
        self.architecture, self.style_mixing, self.sample_noise = architecture, style_mixing, sample_noise
        self.path_length = (path_length_weight, path_length_interval, path_length_decay, path_length_batch_shrink)
        # The phases' order of each paper's official loop: StyleGAN's D, then G; StyleGAN2's
        # Gmain, Greg, Dmain, Dreg (stylegan2-ada training_loop.py).
        self.generator_first = architecture == "stylegan2"
        self.generator_regularization_interval = path_length_interval if path_length_weight > 0 else None
        self.networks = StyleNetworks(architecture, latent_dim, w_dim, mapping_layers, mapping_lr_mul, channel_base, channel_max,
                                      resample, w_avg_decay, mbstd_group_size, int(num_classes), discriminator_mapping_layers)
        # Class-conditional (StyleGAN2-ADA): one-hot c embedded in G's mapping, projection D with a cmap network.
        # (num_classes is an attribute only then: the apps treat a model with it as class-conditional.)
        self.conditioning: Optional[ClassLabels] = make_condition(num_classes) if num_classes else None  # type: ignore[assignment]
        if num_classes:
            self.num_classes = int(num_classes)

    # -- the phase the networks run at, and the images-seen clock ----------------------------------
    @property
    def phase(self) -> Phase:
        """The (level, alpha) the networks run at: the growth phase, or the final level at alpha 1."""
        raise NotImplementedError

    def critics(self) -> dict[str, Callable[..., Tensor]]:
        """D at the networks' phase (StyleGAN2's D ignores level and alpha)."""
        return {"d": partial(judge_at, self.discriminator, self.phase)}

    def add_images_seen(self, n: int) -> None:
        self.clock.advance(n)

    @property
    def _update_start_images(self) -> int:
        # The images seen when the update began (the EMA's ramp-up cap reads them); settable so a
        # test can pin the ramp without training.
        return self.clock.update_start

    @_update_start_images.setter
    def _update_start_images(self, images: int) -> None:
        self.clock.update_start = images

    def ema_beta(self, micro_batches: list[dict[str, Tensor]]) -> float:
        """Official EMA: a half-life of ``ema_kimg`` thousand images (see `ImageClock`), else the constant ``ema_decay``."""
        return self.clock.ema_beta(micro_batches, self.ema_decay)

    # -- latent-space hooks used by the apps (genmodels.apps.latent, W space) ------------------
    def mapping(self, z: Tensor, condition: Any = None) -> Tensor:
        """z (N, latent_dim) [and the class labels of a conditional model] -> w (N, w_dim) through the sampling (EMA) generator."""
        return self.sampling_generator.map(z, c=self._encoded_condition(condition, z.shape[0], z.device))

    # -- class conditioning (num_classes > 0): G and D take one-hot c, as the official code ------
    def _encoded_condition(self, condition: Any, n: int, device: Any, generator: Optional[torch.Generator] = None) -> Optional[Tensor]:
        if self.conditioning is None:
            if condition is not None:
                raise ConditionError(f"{type(self).__name__} is unconditional (num_classes 0); condition must be None")
            return None
        labels = self.conditioning.draw(n, generator, device) if condition is None else self.conditioning.check(condition, n, device)
        return self.conditioning.encode(labels)

    def condition(self, batch: dict[str, Tensor]) -> Optional[Tensor]:
        """The batch's one-hot labels (N, num_classes), or None for an unconditional model."""
        return None if self.conditioning is None else self.conditioning.encode(self.conditioning.from_batch(batch))

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.conditioning is not None and datamodule is not None:
            self.conditioning.check_datamodule(datamodule)

    @property
    def mean_w(self) -> Tensor:
        return self.sampling_generator.w_avg

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        return self.sampling_generator.truncate(w, psi)

    def synthesis(self, w: Tensor, noise_mode: SynthesisNoise = "const", generator: Optional[torch.Generator] = None) -> Tensor:
        """w (N, w_dim) or per-layer ws (N, num_ws, w_dim) -> images at the final resolution.

        Fixed noise by default, so an image is a function of w (the apps interpolate and edit in W);
        ``per_batch`` draws each layer's noise once from ``generator`` for all N images (PPL),
        ``random`` draws it per image.
        """
        g, phase = self.sampling_generator, self.phase
        return to_resolution(g.synthesis(g.broadcast(w), phase.level, phase.alpha, noise_mode, generator), self.image_shape[1])

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """Images of random z with per-layer noise drawn from ``generator`` (``sample_noise='random'``).

        A class-conditional model takes ``condition`` (an int or ``n`` labels; None draws them uniformly).
        """
        z = self.sample_latent(n, generator)
        c = self._encoded_condition(condition, n, z.device, generator)
        return self.synthesis(self.sampling_generator.map(z, c=c), self.sample_noise, generator)

    @property
    def num_ws(self) -> int:
        """Style inputs of the synthesis network (two per resolution; 18 at 1024x1024)."""
        return self.generator.num_ws

    @property
    def num_active_ws(self) -> int:
        """Style inputs the networks use at the current phase (two per resolution)."""
        return 2 * (self.phase.level + 1)

    # -- training -----------------------------------------------------------------------------
    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        n, phase = batch["image"].shape[0], self.phase
        ws = self.mixed_ws(n, generator, self.condition(batch))
        return self.generator.synthesis(ws, phase.level, phase.alpha, "random", generator)

    def mixed_ws(self, n: int, generator: Optional[torch.Generator] = None, c: Optional[Tensor] = None) -> Tensor:
        """ws for a training batch, with style-mixing regularization (Sec. 3.1).

        With probability ``style_mixing`` the batch takes w1 = f(z1) before a crossover layer
        drawn uniformly from [1, active layers) and w2 = f(z2) from it on; one draw for the whole
        batch, as the official code does (StyleGAN's G_style, StyleGAN2-ADA's loss.py).
        """
        g = self.generator
        ws = g.broadcast(g.map(self.sample_latent(n, generator), track_w_avg=self.training, c=c))
        if self.style_mixing <= 0 or not self.training:
            return ws
        w2 = g.broadcast(g.map(self.sample_latent(n, generator), c=c))
        cutoff = torch.randint(1, max(self.num_active_ws, 2), (), generator=generator, device=self.device)
        mix = torch.rand((), generator=generator, device=self.device) < self.style_mixing
        cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, g.num_ws))  # no mixing: past the last layer
        layer = torch.arange(g.num_ws, device=self.device)
        return torch.where((layer >= cutoff)[None, :, None], w2, ws)

    def generator_regularizer(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """weight x the path-length penalty on batch / shrink fresh latents (Sec. 3.2; the loop
        weights it by its interval and runs it fused or as its own phase)."""
        weight, _, _, shrink = self.path_length
        n = max(1, batch["image"].shape[0] // shrink)
        condition = self.condition(batch)
        penalty, lengths = self.path_length_penalty(n, None if condition is None else condition[:n])
        return weight * penalty, {"train/path_length_penalty": penalty.detach(), "train/path_length": lengths.mean().detach()}

    def path_length_penalty(self, n: int, c: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """E_w,y (||J_w^T y||_2 - a)^2 with y ~ N(0, I) / sqrt(H W) and a the EMA of the lengths (Eq. 4).

        The ws are those of a training batch, style mixing included (official loss.py).
        """
        _, _, decay, _ = self.path_length
        phase = self.phase
        with torch.autocast(device_type=self.device.type, enabled=False):
            ws = self.mixed_ws(n, c=c).float()
            ws = ws.detach().requires_grad_(True) if not ws.requires_grad else ws
            images = self.generator.synthesis(ws, phase.level, phase.alpha).float()
            y = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
            (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
            lengths = grad.pow(2).sum(dim=2).mean(dim=1).sqrt()
            target = self.path_length_mean.lerp(mean_over_ranks(lengths.detach().mean()), decay)
            self.path_length_mean.copy_(target)
            return (lengths - target).pow(2).mean(), lengths

    # -- optimizers -----------------------------------------------------------------------------
    def lazy_ratio(self, player: str) -> float:
        """c = k / (k + 1) for a player regularized in separate phases every k iterations, else 1.

        StyleGAN2 with separate phases keeps c even when that regularizer's weight is 0, as the
        official loop does (train.py sets G_reg_interval 4 and D_reg_interval 16 whatever pl_weight
        and r1_gamma are, e.g. for --cfg cifar's pl_weight 0): its Adam runs at lr * c, betas ** c.
        """
        k = self.penalty_interval if player == "d" else self.path_length[1]
        official = self.architecture == "stylegan2" and self.lazy_regularization == "separate"
        if official and k > 1 and (player == "g" or self.penalty is not None):
            return k / (k + 1)
        return super().lazy_ratio(player)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size model (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32,
                    channel_max=8, penalty_interval=2, path_length_interval=2)


#: StyleGAN's official per-resolution learning rates (train.py, ``sched.G_lrate_dict`` = ``D_lrate_dict``).
STYLEGAN_LR_BY_RESOLUTION: dict[int, float] = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}


class StyleGAN(StyleBasedGAN):
    """StyleGAN, or StyleGAN2's networks with ``architecture='stylegan2'`` (see the module docstring).

    StyleGAN grows: ``self.growth`` (`genmodels.gans.growth.Growth`, on the EMA's images-seen
    clock) fixes each update's phase, brings real images to its resolution, runs D at it and applies
    the official per-resolution minibatch, learning rates and Adam resets; the hooks below call it.
    With ``growing: false`` the phase stays at the final resolution.

    Args:
        image_shape: ``(C, H, W)``, square, H a power of 2 (1024 for FFHQ in the papers).
        architecture: ``stylegan`` (AdaIN, growing, ProGAN D) or ``stylegan2`` (modulated convs,
            skip G, residual D, no growing; `StyleGAN2` is that model with its paper's defaults).
        growing, fade_images, stabilize_images, initial_resolution: progressive growing (on, from
            8x8, 600k images per fade and per stabilization; refused with architecture stylegan2).
        minibatch_schedule, reset_optimizer_on_growth: the official per-resolution minibatch and
            Adam resets (see `genmodels.gans.growth.Growth`).
        lr_schedule_by_resolution: StyleGAN's official per-resolution rates
            ({128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}; other resolutions use lr_g / lr_d).
        latent_dim: size of z (512). w_dim: size of w (512).
        mapping_layers, mapping_lr_mul: the mapping network (8 layers, 0.01).
        channel_base, channel_max: feature maps min(channel_base / r, channel_max); null picks
            16384 (StyleGAN) or 32768 (StyleGAN2), max 512.
        resample: ``fir`` (official: StyleGAN nearest + [1, 2, 1] blur, StyleGAN2 [1, 3, 3, 1]
            upfirdn2d) or ``bilinear`` (bilinear resizing / average pooling).
        style_mixing: probability that a batch mixes two latents at one random crossover layer (0.9).
        w_avg_decay: decay of the tracked average w (0.995).
        mbstd_group_size: D's minibatch-stddev group size (4).
        path_length_weight: StyleGAN2's path-length regularizer weight (0 here; StyleGAN2: 2).
        path_length_interval: lazy interval of the path-length regularizer (4).
        path_length_decay: decay of the path-length EMA a (0.01).
        path_length_batch_shrink: the regularizer's batch is the batch divided by this (2).
        lazy_regularization: ``separate`` (official StyleGAN2 training loop): with an interval k > 1
            a regularizer is its own optimizer step every k iterations on k times its value, and
            that player's Adam runs at lr * c with betas ** c, c = k / (k + 1). ``fused``: the
            k-weighted regularizer is added to the main loss every k iterations, Adam unchanged.
        loss, penalty, penalty_weight, penalty_interval: non-saturating loss with R1, gamma = 10,
            every iteration (StyleGAN2: every 16).
        lr_g, lr_d, betas: Adam 0.001 (StyleGAN2: 0.002), (0, 0.99).
        ema_decay, ema_kimg, ema_rampup: G EMA for sampling with a half-life of ``ema_kimg``
            thousand images (10), capped at ``ema_rampup`` times the images seen when set
            (StyleGAN2-ADA); ``ema_kimg: null``: the constant ``ema_decay`` per update;
            ``ema_decay: null`` disables the EMA.
        sample_noise: noise of `sample`: ``random`` (official metrics) or ``const`` (each layer's
            fixed noise image; `synthesis`, used by the apps, always uses it, like the official
            generate.py).
        num_classes: class-conditional StyleGAN2 (StyleGAN2-ADA's CIFAR-10 model) when > 0: one-hot
            labels embedded in G's mapping network and a projection D (`genmodels.nn.projection`).
        discriminator_mapping_layers: layers of the conditional D's ``cmap`` mapping network (8, official).
        **kwargs: the style options above and the training options of `AdversarialModel`.

    Example:
        >>> model = StyleGAN(**StyleGAN.tiny())
        >>> model.sample(2).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 1024, 1024),
        architecture: Architecture = "stylegan",
        growing: bool = True,
        fade_images: int = 600_000,
        stabilize_images: int = 600_000,
        initial_resolution: int = 8,
        minibatch_schedule: Optional[dict[int, int]] = None,
        lr_schedule_by_resolution: Optional[dict[int, float]] = None,
        reset_optimizer_on_growth: bool = True,
        **kwargs: Any,
    ) -> None:
        if architecture == "stylegan2" and growing:
            raise InvalidValue(f"model option growing={growing!r} is invalid: must be false with architecture stylegan2 "
                               "(its skip G and residual D replace growing)")
        if lr_schedule_by_resolution is None and architecture == "stylegan" and growing:
            lr_schedule_by_resolution = dict(STYLEGAN_LR_BY_RESOLUTION)
        # The schedule first: a bad image size or phase length is refused before anything is built.
        levels = square_levels(image_shape, type(self).__name__)
        schedule = GrowthSchedule(levels - 1, fade_images, stabilize_images, growing, num_levels(initial_resolution if growing else 4) - 1)
        super().__init__(image_shape, architecture, **kwargs)
        self.growth = Growth(self, self.clock, schedule, minibatch_schedule, lr_schedule_by_resolution, reset_optimizer_on_growth)
        self.register_buffer("path_length_mean", torch.zeros(()))  # a in Eq. 4, saved in checkpoints
        self.build(*self.networks.build(self.image_shape))

    # -- growth: the loop's hooks call the component ---------------------------------------------
    @property
    def phase(self) -> Phase:
        """The growth phase of the update in progress (else at the images seen so far)."""
        return self.growth.phase

    @property
    def schedule(self) -> GrowthSchedule:
        return self.growth.schedule

    def learning_rates(self, resolution: int) -> tuple[float, float]:
        return self.growth.learning_rates(resolution)

    def _micro_batches_per_update(self, resolution: int, batch_size: int) -> int:
        # Kept under its earlier name: tests/genmodels/gans/test_stylegan.py re-derives the official preset through it.
        return self.growth.micro_batches_per_update(resolution, batch_size)

    def configure_optimizers(self) -> Any:
        return self.growth.configure_optimizers(super().configure_optimizers())

    def begin_update(self, batch: dict[str, Tensor]) -> None:
        self.growth.begin_update(batch)

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.growth.prepare_batch(batch)

    def end_update(self, micro_batches: list[dict[str, Tensor]], logs: dict[str, Tensor]) -> None:
        self.growth.end_update(micro_batches, logs)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        return dict(super().tiny(), fade_images=8, stabilize_images=8)


class StyleGAN2(StyleBasedGAN):
    """StyleGAN2 with the paper's defaults (config F): modulated convs, skip G, residual D, no
    growing, lazy R1 (gamma 10 every 16 iterations), path-length regularization (weight 2, every 4
    iterations), Adam 0.002 with betas (0, 0.99), style mixing 0.9.

    It does not grow, so it holds no growth: its networks run at the final resolution (level L,
    alpha 1), and its only clock is the EMA's images seen (``ema_kimg``, ``ema_rampup``).

    Args:
        architecture: ``stylegan2``; ``stylegan`` trains StyleGAN's networks without growing.
        growing: must be false (the skip G and residual D replace growing; `StyleGAN` grows).
        fade_images, stabilize_images, initial_resolution, reset_optimizer_on_growth: accepted
            and unused, so that the checkpoints and run configs written when StyleGAN2 carried
            StyleGAN's growth still load.
        lr_schedule_by_resolution: only its entry at the image size counts (the one resolution
            StyleGAN2 trains at): it replaces ``lr_g`` and ``lr_d``.
        minibatch_schedule: null (run configs hold it); images per update are the loader's
            ``batch_size`` times ``accumulate_grad_batches``.
        path_length_weight, penalty_interval, lr_g, lr_d: StyleGAN2's defaults (2, 16, 0.002, 0.002).
        **kwargs: the options of `StyleGAN` but growth's, and the training options of `AdversarialModel`.

    Example:
        >>> model = StyleGAN2(**StyleGAN2.tiny())
        >>> model.sample(2).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 1024, 1024),
        architecture: Architecture = "stylegan2",
        growing: bool = False,
        path_length_weight: float = 2.0,
        penalty_interval: int = 16,
        lr_g: float = 0.002,
        lr_d: float = 0.002,
        fade_images: int = 600_000,
        stabilize_images: int = 600_000,
        initial_resolution: int = 8,
        lr_schedule_by_resolution: Optional[dict[int, float]] = None,
        minibatch_schedule: Optional[dict[int, int]] = None,
        reset_optimizer_on_growth: bool = True,
        **kwargs: Any,
    ) -> None:
        if growing:
            raise InvalidValue(f"model option growing={growing!r} is invalid: StyleGAN2 does not grow (genmodels.StyleGAN does)")
        if minibatch_schedule:
            raise InvalidValue("model option minibatch_schedule is invalid for StyleGAN2, which trains at one resolution: "
                               "set data.init_args.batch_size (and accumulate_grad_batches) instead")
        rate = (lr_schedule_by_resolution or {}).get(image_shape[1])
        if rate is not None:
            lr_g = lr_d = float(rate)
        super().__init__(image_shape, architecture, path_length_weight=path_length_weight, penalty_interval=penalty_interval,
                         lr_g=lr_g, lr_d=lr_d, **kwargs)
        self.final_phase = Phase(num_levels(self.image_shape[1]) - 1, 1.0)
        # Not growth's: the key StyleGAN2 checkpoints have always had (they were written when StyleGAN2
        # inherited growth), holding the stage of the final resolution, which never changes.
        self.register_buffer("optimizer_stage", torch.full((), optimizer_stage(self.final_phase), dtype=torch.int64))
        self.register_load_state_dict_post_hook(_optional_optimizer_stage)
        self.register_buffer("path_length_mean", torch.zeros(()))  # a in Eq. 4, saved in checkpoints
        self.build(*self.networks.build(self.image_shape))

    @property
    def phase(self) -> Phase:
        return self.final_phase

    def begin_update(self, batch: dict[str, Tensor]) -> None:
        self.clock.begin_update()

    def end_update(self, micro_batches: list[dict[str, Tensor]], logs: dict[str, Tensor]) -> None:
        self.clock.advance(self.clock.images_in(micro_batches))


def _optional_optimizer_stage(module: nn.Module, incompatible_keys: Any) -> None:
    """Checkpoints written before ``optimizer_stage`` existed load too (the buffer keeps its constant)."""
    for key in [k for k in incompatible_keys.missing_keys if k == "optimizer_stage" or k.endswith(".optimizer_stage")]:
        incompatible_keys.missing_keys.remove(key)


def _check_style_options(
    architecture: str, style_mixing: float, w_avg_decay: float, pl_weight: float, pl_interval: int, pl_shrink: int,
    resample: str, lazy: str, sample_noise: str,
) -> None:
    checks = [
        ("architecture", architecture in ("stylegan", "stylegan2"), architecture, "'stylegan' or 'stylegan2'"),
        ("style_mixing", 0.0 <= style_mixing <= 1.0, style_mixing, "in [0, 1]"),
        ("w_avg_decay", 0.0 <= w_avg_decay < 1.0, w_avg_decay, "in [0, 1)"),
        ("path_length_weight", pl_weight >= 0, pl_weight, ">= 0"),
        ("path_length_interval", pl_interval >= 1, pl_interval, ">= 1"),
        ("path_length_batch_shrink", pl_shrink >= 1, pl_shrink, ">= 1"),
        ("resample", resample in ("fir", "bilinear"), resample, "'fir' or 'bilinear'"),
        ("lazy_regularization", lazy in ("separate", "fused"), lazy, "'separate' or 'fused'"),
        ("sample_noise", sample_noise in ("random", "const"), sample_noise, "'random' or 'const'"),
    ]
    for key, ok, value, allowed in checks:
        if not ok:
            raise InvalidValue(f"model option {key}={value!r} is invalid: must be {allowed}")
