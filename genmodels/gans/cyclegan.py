"""CycleGAN: unpaired image-to-image translation with cycle-consistent adversarial networks
(Zhu, Park, Isola & Efros 2017, arXiv:1703.10593).

Two generators, G: X -> Y and F: Y -> X (X = domain A, Y = domain B), and two discriminators, D_Y
on domain Y and D_X on domain X. The full objective (Eq. 3) is

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y, X, Y) + L_GAN(F, D_X, Y, X) + lambda * L_cyc(G, F),

with the cycle-consistency loss L_cyc = E||F(G(x)) - x||_1 + E||G(F(y)) - y||_1 (Eq. 2),
lambda = 10, and, as in Sec. 5.2 (photo <-> painting), the identity loss
E||G(y) - y||_1 + E||F(x) - x||_1 weighted by 0.5 * lambda. L_GAN is the least-squares loss
(Sec. 4, Mao et al. 2017): G minimizes E[(D(G(x)) - 1)^2], D minimizes
E[(D(y) - 1)^2] + E[D(G(x))^2], divided by 2. D is updated on a history of 50 generated images
(`genmodels.nn.image_pool.ImagePool`, one pool per discriminator, saved in checkpoints).
Networks: ResNet generators with 9 (256 px) or 6 (128 px) residual blocks, reflection padding
and instance normalization (`genmodels.nn.resnet_generator`); 70x70 PatchGANs with instance
normalization. Adam, lr 2e-4, beta1 0.5, batch 1; the LR is constant for the first 100 epochs and
decays linearly to 0 over the next 100: ``lr_schedule: linear`` with ``lr_decay_start`` /
``lr_decay_end`` in iterations and ``lr_decay_every`` = iterations per epoch, which reproduces the
authors' per-epoch LambdaLR exactly (see experiments/cyclegan/horse2zebra.yaml).

Each iteration updates G and F first, through the current discriminators, and then D_X and D_Y on
the fakes of the same forward pass, the order of the authors' ``optimize_parameters``
(``generator_first``).

The two generators share one optimizer and the two discriminators another (their losses are
independent sums, so one joint step equals two separate ones): ``generator`` and
``discriminator`` are pairs of networks, and the pair of discriminators is declared to the loop.

The loop applies its shared options to each of the two discriminators (`critics`): augmentation,
instance noise, penalties, LeCam; ``feature_matching`` is refused (a PatchGAN has no feature
layer). Not implemented: the paper's ablations (GAN alone, cycle alone, one-way cycles) and the FCN
score of the Cityscapes evaluation.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
from torch import Tensor, nn

from genmodels.gans.adversarial import Judged, Outputs
from genmodels.gans.translation import TranslationModel, d_loss_scale, g_loss_scale
from genmodels.nn.image_pool import ImagePool
from genmodels.nn.patchgan import PatchGANDiscriminator
from genmodels.nn.resnet_generator import ResnetGenerator
from genmodels.errors import InvalidValue

__all__ = ["CycleGAN", "CycleGenerators", "CycleDiscriminators"]


class CycleGenerators(nn.Module):
    """The two mappings: ``G`` (X -> Y, i.e. A -> B) and ``F`` (Y -> X)."""

    def __init__(self, G: nn.Module, F: nn.Module) -> None:  # noqa: N803 (the paper's names)
        super().__init__()
        self.G, self.F = G, F


class CycleDiscriminators(nn.Module):
    """The two discriminators: ``D_X`` (domain A) and ``D_Y`` (domain B)."""

    def __init__(self, D_X: nn.Module, D_Y: nn.Module) -> None:  # noqa: N803
        super().__init__()
        self.D_X, self.D_Y = D_X, D_Y


class CycleGAN(TranslationModel):
    """CycleGAN between domains A (X) and B (Y) from unpaired batches ``{"A", "B"}``.

    ``sample(n, condition=sources)`` translates domain-A images with G; `translate` with
    ``direction="BtoA"`` uses F.

    Args:
        image_shape: ``(C, H, W)`` of both domains, linked from the datamodule; H, W multiples of 4.
        ngf, ndf: first-layer channels of the generators and discriminators (64).
        n_blocks: residual blocks per generator (9 for 256 px, 6 for 128 px).
        n_layers_d: PatchGAN stride-2 layers (3: 70x70).
        norm: ``instance`` (the paper) or ``batch``.
        lambda_cycle: lambda of Eq. 3 (10).
        lambda_identity: identity-loss weight relative to ``lambda_cycle`` (0.5; 0 disables).
        pool_size: generated images kept per discriminator (50; 0 disables the pool).
        one_way: only G (A -> B) holds trained weights, as in an imported single-direction official
            generator (``genmodels import-weights cyclegan latest_net_G.pth``): `translate` refuses
            ``BtoA`` and the grids and ``cycle_l1`` leave F out. Training from such a file
            (``fit --init_weights``) trains both directions as usual.
        num_examples, fid_extractor, fid_weights: see `TranslationModel`.
        loss: least squares by default (the paper); ``lr_g``, ``lr_d``, ``betas``, ``lr_schedule``
            ... and the other options of `AdversarialModel` go through ``**kwargs``.

    Example:
        >>> model = CycleGAN(**CycleGAN.tiny())  # 32x32 RGB
        >>> model.sample(2, condition=torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    refused_options = {"feature_matching": "its PatchGANs have no features()"}

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 256, 256),
        ngf: int = 64,
        ndf: int = 64,
        n_blocks: int = 9,
        n_layers_d: int = 3,
        norm: Literal["instance", "batch"] = "instance",
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        one_way: bool = False,
        num_examples: int = 8,
        fid_extractor: Optional[str] = None,
        fid_weights: Optional[str] = None,
        loss: str = "least_squares",
        **kwargs: Any,
    ) -> None:
        channels, height, width = image_shape
        if height % 4 or width % 4:
            raise InvalidValue(f"CycleGAN's generators need H and W divisible by 4, got image_shape {tuple(image_shape)}")
        if lambda_cycle < 0 or lambda_identity < 0:
            raise InvalidValue(f"lambda_cycle and lambda_identity must be >= 0, got {lambda_cycle} and {lambda_identity}")
        super().__init__(image_shape, num_examples, fid_extractor, fid_weights, loss=loss, **kwargs)
        self.save_hyperparameters()
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.one_way = one_way
        self.build(
            CycleGenerators(ResnetGenerator(channels, channels, ngf, n_blocks, norm), ResnetGenerator(channels, channels, ngf, n_blocks, norm)),
            CycleDiscriminators(PatchGANDiscriminator(channels, ndf, n_layers_d, norm), PatchGANDiscriminator(channels, ndf, n_layers_d, norm)),
        )
        # One history per discriminator (Sec. 4): fakes of domain A for D_X, of domain B for D_Y.
        self.pool_A, self.pool_B = ImagePool(pool_size, self.image_shape), ImagePool(pool_size, self.image_shape)

    @property
    def export_exclude(self) -> tuple[str, ...]:
        """Training-only state: discriminators, image pools (and the raw generators under EMA)."""
        return ("discriminator", "pool_A", "pool_B") + (("generator",) if self.generator_ema is not None else ())

    # -- AdversarialModel hooks: Eq. 3 ------------------------------------------------------------
    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
        """(G(x), F(y)) for the batch's x = A and y = B."""
        return self.generator.G(batch["A"]), self.generator.F(batch["B"])

    def critics(self) -> dict[str, nn.Module]:
        """The pair of discriminators: D_Y judges domain B (Y), D_X domain A (X)."""
        return {"d_y": self.discriminator.D_Y, "d_x": self.discriminator.D_X}

    def judged(self, batch: dict[str, Tensor], fakes: tuple[Tensor, Tensor]) -> dict[str, Judged]:
        """D_Y: real y against G(x); D_X: real x against F(y)."""
        return {"d_y": Judged(batch["B"], fakes[0]), "d_x": Judged(batch["A"], fakes[1])}

    def discriminator_fakes(self, fakes: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """D trains on the history of generated images (Sec. 4), one pool per discriminator."""
        return self.pool_B.query(fakes[0]), self.pool_A.query(fakes[1])

    def discriminator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """Each discriminator's objective, halved (Sec. 4), summed."""
        return d_loss_scale(self.loss_name) * super().discriminator_term(outputs)

    def generator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """L_GAN(G, D_Y) + L_GAN(F, D_X) (Eq. 3)."""
        return g_loss_scale(self.loss_name) * super().generator_term(outputs)

    def generator_extras(self, batch: dict[str, Tensor], fakes: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """lambda L_cyc (Eq. 2, 3) + 0.5 lambda L_identity (Sec. 5.2)."""
        x, y = batch["A"], batch["B"]
        fake_y, fake_x = fakes
        G, F = self.generator.G, self.generator.F  # noqa: N806
        cycle = (F(fake_y) - x).abs().mean() + (G(fake_x) - y).abs().mean()  # forward and backward cycles
        loss = self.lambda_cycle * cycle
        logs = {"train/loss_cycle": cycle.detach()}
        if self.lambda_identity > 0:
            # G should leave an image of its target domain as it is (preserves colour composition).
            identity = (G(y) - y).abs().mean() + (F(x) - x).abs().mean()
            loss = loss + self.lambda_identity * self.lambda_cycle * identity
            logs["train/loss_identity"] = identity.detach()
        return loss, logs

    # -- translation and evaluation ---------------------------------------------------------------
    def translate(self, source: Tensor, direction: str = "AtoB") -> Tensor:
        """G(source) for ``AtoB``, F(source) for ``BtoA`` (through the EMA generators when enabled)."""
        if direction not in ("AtoB", "BtoA"):
            raise InvalidValue(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        if direction == "BtoA" and self.one_way:
            raise InvalidValue("this CycleGAN has trained weights only for AtoB (one_way: an imported single-direction generator)")
        nets = self.sampling_generator
        return nets.G(source) if direction == "AtoB" else nets.F(source)

    @property
    def bidirectional(self) -> bool:  # type: ignore[override]
        """False for a `one_way` model: F holds no trained weights."""
        return not self.one_way

    generator_first = True  # the authors' order: G step, then D step on the same fakes
    input_multiple = 4  # two stride-2 convolutions in each generator

    def grid_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """A | G(A) | F(G(A)) | B | F(B) | G(F(B)): both translations and their reconstructions."""
        if self.one_way:
            return [batch["A"], self.translate(batch["A"])]
        fake_b, fake_a = self.translate(batch["A"]), self.translate(batch["B"], "BtoA")
        return [batch["A"], fake_b, self.translate(fake_b, "BtoA"), batch["B"], fake_a, self.translate(fake_a)]

    def paired_metrics(self) -> bool:
        return False  # unpaired domains: no ground truth for G(x)

    def extra_metrics(self, batch: dict[str, Tensor], fake: Tensor) -> dict[str, Tensor]:
        """``cycle_l1``: E||F(G(x)) - x||_1 on the val sources (none for a `one_way` model)."""
        if self.one_way:
            return {}
        return {"cycle_l1": (self.translate(fake, "BtoA") - batch["A"]).abs().mean()}

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size CycleGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(3, 32, 32), ngf=4, ndf=4, n_blocks=1, pool_size=2)
