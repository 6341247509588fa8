"""The one way from a name in a file to a class: an allowlist, resolved as text before any import.

Configs, a run's ``config.yaml``, the datamodule a checkpoint records, sweep files and ``--data NAME``
all name classes. Importing what a file names runs code (a ``evilmod.py`` beside the file, or on
``sys.path``, would run on import), so every name goes through `resolve_class`: it is compared, as
a string, with the tables below, and only a table entry's own module, which ships with this
package, is ever imported. Every spelling of an allowed class maps to its canonical name:

    DigitsDataModule, datamodules.DigitsDataModule, datamodules.digits.DigitsDataModule
        -> datamodules.DigitsDataModule
    DCGAN, genmodels.DCGAN, genmodels.gans.dcgan.DCGAN -> genmodels.DCGAN

``--data digits`` (a short name, any case) is accepted where a command takes a dataset name.
`build_datamodule` is the one builder from a ``{class_path, init_args}`` section to a datamodule,
used by every command that needs data; `import_class` the one import of a resolved name.

A new datamodule or model is added to `DATAMODULES` / `MODELS`; ``tests/genmodels/test_resolve.py``
checks the tables against ``datamodules.__all__`` and ``genmodels.__all__``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from genmodels.errors import UserError

__all__ = [
    "DATAMODULES", "MODELS", "ResolveError", "resolve_class", "resolve_datamodule", "resolve_model",
    "import_class", "datamodule_class", "model_class", "build_datamodule", "data_section",
]

#: Canonical datamodule name -> the module that defines it (as text: nothing is imported to check).
DATAMODULES: dict[str, str] = {
    "datamodules.DigitsDataModule": "datamodules.digits",
    "datamodules.MNISTDataModule": "datamodules.mnist",
    "datamodules.FashionMNISTDataModule": "datamodules.mnist",
    "datamodules.CIFAR10DataModule": "datamodules.cifar10",
    "datamodules.CelebADataModule": "datamodules.celeba",
    "datamodules.ImageFolderDataModule": "datamodules.image_folder",
    "datamodules.ClassSubsetDataModule": "datamodules.subset",
    "datamodules.TextImageDataModule": "datamodules.text_image",
    "datamodules.PairedImageDataModule": "datamodules.translation",
    "datamodules.UnpairedImageDataModule": "datamodules.translation",
}

#: Canonical model name -> the module that defines it.
MODELS: dict[str, str] = {
    "genmodels.GAN": "genmodels.gans.gan",
    "genmodels.DCGAN": "genmodels.gans.dcgan",
    "genmodels.WGAN": "genmodels.gans.wgan",
    "genmodels.WGANGP": "genmodels.gans.wgan_gp",
    "genmodels.ConditionalGAN": "genmodels.gans.cgan",
    "genmodels.BigGAN": "genmodels.gans.biggan",
    "genmodels.ProGAN": "genmodels.gans.progan",
    "genmodels.StyleGAN": "genmodels.gans.stylegan",
    "genmodels.StyleGAN2": "genmodels.gans.stylegan",
    "genmodels.Pix2Pix": "genmodels.gans.pix2pix",
    "genmodels.CycleGAN": "genmodels.gans.cyclegan",
    "genmodels.StackGAN": "genmodels.gans.stackgan",
    "genmodels.AttnGAN": "genmodels.gans.attngan",
    "genmodels.DFGAN": "genmodels.gans.dfgan",
    "genmodels.DAMSM": "genmodels.text.damsm",
    "genmodels.AutoEncoder": "genmodels.autoencoders.autoencoder",
    "genmodels.VAE": "genmodels.autoencoders.vae",
    "genmodels.RealNVP": "genmodels.likelihood.realnvp",
    "genmodels.Glow": "genmodels.likelihood.glow",
    "genmodels.PixelCNN": "genmodels.likelihood.pixelcnn",
    "genmodels.IndependentPixels": "genmodels.likelihood.independent_pixels",
}

_TABLES = {"datamodule": DATAMODULES, "model": MODELS}


class ResolveError(ValueError, UserError):
    """A class name that is not on the allowlist (nothing was imported)."""


def _spellings(table: Mapping[str, str]) -> dict[str, str]:
    """Every accepted spelling -> canonical name: ``Name``, ``package.Name``, ``package.module.Name``."""
    names: dict[str, str] = {}
    for canonical, module in table.items():
        short = canonical.rsplit(".", 1)[-1]
        for spelling in (canonical, short, f"{module}.{short}"):
            names[spelling] = canonical
    return names


def _short_names(table: Mapping[str, str]) -> dict[str, str]:
    """``digits`` / ``digitsdatamodule`` (any case) -> canonical, for ``--data NAME``."""
    names: dict[str, str] = {}
    for canonical in table:
        short = canonical.rsplit(".", 1)[-1]
        names[short.lower()] = canonical
        names[short.lower().removesuffix("datamodule")] = canonical
    return names


def resolve_class(name: Any, kind: str, where: str = "") -> str:
    """The canonical name of an allowed ``kind`` ("datamodule" or "model") class; text only, nothing imported.

    Raises:
        ResolveError: ``name`` is not a string spelling of an allowed class (one line, naming
            ``where`` it came from and what is allowed).
    """
    table = _TABLES[kind]
    if isinstance(name, str):
        text = name.strip()
        found = _spellings(table).get(text) or _short_names(table).get(text.lower())
        if found is not None:
            return found
    allowed = ", ".join(c.rsplit(".", 1)[-1] for c in table)
    prefix = f"{where}: " if where else ""
    raise ResolveError(
        f"{prefix}{kind} class {name!r} is not one genmodels builds (nothing was imported); allowed: {allowed}"
    )


def resolve_datamodule(name: Any, where: str = "") -> str:
    """`resolve_class` for datamodules (``--data digits`` and every class-path spelling)."""
    return resolve_class(name, "datamodule", where)


def resolve_model(name: Any, where: str = "") -> str:
    """`resolve_class` for models."""
    return resolve_class(name, "model", where)


def import_class(canonical: str) -> type:
    """Import a canonical name of `DATAMODULES` or `MODELS` (only the table's own module is imported)."""
    for table in _TABLES.values():
        if canonical in table:
            return getattr(importlib.import_module(table[canonical]), canonical.rsplit(".", 1)[-1])
    raise ResolveError(f"{canonical!r} is not a canonical allowed class name (resolve it first)")


def datamodule_class(name: Any, where: str = "") -> type:
    """The allowed datamodule class a name spells (resolved as text, then imported)."""
    return import_class(resolve_datamodule(name, where))


def model_class(name: Any, where: str = "") -> type:
    """The allowed model class a name spells (resolved as text, then imported)."""
    return import_class(resolve_model(name, where))


# ---------------------------------------------------------------------------------------------
# The one config -> datamodule builder.


def _canonical_section(section: Any, where: str) -> dict[str, Any]:
    """``{class_path, init_args}`` with every class name in it resolved (a subset's ``dataset`` too)."""
    if not isinstance(section, Mapping) or "class_path" not in section:
        raise UserError(f"{where} has no datamodule (expected 'data: {{class_path: ..., init_args: ...}}')")
    class_path = resolve_datamodule(section["class_path"], f"{where} data.class_path")
    init_args = section.get("init_args") or {}
    if not isinstance(init_args, Mapping):
        raise UserError(f"{where}: data.init_args must be a mapping, got {type(init_args).__name__}")
    # Lightning records private keys (``_class_path``, ``_instantiator``) beside the arguments.
    init_args = {str(k): v for k, v in init_args.items() if not str(k).startswith("_")}
    if class_path == "datamodules.ClassSubsetDataModule" and "dataset" in init_args:
        init_args["dataset"] = resolve_datamodule(init_args["dataset"], f"{where} data.init_args.dataset")
    return {"class_path": class_path, "init_args": init_args}


def data_section(config_path: Path) -> dict[str, Any]:
    """The ``data:`` section of an experiment YAML / run ``config.yaml``, or the file itself if it is one."""
    from genmodels.yamlsafe import load_yaml

    if not config_path.is_file():
        raise UserError(f"config file not found: {config_path}")
    document = load_yaml(config_path)
    section = document.get("data", document) if isinstance(document, dict) else None
    if not isinstance(section, dict) or "class_path" not in section:
        raise UserError(f"{config_path} has no datamodule (expected 'data: {{class_path: ..., init_args: ...}}')")
    return section


def build_datamodule(
    source: Any,
    overrides: Sequence[str] = (),
    init_args: Optional[Mapping[str, Any]] = None,
    where: Optional[str] = None,
) -> Any:
    """The datamodule of a config: a YAML path (its ``data:`` section) or a ``{class_path, init_args}`` dict.

    Every class name is resolved against `DATAMODULES` as text first; only then is the class
    imported and built, by jsonargparse as ``genmodels fit`` builds it (so types are checked the
    same way). ``overrides`` are ``--data.init_args.KEY VALUE`` command-line strings;
    ``init_args`` replaces arguments after them (e.g. ``{"data_dir": ...}``).

    Raises:
        UserError: an unknown class, an argument the class rejects, a missing or invalid file.
    """
    if isinstance(source, (str, Path)):
        where = where or str(source)
        section = data_section(Path(source))
    else:
        where = where or "the datamodule section"
        section = source
    section = _canonical_section(section, where)
    section["init_args"].update(dict(init_args or {}))
    foreign = [arg for arg in overrides if arg.startswith("--") and not arg.startswith("--data.")]
    if foreign:
        raise UserError(f"{where}: this command only takes --data.* overrides, got {foreign[0]}")
    for i, arg in enumerate(overrides):
        if arg in ("--data", "--data.class_path") or arg.startswith(("--data=", "--data.class_path=")):
            value = arg.split("=", 1)[1] if "=" in arg else (overrides[i + 1] if i + 1 < len(overrides) else "")
            resolve_datamodule(value, arg.split("=", 1)[0])
    import_class(section["class_path"])  # the allowed module, before jsonargparse looks the name up
    return _instantiate(section, list(overrides), where)


def _instantiate(section: dict[str, Any], overrides: list[str], where: str) -> Any:
    import yaml
    from jsonargparse import ArgumentParser
    from pytorch_lightning import LightningDataModule

    parser = ArgumentParser(exit_on_error=False, prog="genmodels")
    parser.add_subclass_arguments(LightningDataModule, "data", required=True, fail_untyped=False)
    try:
        namespace = parser.parse_args(["--data", yaml.safe_dump(section), *overrides])
        data = namespace.data
        resolve_datamodule(data.class_path, f"{where} data.class_path")
        return parser.instantiate_classes(namespace).data
    except UserError:
        raise
    except (ValueError, TypeError, KeyError) as err:  # jsonargparse's ArgumentError is a ValueError
        raise UserError(f"invalid data: section in {where}: {_first_line(err)}") from None
    except Exception as err:
        if type(err).__name__ == "ArgumentError":
            raise UserError(f"invalid data: section in {where}: {_first_line(err)}") from None
        raise


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reasons = [line[2:] for line in lines if line.startswith("- ") and "NoneType" not in line]
    return (reasons or lines or [type(err).__name__])[0]
