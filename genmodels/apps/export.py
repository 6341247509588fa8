"""Opening models for the apps (safely) and exporting generators for inference.

Every app and command opens a user-supplied file through `open_checkpoint`
(``torch.load(weights_only=True)``: tensors and plain containers, no code) and rebuilds a model
only of a `GenerativeModel` class of the ``genmodels`` package (`genmodels.checkpoints`). A file
that would run code when unpickled is refused with a message saying that it needs trust.

``genmodels export`` writes what inference needs and nothing else:

- ``--format weights`` (default, ``generator.pt``): the model's state_dict without training-only
  networks (the discriminator; the raw generator too when an EMA generator is what ``sample``
  uses), its hyperparameters, the genmodels record (class, iteration) and a small ``config``
  (image shape, latent size, classes, latent space). It opens with ``weights_only=True`` and
  rebuilds the same model class, so every command and app accepts it in place of a training
  checkpoint. A model may name its own training-only submodules in ``export_exclude``.
- ``--format program`` (``generator.pt2``): a ``torch.export`` program of the prior-to-image map,
  ``images = program(z)`` or ``program(z, labels)`` with a dynamic batch size (z drawn from the
  model's prior; W models include their mapping), for runtimes without genmodels. It is checked
  against the eager model after export. ``torch.export.load`` may fall back to full unpickling,
  so open ``.pt2`` files only from sources you trust (genmodels itself never loads them).
  TorchScript is not offered: current torch releases deprecate it in favour of torch.export.
"""

from __future__ import annotations

import copy
import os
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from genmodels.apps.generation import num_classes
from genmodels.atomic import atomic_write
from genmodels.apps.latent import LatentSpace, latent_space
from genmodels.base import GenerativeModel
from genmodels.checkpoints import CheckpointError, build_model, load_checkpoint_safely, model_class_of, weights_digest
from genmodels.protocols import Autoencoder, LatentGenerator
from genmodels.errors import InvalidValue

__all__ = [
    "EXPORT_FORMAT",
    "open_checkpoint",
    "load_generative_model",
    "model_from_checkpoint",
    "export_weights",
    "export_program",
    "PriorToImage",
]

PathLike = Union[str, os.PathLike]

#: ``format`` of a file written by ``genmodels export --format weights``.
EXPORT_FORMAT = "genmodels.generator/v1"

TRUST_HINT = (
    "This file needs trust: loading it would run code stored in it, and genmodels opens only "
    "weights-only files. If you trust its origin, re-save its tensors and plain values (e.g. its "
    "state_dict) with torch.save and use that file."
)


def _needs_trust(err: CheckpointError) -> bool:
    # Only a file that holds pickled code needs trust; a corrupt one needs another copy.
    # getattr: CheckpointError carries a kind; the other load errors do not.
    return getattr(err, "kind", None) == "untrusted"


def open_checkpoint(path: PathLike) -> dict[str, Any]:
    """`load_checkpoint_safely`, with a clear note when the file would need trust to open."""
    try:
        return load_checkpoint_safely(path, map_location="cpu")
    except CheckpointError as err:
        if _needs_trust(err):
            raise CheckpointError(f"{err}. {TRUST_HINT}") from err
        raise


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------------------------------------
# Loading


def model_from_checkpoint(checkpoint: dict[str, Any], allowed_packages: tuple[str, ...] = ("genmodels",)) -> GenerativeModel:
    """Rebuild a model from a training checkpoint or an exported weights file (eval mode, CPU)."""
    model_class_of(checkpoint, allowed_packages)
    exported = checkpoint.get("format") == EXPORT_FORMAT
    model = build_model(checkpoint, strict=not exported)
    if exported:
        _load_exported_state(model, checkpoint["state_dict"], tuple(checkpoint.get("dropped_prefixes") or ()))
    model.iteration = int((checkpoint.get("genmodels") or {}).get("iteration", 0))
    return model.eval()


def _load_exported_state(model: nn.Module, state_dict: dict[str, Tensor], dropped: tuple[str, ...]) -> None:
    """Load a state_dict without its training-only parts; anything else missing is an error."""
    result = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(dropped)]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"exported weights do not fit {type(model).__name__}: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def load_generative_model(path: PathLike, device: Any = "cpu") -> GenerativeModel:
    """The model of a training checkpoint or of a ``genmodels export`` file, on ``device``, in eval mode.

    Raises:
        CheckpointError: missing, unreadable, unsafe (needs trust) or not a genmodels model.
    """
    return model_from_checkpoint(open_checkpoint(path)).to(device)


# ---------------------------------------------------------------------------------------------
# Weights-only export


