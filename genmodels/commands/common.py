"""What every ``genmodels`` command shares: option spellings, the checkpoint loader, output and memory checks, errors.

- Options are spelled in kebab-case (``--num-samples``, ``--batch-size``); `option` also accepts
  the underscore spelling and any older name as hidden aliases, so existing scripts keep working.
- ``--ckpt`` is opened by one loader, `load_checkpoint_model`: a training checkpoint or a
  ``genmodels export`` file, ``torch.load(weights_only=True)``, rebuilt only for
  `GenerativeModel` classes of genmodels (`genmodels.apps.export`).
- Outputs are checked before any work starts (`check_output`, `check_output_dir`): never one of
  the command's inputs, never an existing file unless ``--overwrite``, and a place that can be
  written.
- Counts and sizes a user gives are priced before anything is allocated (`check_memory`), against
  ``--max-memory-gb``.
- A user error is a `UserError` with one line; the dispatcher (`genmodels.commands.invoke`) prints
  ``genmodels: error: <message>`` and exits 2. argparse's own errors take the same path (`UsageError`).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from genmodels.atomic import check_output_path
from genmodels.errors import UserError

__all__ = [
    "UsageError",
    "CommandParser",
    "option",
    "add_ckpt",
    "add_out",
    "add_overwrite",
    "add_seed",
    "add_device",
    "add_batch_size",
    "add_num_samples",
    "add_max_memory",
    "check_required",
    "positive_int",
    "nonnegative_int",
    "positive_float",
    "seed",
    "default_device",
    "resolve_device",
    "load_checkpoint_model",
    "check_output",
    "check_output_dir",
    "check_memory",
    "format_bytes",
    "DEFAULT_MAX_MEMORY_GB",
]

#: Default of ``--max-memory-gb``: what one command may hold in memory for what the user asked for.
DEFAULT_MAX_MEMORY_GB = 8.0
MAX_SEED = 2**32 - 1


class UsageError(UserError):
    """An argument argparse (or a command's own check) rejects; the message names the command."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{message} (see `{prog} --help`)")
        self.prog = prog


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line `UsageError`s instead of usage + exit."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(self.prog, message)


# ---------------------------------------------------------------------------------------------
# Options


def option(
    parser: argparse.ArgumentParser, name: str, *, aliases: Sequence[str] = (), required: bool = False, **kwargs: Any
) -> argparse.Action:
    """``parser.add_argument(name, ...)`` plus hidden aliases: the underscore spelling and ``aliases``.

    An alias writes the same destination; ``required`` is checked after parsing (`check_required`)
    so that either spelling satisfies it.
    """
    dest = kwargs.pop("dest", name.lstrip("-").replace("-", "_"))
    if required:
        kwargs["help"] = f"{kwargs.get('help', '')} (required)".strip()
        kwargs.setdefault("default", None)
        parser.set_defaults(_required=[*(parser.get_default("_required") or []), (name, dest)])
    action = parser.add_argument(name, dest=dest, **kwargs)
    hidden = {a for a in (name.replace("-", "_").replace("__", "--", 1), *aliases) if a != name}
    alias_kwargs = {k: v for k, v in kwargs.items() if k not in ("default", "help", "metavar")}
    for alias in sorted(hidden):
        parser.add_argument(alias, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **alias_kwargs)
    return action


def check_required(args: argparse.Namespace, prog: str) -> None:
    # getattr: argparse Namespaces hold only the options a parser added: dynamic by nature.
    missing = [name for name, dest in getattr(args, "_required", []) or [] if getattr(args, dest, None) is None]
    if missing:
        raise UsageError(prog, f"the following arguments are required: {', '.join(missing)}")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (the message says the range)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):  # inf would switch a bound off
        raise argparse.ArgumentTypeError(f"must be > 0 and finite, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def seed(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be in [0, {MAX_SEED}], got {value}")
    return value


# argparse names a type in its error ("invalid positive_int value"): give these readable names.
positive_int.__name__ = "positive integer"  # type: ignore[attr-defined]
nonnegative_int.__name__ = "non-negative integer"  # type: ignore[attr-defined]
positive_float.__name__ = "positive number"  # type: ignore[attr-defined]
nonnegative_float.__name__ = "non-negative number"  # type: ignore[attr-defined]
fraction.__name__ = "fraction"  # type: ignore[attr-defined]
seed.__name__ = "seed"  # type: ignore[attr-defined]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(args: argparse.Namespace) -> None:
    """Turn ``--device auto`` into the device it means on this machine."""
    if getattr(args, "device", None) == "auto":
        args.device = default_device()


