"""Sweep files for ``genmodels sweep FILE`` (`genmodels.commands.sweep`): run a W&B sweep file locally, or as a SLURM array, without the W&B service.

The same YAML serves both routes. With W&B: ``wandb sweep FILE`` then ``wandb agent ID``, which
runs the file's ``command`` with ``${args}`` expanded to ``--key=value``. Locally: this command
expands ``parameters`` (``method: grid`` = the Cartesian product; ``random`` = ``--count`` draws,
seeded) into the same ``genmodels fit`` argument lists, each run in its own directory under
``--root``, and either runs them one after another, prints them (``--dry-run``), or writes a
SLURM array script whose task i runs combination i.

Supported parameter specs: ``values``, ``value``, ``distribution: uniform | log_uniform_values |
int_uniform | q_uniform`` with ``min``/``max`` (and ``q``).
"""

from __future__ import annotations

import itertools
import math
import random
import shlex
from pathlib import Path
from typing import Any

from genmodels.errors import InvalidValue, UserError

__all__ = ["expand", "load_sweep", "fit_args", "write_slurm_array", "grid_size", "SweepError", "generative_metric_keys",
           "check_metric"]


class SweepError(ValueError, UserError):
    """A sweep file that cannot be expanded (one line naming the parameter)."""


#: Short names of the feature extractors in metric keys (``genmodels.metrics`` extractors' ``name``).
_EXTRACTOR_NAMES = {"inception": "inception", "classifier": "lenet"}
_METRICS_CALLBACK = "GenerativeMetrics"


def load_sweep(path: Path) -> dict:
    """A checked sweep file: a mapping with a ``parameters`` mapping of parameter specs.

    Read by `genmodels.yamlsafe.load_yaml` (duplicate keys and alias bombs refused); each ``values``
    is a non-empty list; class names a sweep varies are resolved against the allowlist as text
    (`genmodels.resolve`), so a sweep file cannot make a run import a module it names.
    """
    from genmodels.yamlsafe import load_yaml

    spec = load_yaml(Path(path))
    if not isinstance(spec, dict) or not isinstance(spec.get("parameters"), dict):
        raise SweepError(f"{path} is not a sweep file: it needs a 'parameters' mapping (got {type(spec).__name__})")
    if spec.get("method", "grid") not in ("grid", "random"):
        raise SweepError(f"{path}: method must be 'grid' or 'random' for a local sweep, got {spec.get('method')!r}")
    for name, p in spec["parameters"].items():
        if not isinstance(p, dict):
            raise SweepError(f"{path}: parameter {name} must be a mapping such as {{values: [...]}}, got {p!r}")
        if "values" in p and (not isinstance(p["values"], list) or not p["values"]):
            raise SweepError(f"{path}: parameter {name}: values must be a non-empty list, got {p['values']!r}")
        for value in p.get("values", []) + ([p["value"]] if "value" in p else []):
            _check_class_name(str(name), value, path)
    for arg in spec.get("local_args", []) or []:
        key, _, value = str(arg).lstrip("-").partition("=")
        if value:
            _check_class_name(key, value, path)
    check_metric(spec, path)
    return spec


def _check_class_name(name: str, value: Any, path: Path) -> None:
    from genmodels.resolve import resolve_datamodule, resolve_model

    where = f"{path} parameter {name}"
    if name == "model.class_path":
        resolve_model(value, where)
    elif name in ("data.class_path", "data.init_args.dataset"):
        resolve_datamodule(value, where)
    elif name.endswith("class_path"):
        raise SweepError(f"{where}: a local sweep varies model.class_path and data.class_path only (class names are "
                         "not imported from sweep files)")


def grid_size(spec: dict, count: int = 10) -> int:
    """How many runs `expand` would make, computed without making them."""
    if spec.get("method", "grid") != "grid":
        return count
    return math.prod(len(p["values"]) if "values" in p else 1 for p in spec["parameters"].values())


def _config_files(spec: dict) -> list[Path]:
    """The ``--config`` files the sweep's runs are launched with (``local_args``, else ``command``)."""
    args = [str(a) for a in spec.get("local_args") or spec.get("command") or []]
    files = [Path(args[i + 1]) for i, a in enumerate(args[:-1]) if a == "--config"]
    files += [Path(a.split("=", 1)[1]) for a in args if a.startswith("--config=")]
    return files


