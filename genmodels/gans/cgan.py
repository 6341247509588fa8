"""Conditional GAN (Mirza & Osindero 2014, arXiv:1411.1784), with a projection discriminator option.

Both players see the condition y (Sec. 3.2, Eq. 2):
min_G max_D E[log D(x|y)] + E[log(1 - D(G(z|y)|y))]. y is one-hot and concatenated to z at G's
input, and to the image as constant one-hot channels at D's input: the usual convolutional form
of the paper's idea. (The paper's MNIST model, Sec. 4.1, first maps z and y through separate
hidden layers, ReLU in G and maxout in D, and joins those.) The networks are DCGAN's (Radford et
al. 2015, arXiv:1511.06434) rather than the paper's MLPs, which is what trains reliably on MNIST
and CIFAR-10 today.

``discriminator_conditioning="projection"`` uses the projection discriminator of Miyato & Koyama
2018 (arXiv:1802.05637): D(x, y) = psi(phi(x)) + y^T V phi(x), where phi(x) is D's last feature
map summed over space; for a one-hot y the inner product picks the class embedding, and the same
formula takes attribute vectors. It pairs well with ``loss: hinge`` and ``spectral_norm: true``
(their setup), both options of `AdversarialModel`.

The condition is class labels (``num_classes``) or an attribute vector (``attribute_names``,
e.g. CelebA's), see `genmodels.conditioning`. Every training option of `AdversarialModel`
(loss, penalties, spectral norm, EMA, feature matching, ...) applies; D gets the condition in
all of them.

Not implemented: the auxiliary-classifier GAN (ACGAN, Odena et al. 2016, arXiv:1610.09585), the
paper's multimodal (image tagging) experiment, and conditional batch normalization in G
(Miyato & Koyama use it; here y enters G only through its input).
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from genmodels.conditioning import Condition, ConditionError, make_condition
from genmodels.gans.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_layout
from genmodels.gans.gan import LatentGAN
from genmodels.errors import InvalidValue

__all__ = ["ConditionalGAN", "ConditionalGenerator", "ConcatDiscriminator", "ProjectionDiscriminator"]


class ConditionalGenerator(nn.Module):
    """G(z|y): the encoded condition concatenated to z, then DCGAN's generator."""

    def __init__(self, latent_dim: int, condition_dim: int, image_shape: tuple[int, int, int], feature_maps: int) -> None:
        super().__init__()
        self.net = DCGANGenerator(latent_dim + condition_dim, image_shape, feature_maps)

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        """z (n, latent_dim), condition (n, condition_dim) float -> images (n, C, H, W) in [-1, 1]."""
        return self.net(torch.cat([z, condition.to(z.dtype)], dim=1))


def _condition_maps(images: Tensor, condition: Tensor) -> Tensor:
    """The image with the condition appended as constant channels, (n, C + dim, H, W)."""
    maps = condition.to(images.dtype)[:, :, None, None].expand(-1, -1, *images.shape[2:])
    return torch.cat([images, maps], dim=1)


class ConcatDiscriminator(nn.Module):
    """D(x|y): DCGAN's discriminator on the image with y appended as input channels."""

    def __init__(self, image_shape: tuple[int, int, int], condition_dim: int, feature_maps: int, norm: str) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.net = DCGANDiscriminator((channels + condition_dim, height, width), feature_maps, norm)

    def features(self, images: Tensor, condition: Tensor) -> Tensor:
        """D's last hidden feature map (feature matching)."""
        return self.net.features(_condition_maps(images, condition))

    def forward(self, images: Tensor, condition: Tensor) -> Tensor:
        """One logit per image, (n,)."""
        return self.net(_condition_maps(images, condition))


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + y^T V phi(x) (Miyato & Koyama 2018) on DCGAN's body."""

    def __init__(self, image_shape: tuple[int, int, int], condition_dim: int, feature_maps: int, norm: str) -> None:
        super().__init__()
        dcgan = DCGANDiscriminator(image_shape, feature_maps, norm)
        self.body, self.psi = dcgan.body, dcgan.head
        # V: a linear map (no bias) from the condition to phi's space: the class embedding matrix
        # for one-hot labels, a per-attribute direction for attribute vectors.
        self.embed = nn.Linear(condition_dim, dcgan.head.in_channels, bias=False)

    def features(self, images: Tensor, condition: Tensor) -> Tensor:
        """D's last hidden feature map (feature matching; the condition enters only the output)."""
        return self.body(images)

    def forward(self, images: Tensor, condition: Tensor) -> Tensor:
        """One logit per image, (n,)."""
        h = self.body(images)
        phi = h.sum(dim=(2, 3))  # global sum pooling, as in the paper's ResNet discriminators
        projection = (self.embed(condition.to(phi.dtype)) * phi).sum(dim=1)
        return self.psi(h).flatten() + projection


