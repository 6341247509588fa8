"""Pix2Pix: image-to-image translation with conditional adversarial networks
(Isola, Zhu, Zhou & Efros 2017, arXiv:1611.07004).

G maps a source image x to a target y; a conditional PatchGAN D sees the pair (x, y) and scores
every 70x70 patch as real or fake. The objective (Eq. 4) is

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G),    lambda = 100,

with L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x, z)))] (Eq. 1), G trained to maximize
log D(x, G(x, z)) (the non-saturating loss, ``loss: nonsaturating``; any loss of
`genmodels.gans.losses` can be chosen) and L_L1 = E||y - G(x, z)||_1 (Eq. 3). D's objective is divided
by 2 "to slow down the rate at which D learns relative to G" (Sec. 3.3). The noise z is dropout
only, in the first three decoder layers, kept on at test time, and BatchNorm uses the statistics of
the current batch (`genmodels.nn.unet`). Generator: U-Net-256 (`UNetGenerator`, depth from the
image size); discriminator: 70x70 PatchGAN (`PatchGANDiscriminator`) on concat(x, y). Adam,
lr 2e-4, beta1 0.5; batch 1 (the paper's choice for most datasets); weights from N(0, 0.02).

Not implemented: the encoder-decoder ablation, the 1x1 PixelGAN / 286x286 ImageGAN variants
(``n_layers_d`` 0 / 6 come close), the L1-only and GAN-only ablations (set ``lambda_l1`` or use a
huge one), and the semantic-segmentation FCN-score evaluation.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
from torch import Tensor, nn

from genmodels.gans.adversarial import Outputs
from genmodels.gans.translation import TranslationModel, d_loss_scale, g_loss_scale
from genmodels.nn.patchgan import PatchGANDiscriminator
from genmodels.nn.unet import UNetGenerator, unet_depth
from genmodels.errors import InvalidValue

__all__ = ["Pix2Pix", "ConditionalPatchGAN"]


class ConditionalPatchGAN(nn.Module):
    """D(x, y): the PatchGAN on the source and the (real or generated) target stacked as channels."""

    def __init__(self, source_channels: int, target_channels: int, ndf: int, n_layers: int, norm: str) -> None:
        super().__init__()
        self.net = PatchGANDiscriminator(source_channels + target_channels, ndf, n_layers, norm)  # type: ignore[arg-type]

    def forward(self, target: Tensor, source: Tensor) -> Tensor:
        """(n, 1, H', W') patch logits."""
        return self.net(torch.cat([source, target.to(source.dtype)], dim=1))


class Pix2Pix(TranslationModel):
    """Pix2Pix: U-Net G, conditional 70x70 PatchGAN D, cGAN + 100 * L1.

    Batches: ``{"A": source, "B": target, "image": target}`` in [-1, 1] (`datamodules.PairedImageDataModule`).
    ``sample(n, condition=sources)`` translates source images (see `genmodels.gans.translation`).

    Args:
        image_shape: ``(C, H, W)`` of the targets, linked from the datamodule; H = W a power of two.
        source_channels: channels of the sources (default: those of the targets).
        ngf, ndf: first-layer channels of G and D (64).
        num_downs: U-Net levels; default log2(H), i.e. 8 (U-Net-256) at 256 px.
        n_layers_d: PatchGAN stride-2 layers (3: 70x70 patches).
        norm: ``batch`` (the paper; batch statistics also at test time) or ``instance``.
        dropout: rate of the decoder's dropout layers (0.5).
        dropout_at_test: keep dropout on at test time (the paper's noise z).
        dropout_layers: ``junyanz`` (the cited code's layers: decoder 2-4 of U-Net-256) or ``paper``
            (decoder 1-3, Appendix 6.1.1); see `UNetGenerator`.
        lambda_l1: weight of the L1 term (100).
        num_examples, fid_extractor, fid_weights: see `TranslationModel`.
        **kwargs: options of `AdversarialModel`: ``loss`` (``nonsaturating`` = the paper's
            log-loss), ``lr_g``, ``lr_d`` (2e-4), ``betas`` (0.5, 0.999), LR schedule, EMA, ...

    Example:
        >>> model = Pix2Pix(**Pix2Pix.tiny())  # 32x32 RGB
        >>> model.sample(2, condition=torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    refused_options = {"feature_matching": "its PatchGAN has no features()"}

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 256, 256),
        source_channels: Optional[int] = None,
        ngf: int = 64,
        ndf: int = 64,
        num_downs: Optional[int] = None,
        n_layers_d: int = 3,
        norm: Literal["batch", "instance"] = "batch",
        dropout: float = 0.5,
        dropout_at_test: bool = True,
        dropout_layers: Literal["junyanz", "paper"] = "junyanz",
        lambda_l1: float = 100.0,
        num_examples: int = 8,
        fid_extractor: Optional[str] = None,
        fid_weights: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        channels, height, width = image_shape
        if height != width:
            raise InvalidValue(f"Pix2Pix trains on square crops, got image_shape {tuple(image_shape)}")
        depth = num_downs if num_downs is not None else unet_depth(height)
        if height % 2**depth:
            raise InvalidValue(f"image size {height} is not divisible by 2^num_downs = {2**depth}")
        if lambda_l1 < 0 or not 0 <= dropout < 1:
            raise InvalidValue(f"lambda_l1 must be >= 0 and dropout in [0, 1), got {lambda_l1} and {dropout}")
        super().__init__(image_shape, num_examples, fid_extractor, fid_weights, **kwargs)
        self.save_hyperparameters()
        self.source_channels = source_channels or channels
        self.lambda_l1 = lambda_l1
        self.build(
            UNetGenerator(self.source_channels, channels, depth, ngf, norm, dropout, dropout_at_test, dropout_layers),
            ConditionalPatchGAN(self.source_channels, channels, ndf, n_layers_d, norm),
        )

    # -- AdversarialModel hooks: the paper's objective ------------------------------------------
    def condition(self, batch: dict[str, Tensor]) -> Tensor:
        """D is conditioned on the source image x (Eq. 1)."""
        return batch["A"]

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        """G(x, z): z is the dropout of the trained (not averaged) generator."""
        return self.generator(batch["A"])

    def discriminator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """L_cGAN for D on (x, y) and (x, G(x, z)), divided by 2 (Sec. 3.3)."""
        return d_loss_scale(self.loss_name) * super().discriminator_term(outputs)

    def generator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """G's side of L_cGAN (Eq. 1)."""
        return g_loss_scale(self.loss_name) * super().generator_term(outputs)

    def generator_extras(self, batch: dict[str, Tensor], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 4's lambda * L_L1, with L_L1 = E||y - G(x, z)||_1 (Eq. 3)."""
        l1 = (batch["B"] - fake).abs().mean()
        return self.lambda_l1 * l1, {"train/l1": l1.detach()}

    # -- translation ----------------------------------------------------------------------------
    def translate(self, source: Tensor, direction: str = "AtoB") -> Tensor:
        if direction != "AtoB":
            raise InvalidValue("Pix2Pix translates only in the direction it was trained in (the datamodule's "
                             "`direction` chose it); train another model for the other one")
        return self.sampling_generator(source)

    @property
    def input_multiple(self) -> int:
        """2^num_downs: the U-Net halves the size num_downs times."""
        return 2**self.generator.num_downs

    def _source_channels(self) -> int:
        return self.source_channels

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size Pix2Pix (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(3, 32, 32), ngf=4, ndf=4)