def add_ckpt(
    parser: argparse.ArgumentParser, help: str = "training checkpoint or `genmodels export` weights file", aliases: Sequence[str] = ()
) -> None:
    option(parser, "--ckpt", required=True, aliases=aliases, metavar="PATH", help=help)


def add_out(
    parser: argparse.ArgumentParser, help: str, required: bool = True, default: Optional[str] = None, aliases: Sequence[str] = ()
) -> None:
    option(parser, "--out", type=nonempty_path, required=required, default=default, aliases=aliases, metavar="PATH", help=help)
    add_overwrite(parser)


def nonempty_path(text: str) -> str:
    """A path option's value: an empty string would mean the current folder, which nobody asks for."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path")
    return text


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    option(parser, "--overwrite", action="store_true", help="replace existing output files (never the command's inputs)")


def add_seed(parser: argparse.ArgumentParser, help: str = "random seed (the same seed gives the same result)", default: int = 0) -> None:
    option(parser, "--seed", type=seed, default=default, help=f"{help} (default {default})")


def add_device(parser: argparse.ArgumentParser, default: Optional[str] = None) -> None:
    # "auto" is resolved after parsing (`resolve_device`): asking torch here would make every
    # `--help` import it.
    option(parser, "--device", default=default or "auto",
           help="torch device: auto, cpu, cuda, cuda:1, ... (default auto: cuda when available, else cpu)" if default is None
           else f"torch device: cpu, cuda, cuda:1, ... (default {default})")


def add_batch_size(parser: argparse.ArgumentParser, default: int, help: str = "images per batch") -> None:
    option(parser, "--batch-size", type=positive_int, default=default, help=f"{help} (default {default})")


def add_num_samples(parser: argparse.ArgumentParser, default: Optional[int], help: str, aliases: Sequence[str] = ()) -> None:
    suffix = "" if default is None else f" (default {default})"
    option(parser, "--num-samples", type=positive_int, default=default, aliases=aliases, metavar="N", help=help + suffix)


def add_max_memory(parser: argparse.ArgumentParser) -> None:
    option(parser, "--max-memory-gb", type=positive_float, default=DEFAULT_MAX_MEMORY_GB, metavar="GB",
           help=f"refuse requests estimated to need more memory than this (default {DEFAULT_MAX_MEMORY_GB:g}); "
           "raise it on a machine that has the memory")


# ---------------------------------------------------------------------------------------------
# Checkpoints


def load_checkpoint_model(path: Any, device: Any = "cpu", flag: str = "--ckpt") -> Any:
    """The model of a training checkpoint or an exported weights file, on ``device``, in eval mode.

    The one loader of every command (weights-only, genmodels classes only); a missing file is a
    `UserError` naming the flag.
    """
    from genmodels.apps.export import is_exported_program, load_generative_model

    if not Path(path).exists():
        raise UserError(f"checkpoint not found: {path} ({flag}); pass a training checkpoint (runs/<name>/checkpoints/last.ckpt) "
                        "or a `genmodels export` file")
    if Path(path).is_dir():
        raise UserError(f"{flag} {path} is a directory; pass a checkpoint file (e.g. {Path(path) / 'checkpoints' / 'last.ckpt'})")
    if is_exported_program(path):
        raise UserError(
            f"{path} is a `genmodels export --format program` file: a torch.export program (z -> images) for use "
            "outside genmodels (torch.export.load(path).module()(z), or AOTInductor); this command reads a training "
            f"checkpoint or a `genmodels export --format weights` file: pass one of those to {flag}")
    return load_generative_model(path, device)


def require_model(model: Any, expected: Any, ckpt: Any, what: str) -> None:
    """Refuse a checkpoint of the wrong model family, naming what it holds and what is needed."""
    if not isinstance(model, expected):
        raise UserError(f"{ckpt} holds a {type(model).__name__}, but this command needs {what}; pass a checkpoint of such a model")


# ---------------------------------------------------------------------------------------------
# Outputs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _writable_parent(path: Path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable directory."""
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {path} cannot be written: {parent} is a file, not a directory; choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path} cannot be written: no write permission in {parent}; choose another {flag}")


