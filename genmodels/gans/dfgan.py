"""DF-GAN: a simple and effective baseline for text-to-image synthesis (Tao et al., CVPR 2022, arXiv:2008.05865).

Which version: the code of the CVPR 2022 paper, the one on the master branch of tobran/DF-GAN
since June 2022 (code/models/GAN.py, code/lib/modules.py, code/src/train.py, code/cfg/bird.yml).
The 2020 arXiv v1/v2 code in that repository's history differs: a G block at 4x4 before the first
upsampling, fusion conditioned on the sentence only with 256-unit MLPs, learnable residual scales
in G, D channels up to 16 ndf, MA-GP as a second D step, batch 24 and 600 epochs.

One generator/discriminator pair makes the full-resolution image directly (no stack of stages):

- the generator maps z (100) through a fully connected layer to 4x4 x 8 ngf features, then
  G blocks, each: x2 nearest upsampling and a residual block whose two 3x3 convolutions are each
  preceded by a Deep text-image Fusion Block (DFBlock, Sec. 3.3): two affine transformations
  gamma(y) * h + beta(y), gamma and beta predicted by two-layer MLPs (Linear-ReLU-Linear, hidden
  width = the channels), each followed by a LeakyReLU 0.2 (the paper's figure shows ReLU), with
  the condition y = [z, sentence embedding] (NetG concatenates the noise and the text). Channels
  are ngf * min(8, S / resolution): 8 ngf up to 32x32, then 4, 2, 1 ngf at 64, 128, 256;
- the discriminator ("one-way output", Sec. 3.2) is a 3x3 convolution and residual downsampling
  blocks to 4x4 (channels ndf * min(8, 2^k) after k blocks; each adds its residual branch scaled by
  a learnable scalar from 0); the sentence embedding is replicated over the 4x4 map, concatenated,
  and a 3x3 convolution (2 ndf), LeakyReLU and a 4x4 convolution give one score (NetD + NetC);
- the objective is the hinge loss with the matching-aware pairs of `TextToImageGAN`
  (errD_real + (errD_fake + errD_mis) / 2; the mismatched pairs are the code's, image i + 1 with
  caption i) plus, in the same D step, the Matching-Aware zero-centred Gradient Penalty (MA-GP,
  Sec. 3.2, Eq. 2-3): k * E[||(grad_x D(x, e), grad_e D(x, e))||^p] on real images with their own
  text, k = 2, p = 6. Adam with lr 1e-4 for G and 4e-4 for D, betas (0, 0.9), batch 32.

Next to `genmodels.AttnGAN`: one generator and one discriminator, no DAMSM loss in G's step, and
the stronger model (CUB FID 14.81 vs AttnGAN's 23.98 in the DF-GAN paper's Table 1) with the same
frozen DAMSM text encoder.

Not implemented: the truncated noise (trunc_rate 0.88) the authors' test code samples with;
``sample`` draws z ~ N(0, I). EMA of G (not in the paper) is the base's ``ema_decay`` option.
For S < 32 (the CPU-sized shapes runs) the fully connected layer gives ngf * S / 4 channels, so
that every resolution keeps the rule above.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.gans.text_to_image import TextToImageGAN
from genmodels.errors import InvalidValue

__all__ = ["DFGAN", "DFGenerator", "DFDiscriminator", "Affine", "matching_aware_gradient_penalty"]


class Affine(nn.Module):
    """gamma(y) * h + beta(y), each from a Linear-ReLU-Linear MLP of the condition y (hidden width = channels)."""

    def __init__(self, condition_dim: int, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(condition_dim, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels))
        self.beta = nn.Sequential(nn.Linear(condition_dim, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels))
        # Start as the identity: gamma = 1, beta = 0.
        nn.init.zeros_(self.gamma[2].weight), nn.init.ones_(self.gamma[2].bias)
        nn.init.zeros_(self.beta[2].weight), nn.init.zeros_(self.beta[2].bias)

    def forward(self, h: Tensor, condition: Tensor) -> Tensor:
        return self.gamma(condition)[:, :, None, None] * h + self.beta(condition)[:, :, None, None]


class DFBlock(nn.Module):
    """Affine, LeakyReLU, Affine, LeakyReLU (Sec. 3.3, Fig. 3; DFBLK)."""

    def __init__(self, condition_dim: int, channels: int) -> None:
        super().__init__()
        self.affine1, self.affine2 = Affine(condition_dim, channels), Affine(condition_dim, channels)

    def forward(self, h: Tensor, condition: Tensor) -> Tensor:
        h = F.leaky_relu(self.affine1(h, condition), 0.2)
        return F.leaky_relu(self.affine2(h, condition), 0.2)


class UPBlock(nn.Module):
    """x2 upsampling, then DFBlock, conv3x3, DFBlock, conv3x3 plus a (1x1 when the width changes) shortcut (G_Block)."""

    def __init__(self, condition_dim: int, cin: int, cout: int) -> None:
        super().__init__()
        self.fuse1, self.conv1 = DFBlock(condition_dim, cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.fuse2, self.conv2 = DFBlock(condition_dim, cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, h: Tensor, condition: Tensor) -> Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        return self.shortcut(h) + self.conv2(self.fuse2(self.conv1(self.fuse1(h, condition)), condition))


def _doublings(image_size: int) -> int:
    steps = (image_size // 4).bit_length() - 1
    if image_size < 8 or 4 * 2**steps != image_size:
        raise InvalidValue(f"DF-GAN image size must be 4 * 2^k >= 8, got {image_size}")
    return steps


class DFGenerator(nn.Module):
    """(z, t) -> image: FC to 4x4, then one UPBlock per doubling, all fused with y = [z, t] (NetG)."""

    def __init__(self, image_size: int, latent_dim: int, text_dim: int, ngf: int) -> None:
        super().__init__()
        steps = _doublings(image_size)
        widths = [ngf * min(8, 2 ** (steps - k)) for k in range(steps + 1)]  # at 4x4, 8x8, ..., S
        self.fc = nn.Linear(latent_dim, widths[0] * 16)
        self.blocks = nn.ModuleList([UPBlock(latent_dim + text_dim, cin, cout) for cin, cout in zip(widths, widths[1:])])
        self.to_image = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(widths[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, z: Tensor, text: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], -1, 4, 4)
        condition = torch.cat([z, text.to(h.dtype)], dim=1)
        for block in self.blocks:
            h = block(h, condition)
        return self.to_image(h)


class DownBlock(nn.Module):
    """Residual downsampling: conv4x4/2, LReLU, conv3x3, LReLU (scaled); shortcut 1x1 conv + 2x2 average pool."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                                      nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.LeakyReLU(0.2, inplace=True))
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.scale = nn.Parameter(torch.zeros(1))  # learnable residual scale, from 0 (D_Block's gamma)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.shortcut(x), 2) + self.scale * self.residual(x)


