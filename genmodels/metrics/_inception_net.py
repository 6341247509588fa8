"""torch-fidelity's InceptionV3 (``inception-v3-compat``), with weights we load ourselves.

Kept in its own module because importing torch-fidelity costs about a second; only building an
Inception extractor imports it.
"""

from __future__ import annotations

import io

import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

__all__ = ["TorchFidelityInceptionV3", "FEATURE_LAYERS"]

#: Both outputs of one forward pass: pool3 features (FID/KID/PR) and logits without bias (IS),
#: the layers torch-fidelity and torchmetrics use for these metrics.
FEATURE_LAYERS = ("2048", "logits_unbiased")


def _empty_state_dict_file() -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save({}, buffer)
    buffer.seek(0)
    return buffer


class TorchFidelityInceptionV3(FeatureExtractorInceptionV3):
    """The exact torch-fidelity network and forward (TF1-compatible bilinear resize to 299 without
    antialiasing, ``(x - 128) / 128``), built from a state dict instead of a file.

    torch-fidelity 0.4.0's constructor opens its weights file with ``torch.load(weights_only=False)``,
    i.e. it unpickles whatever the file holds. Here the constructor gets an empty placeholder that
    we serialized ourselves, and the real weights, read with ``weights_only=True`` by the caller,
    are loaded afterwards.

    Args:
        state_dict: the network's weights (keys of ``weights-inception-2015-12-05-6726825d.pth``).
    """

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        self._placeholder_load = True  # plain attribute: allowed before nn.Module.__init__
        super().__init__(
            "inception-v3-compat", list(FEATURE_LAYERS), feature_extractor_weights_path=_empty_state_dict_file()
        )
        self._placeholder_load = False
        self.load_state_dict(state_dict)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        if self._placeholder_load:
            return None  # the constructor's load of the empty placeholder
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
