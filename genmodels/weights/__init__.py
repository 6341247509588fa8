"""Official weights into genmodels models: the format registry behind ``genmodels import-weights``.

Each FORMAT names one way an author's code saves its networks, and the module that converts such
files into a genmodels model. A converter module exposes::

    def convert(fmt: str, sources: list[pathlib.Path], options: dict[str, str]) -> torch.nn.Module

returning the built genmodels model (a `GenerativeModel`, or the DAMSM encoders module) with the
weights loaded. It raises `WeightsError` with one line naming the option to give or the tensor that
does not fit. ``.pth`` files are read with ``torch.load(..., weights_only=True)``; NVlabs pickles
only through `genmodels.weights.unpickle`, which never runs the code they embed. What every
converter does the same way (reading a file, --option values, building the model, fitting each
tensor with the same one-line errors) is in `genmodels.weights.common`.

The command imports a converter module only when its format is asked for.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from genmodels.errors import UserError

__all__ = ["FORMATS", "WeightsError", "converter"]

#: FORMAT -> module that converts it (imported lazily by `converter`).
FORMATS: dict[str, str] = {
    "stylegan2-ada": "genmodels.weights.stylegan2_ada",
    "biggan-pytorch": "genmodels.weights.biggan_pytorch",
    "cyclegan": "genmodels.weights.junyanz",
    "pix2pix": "genmodels.weights.junyanz",
    "wgan": "genmodels.weights.wgan",
    "dfgan": "genmodels.weights.dfgan",
    "damsm": "genmodels.weights.damsm",
    "stackgan": "genmodels.weights.stackgan",
}


class WeightsError(UserError):
    """A source file that cannot become the asked-for model, explained in one line."""


def converter(fmt: str) -> ModuleType:
    """The converter module of ``fmt``; `WeightsError` for an unknown or not yet available format."""
    if fmt not in FORMATS:
        raise WeightsError(f"unknown weights format {fmt!r}; known formats: {', '.join(sorted(FORMATS))}")
    try:
        return importlib.import_module(FORMATS[fmt])
    except ModuleNotFoundError as err:
        if err.name == FORMATS[fmt]:
            raise WeightsError(f"the {fmt} importer is not part of this genmodels version") from err
        raise