class DFDiscriminator(nn.Module):
    """Image -> conv3x3 -> DownBlocks to 4x4 (NetD); [features, t replicated] -> conv3x3, LReLU, conv4x4 (NetC)."""

    def __init__(self, image_size: int, text_dim: int, ndf: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, ndf, 3, 1, 1)
        widths = [ndf * min(8, 2**k) for k in range(_doublings(image_size) + 1)]
        self.blocks = nn.Sequential(*[DownBlock(cin, cout) for cin, cout in zip(widths, widths[1:])])
        self.joint = nn.Sequential(nn.Conv2d(widths[-1] + text_dim, 2 * ndf, 3, 1, 1, bias=False),
                                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(2 * ndf, 1, 4, bias=False))

    def forward(self, images: Tensor, text: Tensor) -> Tensor:
        """One score per (image, text) pair, (B,)."""
        h = self.blocks(self.stem(images))
        t = text.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])
        return self.joint(torch.cat([h, t], dim=1)).flatten()


def matching_aware_gradient_penalty(discriminator: nn.Module, real: Tensor, text: Tensor, k: float = 2.0, p: float = 6.0) -> Tensor:
    """MA-GP (Eq. 2-3): k * E[||(grad_x D(x, e), grad_e D(x, e))||^p] on real images and their text, in fp32."""
    with torch.autocast(device_type=real.device.type, enabled=False):
        real = real.detach().float().requires_grad_(True)
        text = text.detach().float().requires_grad_(True)
        out = discriminator(real, text)
        grad_x, grad_e = torch.autograd.grad(out.sum(), (real, text), create_graph=True)
        norm = torch.cat([grad_x.flatten(1), grad_e.flatten(1)], dim=1).norm(dim=1)
        return k * norm.pow(p).mean()


