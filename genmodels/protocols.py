"""What a model can do, as runtime-checkable protocols.

Apps, callbacks and the CLI ask ``isinstance(model, StyleBased)`` instead of probing for
attributes one by one; a model gains a capability by having the members, not by registering.
Every model is a `genmodels.GenerativeModel` (``sample(n, *, condition, generator)`` in [-1, 1]);
these protocols name what some models add on top of it:

- `LatentGenerator`: images are a function of a latent z ~ p(z) (the GANs);
- `StyleBased`: z -> w through a mapping network, w -> image through a synthesis network, a
  running mean w for truncation, ``num_ws`` per-layer styles for style mixing (StyleGAN, StyleGAN2);
- `ClassConditional`: takes class labels (``num_classes == 0`` marks an instance built without
  classes, e.g. an unconditional autoencoder; use `class_count`);
- `Autoencoder`: encoder and decoder with a Gaussian summary of the code distribution;
- `Translator`: image-to-image translation (pix2pix, CycleGAN);
- `TextConditional`: images from captions (StackGAN, AttnGAN, DF-GAN);
- `DensityModel`: exact likelihoods (RealNVP, Glow, PixelCNN).

One protocol names what a *datamodule* offers beyond Lightning's loaders, so that genmodels code
never imports `datamodules` (the dependency runs one way, datamodules -> genmodels):

- `ImageSplits`: every image of a split, unshuffled (`datamodules.ImageDataModule`);
- `LabelledData`, `NamedData`: the number of class labels, the dataset's name (any datamodule may have them).

Runtime checks look at member names only, not signatures; the contract test
(tests/genmodels/test_contract.py) pins which model satisfies which protocol.

>>> import torch
>>> class Toy:
...     latent_dim = 2
...     def sample_latent(self, n, generator=None): return torch.zeros(n, 2)
...     def sample(self, n, *, condition=None, generator=None): return torch.zeros(n, 1, 4, 4)
...     def sample_from(self, z, *, condition=None, generator=None): return torch.zeros(len(z), 1, 4, 4)
>>> isinstance(Toy(), LatentGenerator), isinstance(Toy(), Autoencoder), class_count(Toy())
(True, False, 0)
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "LatentGenerator",
    "StyleBased",
    "ClassConditional",
    "Autoencoder",
    "Translator",
    "TextConditional",
    "DensityModel",
    "ImageSplits",
    "LabelledData",
    "NamedData",
    "class_count",
    "dataset_name",
    "dataset_classes",
]


@runtime_checkable
class LatentGenerator(Protocol):
    """Images as a function of z ~ p(z): draw z, then generate from it (or let `sample` draw it)."""

    latent_dim: int

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """z ~ p(z), shape (n, latent_dim)."""

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` images (n, C, H, W) in [-1, 1]."""

    def sample_from(self, z: Tensor, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """The images `sample` would draw if its latents were ``z``; ``generator`` draws the rest."""


@runtime_checkable
class StyleBased(Protocol):
    """A mapping network z -> w and a synthesis network w -> image (Karras et al. 2019)."""

    num_ws: int

    def mapping(self, z: Tensor) -> Tensor:
        """z (n, latent_dim) -> w (n, w_dim)."""

    def synthesis(self, w: Tensor, noise_mode: str = "const", generator: Optional[torch.Generator] = None) -> Tensor:
        """w (n, w_dim), or per-layer ws (n, num_ws, w_dim) for style mixing -> images.

        ``noise_mode``: ``const`` (fixed noise: an image is a function of w), ``per_batch`` (one draw
        from ``generator`` per layer, shared by the n images; PPL) or ``random`` (per image).
        """

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """The truncation trick: mean_w + psi * (w - mean_w)."""

    @property
    def mean_w(self) -> Tensor:
        """The running mean of w."""


@runtime_checkable
class ClassConditional(Protocol):
    """Samples of given classes: ``sample(n, condition=labels)`` with labels in 0..num_classes-1."""

    num_classes: int

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor: ...


@runtime_checkable
class Autoencoder(Protocol):
    """An encoder and a decoder; codes are deterministic (a VAE's posterior mean)."""

    latent_dim: int
    num_classes: int

    def encode(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor: ...

    def decode(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor: ...

    def reconstruct(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor: ...

    def reconstruction_error(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor: ...

    def latent_gaussian(self) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation of the codes (per dimension)."""

    def default_condition(self, n: int) -> Optional[Tensor]:
        """Labels to decode with when none are given (None for an unconditional model)."""


@runtime_checkable
class Translator(Protocol):
    """Image-to-image translation between domains A and B."""

    def translate(self, source: Tensor, direction: str = "AtoB") -> Tensor: ...

    def grid_columns(self, batch: dict[str, Tensor]) -> list[Tensor]:
        """The columns of a translation grid for a batch (A | G(A) | B, ...)."""


@runtime_checkable
class TextConditional(Protocol):
    """Images from captions: ``sample(n, condition=[caption, ...])``."""

    vocab: list
    max_length: int

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class DensityModel(Protocol):
    """An exact (discretized) likelihood, reported in bits per dimension."""

    def bits_per_dim(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor: ...


@runtime_checkable
class ImageSplits(Protocol):
    """A datamodule whose splits can be read whole, in order, outside training (`datamodules.ImageDataModule`)."""

    dataset_name: str
    image_shape: tuple[int, int, int]
    num_classes: int  # 0 for unlabelled data

    def split_dataset(self, split: str) -> Any:
        """The dataset of ``split`` as the loaders index it (``__getitems__`` -> ``{"image", "label"}``)."""

    def split_images(self, split: str, limit: Optional[int] = None) -> tuple[Tensor, Tensor]:
        """The first ``limit`` (default all) uint8 images (N, C, H, W) and int64 labels (N,) of ``split``."""


def class_count(model: Any) -> int:
    """Classes ``model`` is conditioned on; 0 for a model that takes no class labels.

    >>> class Unconditional: pass
    >>> class_count(Unconditional())
    0
    """
    if not isinstance(model, ClassConditional):
        return 0
    count = model.num_classes
    return int(count) if isinstance(count, int) and count > 0 else 0


@runtime_checkable
class NamedData(Protocol):
    """A datamodule that names its dataset (for reports and cache keys)."""

    dataset_name: str


def dataset_name(datamodule: Any) -> str:
    """The dataset's name (`NamedData.dataset_name`), else the datamodule's class name."""
    return str(datamodule.dataset_name) if isinstance(datamodule, NamedData) else type(datamodule).__name__


@runtime_checkable
class LabelledData(Protocol):
    """A datamodule that says how many class labels its data has (any datamodule may)."""

    num_classes: int  # 0 for unlabelled data


def dataset_classes(datamodule: Any) -> int:
    """Class labels of the datamodule's data (`LabelledData.num_classes`); 0 for a datamodule that names none."""
    return int(datamodule.num_classes or 0) if isinstance(datamodule, LabelledData) else 0
