"""The InceptionV3 extractor of FID/IS/KID, loaded from a local file and never downloaded at run time.

The network is torch-fidelity's ``inception-v3-compat`` (the TF "2015-12-05" InceptionV3 ported to
PyTorch), the one torchmetrics' FID/IS/KID use. Preprocessing follows the reference
implementations (TTUR, torch-fidelity, stylegan2-ada), so numbers are comparable with papers:

1. images in [-1, 1] become uint8 pixels ``round((x + 1) * 127.5)`` (torchmetrics' ``normalize``
   truncates instead; stylegan2-ada rounds);
2. grayscale is repeated to 3 channels;
3. TF1-exact bilinear resize to 299 x 299 *without* antialiasing (torchmetrics >= 1.8 defaults to
   ``antialias=True``, which changes FID at 32 px), then ``(x - 128) / 128``;
4. 2048-d pool3 features for FID/KID/precision-recall and 1008 ``logits_unbiased`` for IS;
5. float32 convolutions with TF32 and autocast disabled (TF32 is cuDNN's default on Ampere+);
   on a CPU the weights are kept channels-last (faster oneDNN kernels, features equal to ~1e-6).

Weights are looked up, in this order: an explicit path (``--weights``), the environment variable
``GENMODELS_INCEPTION_WEIGHTS``, and torch hub's cache
(``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth``, where torch-fidelity
and torchmetrics also look). With none of them, `resolve_inception_weights` fails at once with the
URL and the path to put the file at; ``genmodels prefetch-weights`` fetches and verifies it on a
machine with network (`prefetch_inception_weights`).
"""

from __future__ import annotations

import os
import urllib.error
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from torch import Tensor

from genmodels.metrics.extractors import (
    Features,
    FeatureExtractor,
    PathLike,
    check_images,
    check_sha256,
    quantize,
    register_extractor,
)
from genmodels.errors import InvalidValue, MissingFile, Unreachable

__all__ = [
    "INCEPTION_URL",
    "INCEPTION_FILENAME",
    "INCEPTION_SHA256_PREFIX",
    "WEIGHTS_ENV_VAR",
    "InceptionExtractor",
    "hub_weights_path",
    "resolve_inception_weights",
    "prefetch_inception_weights",
    "reference_numerics",
]

INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILENAME}"
#: torch hub convention: the file name carries the first 8 hex digits of its SHA-256.
INCEPTION_SHA256_PREFIX = "6726825d"
WEIGHTS_ENV_VAR = "GENMODELS_INCEPTION_WEIGHTS"