def training_only_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes inference does not need: ``model.export_exclude`` or D (and raw G under EMA)."""
    # getattr: an optional declaration a model may add; the default rule below covers the rest.
    declared = getattr(model, "export_exclude", None)
    if declared is not None:
        return tuple(f"{name}." for name in declared)
    prefixes = []
    # getattr: GANs have a discriminator, other families none: drop it only where it exists.
    if isinstance(getattr(model, "discriminator", None), nn.Module):
        prefixes.append("discriminator.")
    # getattr: GANs trained with EMA sample from generator_ema; the raw generator is then training-only.
    if getattr(model, "generator_ema", None) is not None and isinstance(getattr(model, "generator", None), nn.Module):
        prefixes.append("generator.")
    return tuple(prefixes)


def export_config(model: GenerativeModel) -> dict[str, Any]:
    """What a user of the exported file needs to know about the model."""
    space = latent_space(model)
    return {
        "image_shape": [int(s) for s in model.image_shape],
        "latent_dim": int(model.latent_dim) if isinstance(model, (LatentGenerator, Autoencoder)) else 0,
        "num_classes": num_classes(model),
        "latent_space": space.kind if space is not None else None,
        # getattr: LatentGAN's prior (normal/uniform); other latent models draw from N(0, I).
        "latent_distribution": str(getattr(model, "latent_distribution", "normal")),
    }


def export_weights(model: GenerativeModel, path: PathLike, keep_training_networks: bool = False, extra: Optional[dict[str, Any]] = None) -> Path:
    """Write the weights-only generator file (temp file + rename) and check that it reopens safely.

    ``keep_training_networks`` keeps D (and the raw G) too, so ``fit --init_weights`` can fine-tune
    from the file (``genmodels import-weights`` writes such files); ``extra`` adds plain entries
    (e.g. where imported weights came from).
    """
    dropped = () if keep_training_networks else training_only_prefixes(model)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if not k.startswith(dropped)}
    payload = {
        "format": EXPORT_FORMAT,
        "state_dict": state,
        "hyper_parameters": dict(model.hparams),
        "genmodels": {"model_class": _qualified_name(type(model)), "iteration": int(model.iteration),
                      "weights_sha256": weights_digest(state)},
        "dropped_prefixes": list(dropped),
        "config": export_config(model),
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(payload, f))
    model_from_checkpoint(open_checkpoint(path))  # fails here, not at the user's, if it does not reopen
    return path


# ---------------------------------------------------------------------------------------------
# torch.export program


class PriorToImage(nn.Module):
    """``forward(z[, labels]) -> images``: prior draws through the latent space to images."""

    def __init__(self, model: GenerativeModel, space: Optional[LatentSpace] = None) -> None:
        super().__init__()
        self.model = model
        space = space or latent_space(model)
        if space is None:
            raise InvalidValue(f"{type(model).__name__} exposes no latent space to export (see genmodels.apps.latent)")
        self.__dict__["space"] = space  # not a submodule: it only holds a reference to `model`

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        codes = self.space.to_codes(z, labels)
        return self.space.decode(codes, labels)


def _example_inputs(model: GenerativeModel, space: LatentSpace, batch: int) -> tuple[Tensor, ...]:
    z = space.prior(batch, torch.Generator(device=space.device).manual_seed(0))
    classes = num_classes(model)
    if classes:
        return z, torch.arange(batch, device=z.device) % classes
    return (z,)


def is_exported_program(path: PathLike) -> bool:
    """Whether ``path`` is a ``torch.export`` archive (what ``genmodels export --format program`` writes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            # PT2 archives name their format in <root>/archive_format; older torch wrote serialized_exported_program*.
            names = [name.rsplit("/", 1)[-1] for name in archive.namelist()]
            return "archive_format" in names or any(n.startswith("serialized_exported_program") for n in names)
    except (OSError, zipfile.BadZipFile):
        return False


def sampling_only(model: GenerativeModel) -> GenerativeModel:
    """A shallow copy of ``model`` without the child networks that drawing images never calls.

    The program of ``--format program`` maps z to images; a GAN's discriminator (or the raw
    generator beside its EMA copy) would only add tensors to it. The children called are found by
    running the eager z -> images once with pre-forward hooks; `export_program` compares the
    exported program with this copy, and falls back to the whole model if the copy cannot trace.
    """
    called: set[str] = set()
    handles = [child.register_forward_pre_hook(lambda module, args, name=name: called.add(name))
               for name, child in model.named_children()]
    try:
        full = PriorToImage(model).eval()
        with torch.no_grad():
            full(*_example_inputs(model, full.space, 2))
    finally:
        for handle in handles:
            handle.remove()
    unused = {name for name, child in model.named_children()
              if name not in called and any(True for _ in child.parameters())}
    if not unused:
        return model
    slim = copy.copy(model)
    slim._modules = {name: child for name, child in model._modules.items() if name not in unused}
    return slim


def export_program(model: GenerativeModel, path: PathLike, check_batch: int = 3) -> tuple[Path, float]:
    """Export `PriorToImage` with ``torch.export`` (dynamic batch), save it, reload it and compare.

    Returns:
        The path and the largest absolute difference between the reloaded program's images and
        the eager model's on a batch of another size than the traced one.

    Raises:
        ValueError: the architecture cannot be exported (the message has torch's reason), or the
            exported program disagrees with the eager model.
    """
    model = model.eval()
    try:  # only what sampling needs; the whole model if a network is reached other than through forward
        module, program = _export(sampling_only(model))
    except Exception:  # torch raises many types for unsupported code
        module, program = None, None
    try:
        if program is None:
            module, program = _export(model)
    except Exception as err:  # torch raises many types for unsupported code
        raise InvalidValue(
            f"{type(model).__name__} cannot be exported with torch.export ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "use --format weights"
        ) from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    difference = _compare_program(path, module, _example_inputs(model, module.space, check_batch))
    if difference > 1e-5:
        raise InvalidValue(f"the exported program differs from the eager model by {difference:.3g}; not using {path}")
    return path, difference


def _export(model: GenerativeModel) -> tuple[PriorToImage, Any]:
    module = PriorToImage(model).eval()
    example = _example_inputs(model, module.space, 2)
    batch = torch.export.Dim("batch", min=1, max=65536)
    dynamic = tuple({0: batch} for _ in example)
    with torch.no_grad():
        return module, torch.export.export(module, example, dynamic_shapes=dynamic, strict=False)


@torch.no_grad()
def _compare_program(path: Path, module: PriorToImage, inputs: tuple[Tensor, ...]) -> float:
    reloaded = torch.export.load(path).module()
    return float((reloaded(*inputs) - module(*inputs)).abs().max())