class ConditionalGAN(LatentGAN):
    """cGAN: G(z|y) and D(x|y) with DCGAN networks; y is a class label or an attribute vector.

    Args:
        image_shape: ``(C, H, W)``, square, H in 4*2^k or 7*2^k; linked from the datamodule.
        num_classes: number of classes to condition on (must equal the datamodule's; checked
            when fitting). 0 when conditioning on attributes.
        attribute_names: condition on these attributes (``batch["attributes"]``) instead of labels.
        discriminator_conditioning: ``concat`` (y as input channels, the paper) or ``projection``
            (Miyato & Koyama 2018).
        latent_dim: size of z.
        latent_distribution: ``normal`` or ``uniform``.
        feature_maps: channels of G's last and D's first hidden layer (DCGAN's ``ngf`` = ``ndf``).
        discriminator_norm: ``batch``, ``layer`` (use it with the ``gp`` penalty) or ``none``.
        **kwargs: training options of `AdversarialModel` (loss, penalty, spectral_norm, lr_g,
            lr_d, betas, ema_decay, ...).

    Example:
        >>> model = ConditionalGAN(**ConditionalGAN.tiny())  # 3 classes
        >>> model.eval().sample(4, condition=torch.tensor([0, 1, 2, 0])).shape
        torch.Size([4, 1, 16, 16])
        >>> model.sample(2, condition=2).shape  # two samples of class 2
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        num_classes: int = 10,
        attribute_names: Optional[Sequence[str]] = None,
        discriminator_conditioning: Literal["concat", "projection"] = "concat",
        latent_dim: int = 100,
        latent_distribution: Literal["normal", "uniform"] = "normal",
        feature_maps: int = 64,
        discriminator_norm: Literal["batch", "layer", "none"] = "batch",
        **kwargs: Any,
    ) -> None:
        _check_shape(image_shape, feature_maps)
        if discriminator_conditioning not in DISCRIMINATORS:
            raise InvalidValue(f"discriminator_conditioning must be one of {sorted(DISCRIMINATORS)}, got {discriminator_conditioning!r}")
        conditioning = make_condition(num_classes, attribute_names)
        super().__init__(image_shape, latent_dim, latent_distribution, **kwargs)
        self.save_hyperparameters()
        self.conditioning: Condition = conditioning
        self.num_classes = int(num_classes) if attribute_names is None else 0
        self.attribute_names = list(attribute_names) if attribute_names is not None else None
        discriminator = DISCRIMINATORS[discriminator_conditioning]
        self.build(
            ConditionalGenerator(latent_dim, conditioning.dim, self.image_shape, feature_maps),
            discriminator(self.image_shape, conditioning.dim, feature_maps, discriminator_norm),
        )
        self._first_batch_checked = False

    # -- the condition hook of AdversarialModel: D gets the encoded y in every loss and penalty ---
    def condition(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's encoded condition, float (B, dim)."""
        return self.conditioning.encode(self.conditioning.from_batch(batch))

    def generate(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        """Fakes conditioned on the batch's own labels/attributes, so D compares like with like."""
        condition = self.condition(batch)
        return self.generator(self.sample_latent(condition.shape[0], generator), condition)

    # -- the public API -----------------------------------------------------------------------
    def decode(self, z: Tensor, condition: Any) -> Tensor:
        """G(z|y) through the sampling generator (EMA when enabled); differentiable in ``z``.

        Args:
            z: latents (n, latent_dim).
            condition: as in `sample` (required here).
        """
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InvalidValue(f"z must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        if condition is None:
            raise ConditionError(f"{type(self).__name__}.decode needs a condition ({self.conditioning.describe()})")
        labels = self.conditioning.check(condition, z.shape[0], z.device)
        return self.sampling_generator(z, self.conditioning.encode(labels))

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` images of the given classes/attributes, ``(n, C, H, W)`` in [-1, 1].

        Args:
            n: number of images.
            condition: an int class (all ``n`` of it), ``n`` labels, or for attribute models a float
                tensor ``(n, A)`` / ``(A,)`` or ``{name: value}``; None draws them (uniform classes,
                fair-coin attributes) with ``generator``.
            generator: makes the draw reproducible (conditions first, then z).
        """
        if condition is None:
            condition = self.conditioning.draw(n, generator, self.device)
        else:
            condition = self.conditioning.check(condition, n, self.device)
        z = self.sample_latent(n, generator)
        return self.sampling_generator(z, self.conditioning.encode(condition))

    # -- checks when fitting ------------------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        # num_classes is given in the experiment YAML, not linked from the datamodule: a mismatch
        # would train silently wrong (labels >= num_classes) or crash deep in a scatter.
        datamodule = self.trainer.datamodule
        if datamodule is not None:
            self.conditioning.check_datamodule(datamodule)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # One check of the first batch (one host sync per run), for data given without a datamodule.
        if not self._first_batch_checked:
            condition = self.conditioning.from_batch(batch)
            self.conditioning.check(condition, condition.shape[0], condition.device)
            self._first_batch_checked = True

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size ConditionalGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), num_classes=3, latent_dim=8, feature_maps=4)


DISCRIMINATORS = {"concat": ConcatDiscriminator, "projection": ProjectionDiscriminator}


def _check_shape(image_shape: tuple[int, int, int], feature_maps: int) -> None:
    """DCGAN's constraints, checked before anything is built."""
    if len(image_shape) != 3 or image_shape[1] != image_shape[2]:
        raise InvalidValue(f"ConditionalGAN needs square (C, H, W) images, got image_shape {tuple(image_shape)}")
    if feature_maps < 1:
        raise InvalidValue(f"feature_maps must be positive, got {feature_maps}")
    dcgan_layout(image_shape[1])
