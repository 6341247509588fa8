"""Convolutional autoencoders (Hinton & Salakhutdinov 2006, "Reducing the dimensionality of data
with neural networks", Science 313(5786); convolutional form as in Masci et al. 2011, "Stacked
convolutional auto-encoders for hierarchical feature extraction", ICANN).

An encoder maps an image to a code z of ``latent_dim`` numbers and a decoder maps z back to an
image; both are trained to minimise a reconstruction loss on images in [-1, 1]:

- ``mse``: mean squared error between the image and the decoder's tanh output;
- ``bce``: binary cross-entropy with logits against the targets ``(x + 1) / 2`` in [0, 1] (the
  reconstruction is ``2 * sigmoid(logits) - 1``). On grey-level pixels this is a cross-entropy
  between soft targets, not the likelihood of a Bernoulli model, and its minimum is not 0.

A plain autoencoder has no prior to sample from. `AutoEncoder.sample` decodes codes drawn from a
Gaussian fitted to the training codes (the "ex-post density estimation" of Ghosh et al. 2019,
arXiv:1903.12436, with one full-covariance Gaussian): a running mean and second moment of the
codes of each training batch, kept as buffers so checkpoints and resumed runs hold them.

The networks (`ConvEncoder`, `ConvDecoder`) are shared with the VAE: stride-2 4x4 convolutions
halve the resolution once per entry of ``hidden_channels`` (so the image side must be divisible
by ``2 ** len(hidden_channels)``), a linear layer maps the last feature map to the code, and the
decoder mirrors it with transposed convolutions. There is no normalization layer, so an image's
code never depends on the rest of its batch (scores and likelihoods are per image).

Not implemented: denoising, sparse or contractive penalties; skip connections.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.base import GenerativeModel
from genmodels.conditioning import ConditionError
from genmodels.errors import InvalidValue

__all__ = ["AutoEncoder", "ConvAutoEncoderBase", "ConvEncoder", "ConvDecoder", "conv_layout"]


def conv_layout(image_shape: Sequence[int], hidden_channels: Sequence[int]) -> int:
    """Side of the last feature map for ``image_shape`` (C, H, W) after one halving per level.

    Raises:
        ValueError: non-square images, no levels, or a side not divisible by ``2 ** levels``.
    """
    channels, height, width = (int(s) for s in image_shape)
    levels = len(hidden_channels)
    if levels < 1 or min(int(c) for c in hidden_channels) < 1:
        raise InvalidValue(f"hidden_channels must be a non-empty list of positive ints, got {list(hidden_channels)}")
    if height != width:
        raise InvalidValue(f"convolutional autoencoders need square images, got image_shape {tuple(image_shape)}")
    if height % 2**levels:
        raise InvalidValue(
            f"image size {height} is not divisible by 2^{levels} = {2**levels} (hidden_channels has {levels} "
            f"entries, each halving the resolution); use an image_size that is a multiple of {2**levels} "
            "(--data.init_args.image_size) or fewer hidden_channels"
        )
    return height // 2**levels


class ConvEncoder(nn.Module):
    """image (n, C, H, W) -> (n, out_features): stride-2 convolutions + SiLU, then a linear layer.

    ``condition_features`` extra inputs (a one-hot label) are concatenated to the flattened last
    feature map before the linear layer.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        hidden_channels: Sequence[int],
        out_features: int,
        condition_features: int = 0,
    ) -> None:
        super().__init__()
        side = conv_layout(image_shape, hidden_channels)
        layers: list[nn.Module] = []
        previous = int(image_shape[0])
        for channels in hidden_channels:
            layers += [nn.Conv2d(previous, channels, 4, 2, 1), nn.SiLU()]
            previous = channels
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(previous * side * side + condition_features, out_features)

    def forward(self, images: Tensor, condition: Optional[Tensor] = None) -> Tensor:
        features = self.features(images)
        if condition is not None:
            features = torch.cat([features, condition.to(features.dtype)], dim=1)
        return self.head(features)