def hub_weights_path() -> Path:
    """Where torch hub (and so torch-fidelity and torchmetrics) keeps the downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME


def _missing_weights_message(tried: list[str]) -> str:
    hub = hub_weights_path()
    return (
        "InceptionV3 weights not found ("
        + "; ".join(tried)
        + "). Nothing is downloaded at run time. On a machine with internet run "
        f"`genmodels prefetch-weights --to DIR` (or download {INCEPTION_URL}), then put the file at {hub}, "
        f"or point --weights / ${WEIGHTS_ENV_VAR} at it"
    )


def resolve_inception_weights(weights: Optional[PathLike] = None) -> Path:
    """The Inception weights file: ``weights``, else ``$GENMODELS_INCEPTION_WEIGHTS``, else the hub cache.

    Raises:
        FileNotFoundError: the named file, or every candidate, is missing; the message gives the
            download URL and the path to put the file at.
    """
    if weights is not None:
        if not Path(weights).is_file():
            raise MissingFile(_missing_weights_message([f"--weights {weights} does not exist"]))
        return Path(weights)
    env = os.environ.get(WEIGHTS_ENV_VAR)
    if env:
        if not Path(env).is_file():
            raise MissingFile(_missing_weights_message([f"${WEIGHTS_ENV_VAR}={env} does not exist"]))
        return Path(env)
    hub = hub_weights_path()
    if hub.is_file():
        return hub
    raise MissingFile(
        _missing_weights_message(["no --weights", f"${WEIGHTS_ENV_VAR} not set", f"{hub} does not exist"])
    )


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError, ... for bad files
        raise InvalidValue(f"cannot read InceptionV3 weights {path} as a plain state dict: {err}") from err
    if not isinstance(state_dict, dict) or not all(isinstance(v, Tensor) for v in state_dict.values()):
        raise InvalidValue(f"{path} is not a state dict of tensors (expected {INCEPTION_FILENAME})")
    return state_dict


@contextmanager
def reference_numerics(device: torch.device) -> Iterator[None]:
    """float32 convolutions: no autocast, no TF32 (restored on exit), no gradients."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class InceptionExtractor(FeatureExtractor):
    """InceptionV3 pool3 features (2048-d) and ``logits_unbiased`` (1008) with reference preprocessing.

    Args:
        weights: weights file; ``None`` looks in ``$GENMODELS_INCEPTION_WEIGHTS`` then the hub cache.
        sha256: expected SHA-256 (or prefix) of the file; ``None`` accepts any file with the right
            layout (its hash is still recorded in the protocol).

    Raises:
        FileNotFoundError: no weights file (see `resolve_inception_weights`).
        ValueError: the file is not a state dict of this network, or its hash is not ``sha256``.
    """

    name = "inception"
    num_features = 2048
    num_logits = 1008
    channels = (1, 3)

    def __init__(self, weights: Optional[PathLike] = None, sha256: Optional[str] = None) -> None:
        super().__init__()
        from genmodels.metrics._inception_net import TorchFidelityInceptionV3

        self.weights_path = resolve_inception_weights(weights)
        self.sha256 = check_sha256(self.weights_path, sha256)
        state_dict = _load_state_dict(self.weights_path)
        try:
            # The layers' random initialization, overwritten at once, must not draw from the global
            # RNG: a run that builds an extractor then trains exactly like one that does not.
            with torch.random.fork_rng(devices=[]):
                self.net = TorchFidelityInceptionV3(state_dict)
        except RuntimeError as err:  # load_state_dict: missing / unexpected keys, wrong shapes
            raise InvalidValue(
                f"{self.weights_path} does not hold InceptionV3 weights ({INCEPTION_FILENAME}): {err}"
            ) from err
        self._layout: Optional[torch.memory_format] = None
        self.eval()

    def _use_layout_for(self, device: torch.device) -> None:
        # oneDNN runs these fp32 convolutions 1.4-2x faster on NHWC tensors on a CPU; features
        # move by ~1e-6 (any change of conv algorithm does, e.g. the batch size). GPUs keep the
        # NCHW layout torch-fidelity runs.
        layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        if layout != self._layout:
            self.net.to(memory_format=layout)
            self._layout = layout

    def forward(self, images: Tensor) -> Features:
        """``images`` (N, 1|3, H, W), float in [-1, 1] or uint8 -> `Features` (float32)."""
        check_images(images, self.channels)
        pixels = quantize(images)
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        self._use_layout_for(pixels.device)
        with reference_numerics(pixels.device):
            pool, logits = self.net(pixels)
        return Features(pool, logits)

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "network": "InceptionV3 2015-12-05 (torch-fidelity inception-v3-compat)",
            "weights_file": self.weights_path.name,
            "features": "pool3 (2048) for FID/KID/PR; logits_unbiased (1008) for IS",
            "preprocessing": "uint8 round((x+1)*127.5); gray repeated to RGB; TF1 bilinear resize to 299 "
            "(antialias off); (x-128)/128; fp32, no TF32",
        }


def prefetch_inception_weights(
    to: PathLike, url: str = INCEPTION_URL, sha256: str = INCEPTION_SHA256_PREFIX, progress: bool = True
) -> Path:
    """Download the Inception weights into folder ``to`` and verify their SHA-256 (login nodes).

    A file already there with the right hash is kept. The download goes to a temporary file in the
    same folder and is renamed only once verified, so an interrupted one leaves nothing behind.

    Returns:
        The path of the verified file, ``to/weights-inception-2015-12-05-6726825d.pth``.

    Raises:
        ConnectionError: no network / the URL cannot be fetched.
        ValueError: the downloaded file's hash is wrong.
    """
    target = Path(to) / INCEPTION_FILENAME
    if target.is_file():
        try:
            check_sha256(target, sha256)
            return target
        except ValueError:
            pass  # a stale or corrupt copy: fetch it again
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=sha256, progress=progress)
    except (urllib.error.URLError, OSError) as err:
        raise Unreachable(
            f"cannot download {url} ({err}); run this on a machine with internet (a login node) "
            f"and copy the file to {target}"
        ) from err
    except RuntimeError as err:  # torch hub's "invalid hash value"
        raise InvalidValue(f"the file downloaded from {url} failed verification: {err}") from err
    return target


@register_extractor("inception")
def build_inception(argument: str, weights: Optional[PathLike], sha256: Optional[str]) -> InceptionExtractor:
    """Spec ``inception``: the InceptionV3 of ``weights`` (see `InceptionExtractor`)."""
    if argument:
        raise InvalidValue(f"the inception extractor takes no argument, got 'inception:{argument}'; give weights with --weights")
    return InceptionExtractor(weights, sha256=sha256)