def generative_metric_keys(configs: list[Path]) -> set[str]:
    """Keys the `GenerativeMetrics` callbacks of these experiment YAMLs log (``val/fid_lenet``, ...)."""
    from genmodels.yamlsafe import load_yaml

    keys: set[str] = set()
    for config in configs:
        document = load_yaml(config) or {}
        callbacks = ((document.get("trainer") or {}).get("callbacks")) or []
        for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
            if not isinstance(callback, dict) or str(callback.get("class_path", "")).rsplit(".", 1)[-1] != _METRICS_CALLBACK:
                continue
            init = callback.get("init_args") or {}
            prefix = init.get("prefix", "val")
            extractor = _EXTRACTOR_NAMES.get(str(init.get("extractor", "inception")).split(":", 1)[0], "?")
            metrics = init.get("metrics", "fid")
            for metric in metrics.split(",") if isinstance(metrics, str) else metrics:
                metric = metric.strip().lower()
                names = ["precision", "recall"] if metric == "pr" else [metric]
                keys.update(f"{prefix}/{name}_{extractor}" for name in names)
    return keys


def _locate(config: Path, sweep_file: Any) -> Path:
    """A config path as the runs will see it (the working directory), else beside the sweep's ``experiments/``."""
    if config.is_absolute() or config.is_file():
        return config
    parents = Path(str(sweep_file)).resolve().parents
    for folder in parents:
        if folder.name == "experiments" and (folder.parent / config).is_file():
            return folder.parent / config
    return config


def check_metric(spec: dict, path: Any = "sweep") -> None:
    """Refuse a sweep that optimises a generative metric its launched configs never log.

    ``val/fid_*``, ``is_*``, ``kid_*``, ``precision_*``/``recall_*`` come only from a
    `GenerativeMetrics` callback; it must be in one of the ``--config`` files the runs start
    with. (Keys a model logs itself, e.g. ``val/bits_per_dim``, are not checked here.)
    """
    metric = (spec.get("metric") or {}).get("name")
    if not metric or not metric.split("/")[-1].startswith(("fid_", "is_", "kid_", "precision_", "recall_")):
        return
    configs = [_locate(c, path) for c in _config_files(spec)]
    missing = [c for c in configs if not c.is_file()]
    if missing:
        raise SweepError(f"{path}: config {missing[0]} not found (run the sweep from the repository root)")
    logged = generative_metric_keys(configs)
    if metric not in logged:
        raise SweepError(
            f"{path}: metric {metric!r} is never logged by {', '.join(map(str, configs)) or 'its configs'} "
            f"(they log {', '.join(sorted(logged)) or 'no generative metric'}); add a --config with a "
            f"genmodels.callbacks.GenerativeMetrics callback that logs it, or optimise one of those"
        )


def _draw(name: str, spec: dict, rng: random.Random) -> Any:
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return rng.choice(spec["values"])
    low, high, kind = spec.get("min"), spec.get("max"), spec.get("distribution", "uniform")
    if low is None or high is None:
        raise InvalidValue(f"parameter {name}: needs 'values', 'value' or 'min'/'max'")
    if kind == "log_uniform_values":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if kind == "int_uniform":
        return rng.randint(int(low), int(high))
    if kind == "q_uniform":
        q = spec.get("q", 1)
        return round(rng.uniform(low, high) / q) * q
    if kind == "uniform":
        return rng.uniform(low, high)
    raise InvalidValue(f"parameter {name}: distribution {kind!r} is not supported locally")


def expand(spec: dict, count: int = 10, seed: int = 0) -> list[dict[str, Any]]:
    """The parameter combinations of a sweep, in a stable order."""
    params = spec["parameters"]
    if spec.get("method", "grid") == "grid":
        names = list(params)
        choices = []
        for name in names:
            p = params[name]
            if "values" not in p and "value" not in p:
                raise InvalidValue(f"grid sweep parameter {name} needs 'values' (or 'value')")
            choices.append(p["values"] if "values" in p else [p["value"]])
        return [dict(zip(names, combo)) for combo in itertools.product(*choices)]
    rng = random.Random(seed)
    return [{name: _draw(name, p, rng) for name, p in params.items()} for _ in range(count)]


def fit_args(spec: dict, combination: dict[str, Any], run_dir: Path) -> list[str]:
    """The ``genmodels fit`` arguments of one run: the sweep's fixed args, the combination, its directory."""
    args = [str(a) for a in spec.get("local_args", [])]
    args += [f"--{name}={value}" for name, value in combination.items()]
    return ["fit", *args, "--trainer.default_root_dir", str(run_dir)]


def write_slurm_array(lines: list[list[str]], out: Path) -> Path:
    """A SLURM array script whose task i runs ``genmodels <lines[i]>``."""
    commands = "\n".join(f"  {i}) python -m genmodels {shlex.join(a)} ;;" for i, a in enumerate(lines))
    out.write_text(
        "#!/bin/bash\n"
        f"#SBATCH --array=0-{len(lines) - 1}\n"
        "#SBATCH --signal=SIGUSR1@90\n#SBATCH --requeue\n"
        "# One sweep combination per array task; each resumes from its own run directory.\n"
        'case "$SLURM_ARRAY_TASK_ID" in\n'
        f"{commands}\n"
        "esac\n"
    )
    return out