class ConvDecoder(nn.Module):
    """code (n, latent_dim) -> (n, out_channels, H, W) unbounded outputs: the mirror of `ConvEncoder`.

    ``out_channels`` defaults to the image's C (means or logits); a decoder that also predicts a
    scale per pixel asks for 2 * C.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        hidden_channels: Sequence[int],
        latent_dim: int,
        condition_features: int = 0,
        out_channels: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.side = conv_layout(image_shape, hidden_channels)
        widths = list(hidden_channels)[::-1]
        self.project = nn.Sequential(nn.Linear(latent_dim + condition_features, widths[0] * self.side**2), nn.SiLU())
        layers: list[nn.Module] = []
        for channels, next_channels in zip(widths, widths[1:] + widths[-1:]):
            layers += [nn.ConvTranspose2d(channels, next_channels, 4, 2, 1), nn.SiLU()]
        # A 3x3 output convolution, so the last upsampling is not also the output layer.
        layers.append(nn.Conv2d(widths[-1], out_channels or int(image_shape[0]), 3, 1, 1))
        self.body = nn.Sequential(*layers)
        self.width = widths[0]

    def forward(self, z: Tensor, condition: Optional[Tensor] = None) -> Tensor:
        if condition is not None:
            z = torch.cat([z, condition.to(z.dtype)], dim=1)
        return self.body(self.project(z).view(-1, self.width, self.side, self.side))


class ConvAutoEncoderBase(GenerativeModel):
    """What the autoencoder family shares: shape checks, label conditioning, Adam, the view API.

    Views, the anomaly app and metrics use only this interface: `encode` (a deterministic code),
    `decode`, `reconstruct`, `reconstruction_error`, `latent_dim`, `num_classes`, and
    `latent_gaussian` (mean and std of the codes a decoded latent grid should cover).

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        latent_dim: size of the code z.
        hidden_channels: channels of the encoder's stride-2 convolutions (mirrored by the decoder).
        num_classes: 0 for an unconditional model; K > 0 conditions encoder and decoder on a
            one-hot label in 0..K-1 (``batch["label"]``).
        lr, betas, weight_decay: Adam(W) settings.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 16,
        hidden_channels: Sequence[int] = (32, 64, 128),
        num_classes: int = 0,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(image_shape)
        _check_positive(latent_dim=latent_dim, lr=lr)
        if num_classes < 0:
            raise InvalidValue(f"num_classes must be >= 0 (0 = unconditional), got {num_classes}")
        conv_layout(self.image_shape, hidden_channels)  # fail before building anything
        self.latent_dim, self.num_classes = int(latent_dim), int(num_classes)
        self.hidden_channels = tuple(int(c) for c in hidden_channels)
        self.lr, self.betas, self.weight_decay = lr, tuple(betas), weight_decay

    # -- inputs -------------------------------------------------------------------------------
    def check_images(self, images: Tensor) -> None:
        """Raise a clear error for images of another shape than the model was built for."""
        if images.ndim != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise InvalidValue(
                f"{type(self).__name__} was built for images of shape {self.image_shape} (C, H, W), got a batch "
                f"of shape {tuple(images.shape)}; use the same --data.init_args.image_size (and channels) as in training"
            )

    def one_hot(self, labels: Optional[Tensor], n: int) -> Optional[Tensor]:
        """One-hot labels for a conditional model (None for an unconditional one).

        Raises:
            ValueError: a conditional model got no labels or labels outside 0..K-1.
        """
        if self.num_classes == 0:
            return None
        if labels is None:
            raise InvalidValue(f"this model is conditional (num_classes={self.num_classes}): pass labels")
        labels = torch.as_tensor(labels, device=self.device).long().view(-1)
        if labels.numel() != n or (labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes)):
            raise InvalidValue(
                f"a conditional model with num_classes={self.num_classes} needs {n} labels in 0..{self.num_classes - 1}, "
                f"got {labels.tolist()[:8]}{'...' if labels.numel() > 8 else ''} (an unlabelled dataset gives -1)"
            )
        return F.one_hot(labels, self.num_classes).float()

    def default_condition(self, n: int) -> Optional[Tensor]:
        """Labels `sample` uses when none are given: 0, 1, ..., K-1, 0, 1, ... (a grid shows every class)."""
        return torch.arange(n, device=self.device) % self.num_classes if self.num_classes else None

    def sample_labels(self, condition: Any, n: int) -> Optional[Tensor]:
        """The labels `sample` decodes with: ``condition``, else `default_condition`.

        Raises:
            ConditionError: a condition for an unconditional model (it would be silently ignored).
        """
        if condition is None:
            return self.default_condition(n)
        if self.num_classes == 0:
            raise ConditionError(f"{type(self).__name__} is unconditional (num_classes=0); condition must be None")
        labels = torch.as_tensor(condition, device=self.device).long().view(-1)
        return labels.expand(n) if labels.numel() == 1 else labels  # an int: n images of that class

    # -- the view API (implemented by the subclasses) -----------------------------------------
    def encode(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Deterministic codes (n, latent_dim) of ``images`` in [-1, 1]."""
        raise NotImplementedError

    def decode(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Images (n, C, H, W) in [-1, 1] decoded from codes ``z``."""
        raise NotImplementedError

    def reconstruct(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """``decode(encode(images))``: the deterministic reconstruction, in [-1, 1]."""
        return self.decode(self.encode(images, labels), labels)

    def reconstruction_error(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Per-image mean squared error (n,) between ``images`` and their reconstructions, in [-1, 1] units."""
        return (self.reconstruct(images, labels) - images).pow(2).flatten(1).mean(1)

    def latent_gaussian(self) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation (latent_dim,) of the codes: the region a latent grid covers."""
        raise NotImplementedError

    # -- optimization -------------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)

    def _batch(self, batch: dict[str, Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        images = batch["image"]
        self.check_images(images)
        return images, batch.get("label") if self.num_classes else None


class AutoEncoder(ConvAutoEncoderBase):
    """A deterministic convolutional autoencoder trained with MSE or BCE reconstruction.

    Args:
        image_shape: ``(C, H, W)``, square, side divisible by ``2 ** len(hidden_channels)``; linked
            from the datamodule.
        latent_dim: size of the code.
        hidden_channels: channels of the encoder's stride-2 convolutions (mirrored by the decoder).
        reconstruction_loss: ``mse`` (tanh output) or ``bce`` (logits against ``(x + 1) / 2``).
        latent_momentum: weight of each batch in the running mean and second moment of the codes
            that `sample` draws from.
        lr, betas, weight_decay: Adam(W) settings.

    Example:
        >>> model = AutoEncoder(**AutoEncoder.tiny())
        >>> model.sample(2).shape
        torch.Size([2, 1, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        latent_dim: int = 16,
        hidden_channels: Sequence[int] = (32, 64, 128),
        reconstruction_loss: Literal["mse", "bce"] = "mse",
        latent_momentum: float = 0.01,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(image_shape, latent_dim, hidden_channels, 0, lr, betas, weight_decay)
        if reconstruction_loss not in ("mse", "bce"):
            raise InvalidValue(f"reconstruction_loss must be 'mse' or 'bce', got {reconstruction_loss!r}")
        if not 0.0 < latent_momentum <= 1.0:
            raise InvalidValue(f"latent_momentum must be in (0, 1], got {latent_momentum}")
        self.save_hyperparameters()
        self.reconstruction_loss, self.latent_momentum = reconstruction_loss, latent_momentum
        self.encoder = ConvEncoder(self.image_shape, self.hidden_channels, self.latent_dim)
        self.decoder = ConvDecoder(self.image_shape, self.hidden_channels, self.latent_dim)
        # Moments of the training codes; N(0, I) until the first batch.
        self.register_buffer("code_mean", torch.zeros(self.latent_dim))
        self.register_buffer("code_second_moment", torch.eye(self.latent_dim))

    # -- the view API -------------------------------------------------------------------------
    def encode(self, images: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        self.check_images(images)
        return self.encoder(images)

    def decode(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.output_to_image(self.decoder(z))

    def output_to_image(self, output: Tensor) -> Tensor:
        """The decoder's raw output (tanh pre-activation or logits) as an image in [-1, 1]."""
        if self.reconstruction_loss == "bce":
            return 2 * torch.sigmoid(output.float()) - 1
        return torch.tanh(output.float())

    def latent_gaussian(self) -> tuple[Tensor, Tensor]:
        mean, covariance = self._code_gaussian()
        return mean, covariance.diagonal().sqrt()

    # -- loss ---------------------------------------------------------------------------------
    def reconstruction_loss_per_image(self, output: Tensor, images: Tensor) -> Tensor:
        """Mean over pixels of the configured reconstruction loss, one value per image (n,)."""
        output = output.float()
        if self.reconstruction_loss == "bce":
            loss = F.binary_cross_entropy_with_logits(output, (images.float() + 1) / 2, reduction="none")
        else:
            loss = (torch.tanh(output) - images.float()).pow(2)
        return loss.flatten(1).mean(1)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        images, _ = self._batch(batch)
        z = self.encoder(images)
        loss = self.reconstruction_loss_per_image(self.decoder(z), images).mean()
        self._track_codes(z.detach())
        self.log_train({"train/loss": loss.detach(), "train/reconstruction": loss.detach()})
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        images, _ = self._batch(batch)
        output = self.decoder(self.encoder(images))
        logs = {
            f"{stage}/reconstruction": self.reconstruction_loss_per_image(output, images).mean(),
            f"{stage}/mse": (self.output_to_image(output) - images).pow(2).mean(),
        }
        self.log_dict(logs, batch_size=images.shape[0], sync_dist=True)

    # -- sampling from the fitted code distribution ------------------------------------------
    @torch.no_grad()
    def _track_codes(self, z: Tensor) -> None:
        # Exponential moving averages of the first two moments of the codes (Ghosh et al. 2019,
        # Sec. 4: fit a density to the codes after/while training, then sample it).
        # In fp32 outside autocast: under mixed precision `z.T @ z` would otherwise come back in
        # bf16/fp16 and the fp32 buffers could not take it (nor should they lose the precision).
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            m = self.latent_momentum
            self.code_mean.lerp_(z.mean(0), m)
            self.code_second_moment.lerp_(z.T @ z / z.shape[0], m)

    def _code_gaussian(self) -> tuple[Tensor, Tensor]:
        mean = self.code_mean
        covariance = self.code_second_moment - torch.outer(mean, mean)
        # Symmetrise and add jitter: a running estimate can be slightly indefinite.
        covariance = (covariance + covariance.T) / 2 + 1e-5 * torch.eye(self.latent_dim, device=mean.device)
        return mean, covariance

    @torch.no_grad()
    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """Decode ``n`` codes drawn from the Gaussian fitted to the training codes."""
        mean, covariance = self._code_gaussian()
        factor, info = torch.linalg.cholesky_ex(covariance.double())
        if info.item() != 0:  # not positive definite: fall back to the diagonal
            factor = covariance.diagonal().clamp_min(1e-5).sqrt().diag().double()
        noise = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        z = mean + noise @ factor.T.to(noise.dtype)
        return self.decode(z, self.sample_labels(condition, n))

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size AutoEncoder (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 16, 16), latent_dim=4, hidden_channels=(4, 8))


def _check_positive(**values: float) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not value > 0:
            raise InvalidValue(f"model option {key}={value!r} is invalid: must be positive")