class DFGAN(TextToImageGAN):
    """DF-GAN (see the module docstring).

    Args:
        image_shape: ``(3, S, S)``, S = 4 * 2^k (256 in the paper), linked from the datamodule.
        vocab: linked from the datamodule.
        latent_dim: size of z (100).
        ngf: G's base width (32, the code's nf: 8 ngf = 256 channels at 4x4).
        ndf: D's base width (32; 8 ndf at 4x4).
        ma_gp_weight: k of MA-GP (2).
        ma_gp_power: p of MA-GP (6).
        text_dim, word_embedding_dim, text_encoder, damsm_ckpt, max_length, caption_bank: of `TextToImageGAN`.
        **kwargs: training options of `AdversarialModel` (defaults here: hinge loss, lr_g 1e-4,
            lr_d 4e-4, betas (0, 0.9), the code's).

    Example:
        >>> vocab = ["<pad>", "<unk>", "a", "blue", "flower"]
        >>> model = DFGAN(**DFGAN.tiny(), vocab=vocab).eval()
        >>> model.sample(2, condition=["a blue flower", "a flower"]).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 256, 256),
        vocab: Optional[Sequence[str]] = None,
        latent_dim: int = 100,
        ngf: int = 32,
        ndf: int = 32,
        ma_gp_weight: float = 2.0,
        ma_gp_power: float = 6.0,
        **kwargs: Any,
    ) -> None:
        if image_shape[0] != 3 or image_shape[1] != image_shape[2]:
            raise InvalidValue(f"DF-GAN makes square RGB images, got image_shape {tuple(image_shape)}")
        kwargs = {"loss": "hinge", "lr_g": 1e-4, "lr_d": 4e-4, "betas": (0.0, 0.9), **kwargs}
        super().__init__(image_shape, vocab, latent_dim, **kwargs)  # text options in kwargs; hparams saved there
        self.ma_gp_weight, self.ma_gp_power = ma_gp_weight, ma_gp_power
        size = self.image_shape[1]
        self.build(DFGenerator(size, latent_dim, self.text_dim, ngf), DFDiscriminator(size, self.text_dim, ndf))

    def generate(self, batch: dict[str, Any], generator: Optional[torch.Generator] = None) -> Tensor:
        text = self.condition(batch)
        return self.generator(self.sample_latent(text.shape[0], generator), text)

    def discriminator_extras(self, batch: dict[str, Any], fake: Tensor) -> tuple[Any, dict[str, Tensor]]:
        """MA-GP on (real image, its text), beside the matching-aware hinge loss (`TextToImageGAN`)."""
        if self.ma_gp_weight <= 0:
            return 0.0, {}
        penalty = matching_aware_gradient_penalty(self.discriminator, batch["image"], self.condition(batch),
                                                  self.ma_gp_weight, self.ma_gp_power)
        return penalty, {"train/ma_gp": penalty.detach()}

    @torch.no_grad()
    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` images for captions (see `TextToImageGAN`), ``(n, 3, S, S)`` in [-1, 1]."""
        tokens, lengths = self.caption_tokens(n, condition, generator)
        text = self.encode_text(tokens, lengths)[1]
        return self.sampling_generator(self.sample_latent(n, generator), text)

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size DFGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(3, 16, 16), ngf=2, ndf=2, latent_dim=8, text_dim=16, word_embedding_dim=8, damsm_ckpt=None)