def check_output(path: Any, *, inputs: Iterable[Any] = (), overwrite: bool = False, flag: str = "--out",
                 suffixes: Optional[Sequence[str]] = None) -> Path:
    """Check a file the command will write, before any work: returns it as a Path.

    Refused: a path that is one of ``inputs`` (even with ``--overwrite``), an existing file without
    ``--overwrite``, an existing directory, a wrong suffix, or a place that cannot be written.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} must end in {' or '.join(suffixes)}, got {path}")
    for source in inputs:
        if source is not None and (_same_file(path, Path(source)) or path.resolve() == Path(source).resolve()):
            raise UserError(f"{flag} {path} is also an input of this command ({source}); write the output elsewhere")
    if str(path) in ("", "."):
        raise UserError(f"{flag} is empty; give a file name")
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory; give a file name")
    check_output_path(path, flag)
    if path.exists() and not overwrite:
        raise UserError(f"{flag} {path} already exists; pass --overwrite to replace it, or choose another {flag}")
    _writable_parent(path, flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path} cannot be written (no permission); choose another {flag}")
    return path


def check_output_dir(path: Any, names: Iterable[Any] = (), *, inputs: Iterable[Any] = (), overwrite: bool = False,
                     flag: str = "--out") -> Path:
    """Check a folder the command will fill with ``names`` (relative paths), before any work.

    Refused: the folder is or lies inside an input folder, or one of the files it would write is
    an input; one of the files it would write exists (without ``--overwrite``); a file in its place; a place that cannot be written.
    """
    if str(path) == "":
        raise UserError(f"{flag} is empty; give a folder")
    path = Path(path)
    resolved = path.resolve()
    names = list(names)
    _check_collisions(names, flag)
    planned = {(resolved / name).resolve() for name in names}
    for source in inputs:
        if source is None:
            continue
        source = Path(source).resolve()
        if source.is_dir() and (resolved == source or source in resolved.parents):
            raise UserError(f"{flag} {path} is or lies inside the input folder {source}; write the output to a separate folder")
        if source in planned or resolved == source:
            raise UserError(f"{flag} {path} would write over the input {source}; write the output elsewhere")
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file; give a folder")
    _writable_parent(path / "x", flag)
    if not overwrite and path.is_dir():
        existing = [name for name in names if (path / name).exists()]
        if existing:
            shown = ", ".join(str(n) for n in existing[:3])
            raise UserError(f"{flag} {path} already holds {shown}{' ...' if len(existing) > 3 else ''}; "
                            f"pass --overwrite to replace them, or choose another {flag}")
    return path


def _check_collisions(names: list[Any], flag: str) -> None:
    """Two outputs with one name would leave one file and report two (photo.jpg, photo.png -> photo.png)."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        key = os.path.normcase(os.path.normpath(str(name)))
        if key in seen:
            raise UserError(f"{flag}: two outputs would both be written to {name} (outputs #{seen[key] + 1} and #{index + 1}); "
                            "rename one of the inputs so that their names differ")
        seen[key] = index


# ---------------------------------------------------------------------------------------------
# Memory


def format_bytes(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"


def check_memory(nbytes: float, what: str, fix: str, max_memory_gb: float) -> None:
    """Refuse, before allocating, a request estimated at ``nbytes`` over ``--max-memory-gb``.

    Args:
        nbytes: the estimate (what the request alone holds at once).
        what: what the estimate is of, naming the user's numbers ("--num-samples 10^9 images of 3x64x64").
        fix: which option to change ("lower --num-samples").
    """
    if not (max_memory_gb > 0 and math.isfinite(max_memory_gb)):
        raise UserError(f"--max-memory-gb must be a finite number > 0, got {max_memory_gb}")
    limit = max_memory_gb * 1024**3
    if not nbytes <= limit:  # a NaN estimate is refused too
        raise UserError(
            f"{what} needs about {format_bytes(nbytes)} of memory, over the --max-memory-gb {max_memory_gb:g} limit; "
            f"{fix}, or raise --max-memory-gb if this machine has the memory"
        )


def image_bytes(shape: Sequence[int], count: int = 1, bytes_per_value: int = 4) -> int:
    """Bytes of ``count`` images of ``shape`` (C, H, W) at ``bytes_per_value``."""
    total = int(count) * bytes_per_value
    for size in shape:
        total *= int(size)
    return total


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


Runner = Callable[[argparse.Namespace], Any]


# ---------------------------------------------------------------------------------------------
# Generation options (sample, interpolate, style-mix, truncation-grid)


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """--ckpt, --truncation, --condition, --device."""
    add_ckpt(parser)
    option(parser, "--truncation", type=positive_float, default=None, metavar="PSI",
           help="truncation: Z models resample |z| > PSI; W models move w toward the mean by PSI (default: none)")
    option(parser, "--condition", nargs="+", default=None, metavar="LABEL",
           help="class label(s), cycled over the images, or 'all' (conditional models)")
    add_device(parser)


def parse_condition(values: Optional[list[str]]) -> Any:
    """``--condition`` words -> None, ``"all"``, one int or a list of ints."""
    if not values:
        return None
    if values == ["all"]:
        return "all"
    try:
        labels = [int(v) for v in values]
    except ValueError:
        raise UserError(f"--condition takes class labels (integers) or 'all', got {' '.join(values)!r}") from None
    return labels[0] if len(labels) == 1 else labels
