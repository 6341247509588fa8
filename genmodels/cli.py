"""The ``genmodels`` command: LightningCLI with run directories, safe resume and W&B defaults.

``genmodels fit|validate|test --config experiments/<model>/<dataset>.yaml`` builds the model and
datamodule from the YAML (subclass mode: ``model: {class_path, init_args}``), links the
datamodule's ``image_shape`` into the model, and trains with the project's callbacks:
`IterationCheckpoint` (``--checkpoint.*``), `SampleGrid` (``--sample_grid.*``) and
``--max_iterations`` (a budget in batches, not in optimizer steps).

Run directory (``--trainer.default_root_dir``, default ``runs/<experiment>``)::

    config.yaml              the resolved config of the first launch (never overwritten)
    config.resume-N.yaml     the resolved config of each later launch into the same directory
    checkpoints/last.ckpt    what ``--ckpt_path last`` resumes from; iter_XXXXXXXX.ckpt periodic
    samples/iter_XXXXXXXX.png
    wandb/ and wandb_run_id  the W&B run, continued by a resumed launch

Safety: a fresh launch refuses a directory that already holds checkpoints (nothing is
overwritten); ``--ckpt_path`` is opened with ``weights_only=True`` and checked to be a genmodels
checkpoint of the configured model class before Lightning touches it.
"""

from __future__ import annotations

import importlib
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_only

from genmodels.base import CheckpointMismatchError, GenerativeModel, check_checkpoint_class
from genmodels.checkpoints import CheckpointError, load_checkpoint_safely
from genmodels.conditioning import ConditionError
from genmodels.errors import UserError
from genmodels.callbacks import IterationCheckpoint, Preemption, SampleGrid, StopAtIteration
from genmodels.loggers import WandbLogger

__all__ = ["GenModelsCLI", "main", "load_checkpoint_safely", "CheckpointError", "ConfigError"]

RUN_ID_FILE = "wandb_run_id"
CHECKPOINT_DIR = "checkpoints"


class ConfigError(ValueError):
    """A config value that the model or datamodule rejects when it is built."""


def _first_reason(err: Exception) -> str:
    """The model's own message out of jsonargparse's union-type wrapping."""
    text = str(err)
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- ") and not line.startswith("- Expected a <class 'NoneType'>"):
            return line[2:]
    return text


class KeepingSaveConfigCallback(SaveConfigCallback):
    """Save the resolved config in the run directory without ever overwriting an earlier one.

    Lightning's SaveConfigCallback aborts when ``config.yaml`` exists, so a resume into the same
    directory fails; here the first launch's ``config.yaml`` is kept and each later launch is
    recorded as ``config.resume-N.yaml``.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        run_dir = Path(trainer.default_root_dir)
        name = self.config_filename
        if trainer.is_global_zero:
            run_dir.mkdir(parents=True, exist_ok=True)
            target = run_dir / name
            index = 1
            while target.exists():
                target = run_dir / f"{Path(name).stem}.resume-{index}{Path(name).suffix}"
                index += 1
            self.parser.save(self.config, target, skip_none=False, multifile=self.multifile, overwrite=False)
            self.saved_path = target
        self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)


class GenModelsCLI(LightningCLI):
    """LightningCLI for every genmodels model and datamodule (see the module docstring)."""

    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any) -> None:
        trainer_defaults = {
            "logger": {"class_path": "genmodels.loggers.WandbLogger", "init_args": {}},
            "log_every_n_steps": 50,
            "max_epochs": -1,
        }
        trainer_defaults.update(kwargs.pop("trainer_defaults", {}))
        super().__init__(
            model_class=GenerativeModel,
            subclass_mode_model=True,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_data=True,
            save_config_callback=KeepingSaveConfigCallback,
            trainer_defaults=trainer_defaults,
            seed_everything_default=0,
            auto_configure_optimizers=False,
            args=args,
            run=run,
            **kwargs,
        )

    # -- parser -------------------------------------------------------------------------------
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(IterationCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleGrid, "sample_grid")
        parser.add_argument(
            "--max_iterations",
            type=Optional[int],
            default=None,
            help="Stop after this many iterations (batches); trainer.max_steps counts optimizer steps.",
        )
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        # Text-to-image: the training captions' vocabulary (skipped for models without `vocab`).
        parser.link_arguments("data.vocab", "model.init_args.vocab", apply_on="instantiate")

    # -- before anything is built: run directory, resume, W&B identity -------------------------
    def _parse_ckpt_path(self) -> None:
        # Lightning reads the model's hyperparameters (class included) from --ckpt_path here and
        # silently replaces the configured model with them, so the run directory, "last" and the
        # checkpoint's safety and class are settled first.
        if self.config.get("subcommand"):
            self._prepare_run(self.config[self.config.subcommand])
        super()._parse_ckpt_path()

    def _prepare_run(self, config: Any) -> None:
        run_dir = _run_directory(config)
        if self.config.subcommand == "fit":
            config.ckpt_path = self._resolve_fit_ckpt_path(config.get("ckpt_path"), run_dir)
        ckpt_path = config.get("ckpt_path")
        if ckpt_path not in (None, "hpc", "best", "last"):
            checkpoint = load_checkpoint_safely(ckpt_path)
            check_checkpoint_class(checkpoint, _import_class(config.model.class_path))

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._configure_wandb(config, _run_directory(config), _experiment_name(config))

    def _resolve_fit_ckpt_path(self, ckpt_path: Optional[str], run_dir: Path) -> Optional[str]:
        last = run_dir / CHECKPOINT_DIR / "last.ckpt"
        if ckpt_path == "last":
            if last.is_file():
                return str(last)
            rank_zero_info(f"--ckpt_path last: no {last} yet, starting a new run in {run_dir}")
            ckpt_path = None
        if ckpt_path is None:
            existing = sorted((run_dir / CHECKPOINT_DIR).glob("*.ckpt"))
            if existing:
                raise CheckpointError(
                    f"{run_dir} already holds checkpoints ({', '.join(p.name for p in existing[:3])}...); "
                    "a new run there would overwrite them. Resume with --ckpt_path last, or start the new "
                    "run elsewhere with --trainer.default_root_dir"
                )
            return None
        if ckpt_path == "hpc" or ckpt_path == "best":
            return ckpt_path
        return str(ckpt_path)

    def _configure_wandb(self, config: Any, run_dir: Path, experiment: str) -> None:
        logger_cfg = config.trainer.get("logger")
        if not _is_wandb_config(logger_cfg):
            return
        init_args = logger_cfg.init_args
        resuming = self.subcommand == "fit" and config.get("ckpt_path") is not None
        if init_args.get("save_dir") in (None, "."):
            init_args.save_dir = str(run_dir)
        if not init_args.get("name"):
            init_args.name = experiment
        if not init_args.get("group"):
            init_args.group = config.model.class_path.rsplit(".", 1)[-1]
        if not init_args.get("id"):
            init_args.id = _run_id(run_dir, reuse=resuming or self.subcommand != "fit")
        if not init_args.get("tags"):
            init_args.tags = _run_tags(config, experiment)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as err:
            raise ConfigError(f"invalid configuration: {_first_reason(err)}") from err

    # -- fit with a checked checkpoint ----------------------------------------------------------
    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[pl.Callback]) -> pl.Trainer:
        # Added before the Trainer exists so Lightning orders it ahead of the checkpoint callback,
        # which then sees `should_stop` and saves the final batch from on_train_batch_end.
        max_iterations = self.config_init[self.subcommand].get("max_iterations") if self.subcommand else None
        if max_iterations is not None:
            callbacks = [*callbacks, StopAtIteration(max_iterations)]
        self.preemption = Preemption()
        return super()._instantiate_trainer(config, [*callbacks, self.preemption])

    def fit(self, model: pl.LightningModule, **kwargs: Any) -> None:
        # weights_only: a resume checkpoint holds tensors and plain values only (RNG states
        # included), so nothing in it needs to be unpickled as code.
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = True
        self.trainer.fit(model, **kwargs)
        if self.preemption.preempted_at is not None:
            rank_zero_info(
                f"preempted: stopped after iteration {self.preemption.preempted_at} with "
                f"{Path(self.trainer.default_root_dir) / CHECKPOINT_DIR / 'last.ckpt'}; "
                + ("the SLURM job was requeued" if self.preemption.requeued else "relaunch the same command with --ckpt_path last")
            )

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        finally:
            self._finish_run()

    @rank_zero_only
    def _finish_run(self) -> None:
        """Close the W&B run (so a later run in this process starts its own) and say where it is."""
        print(f"run directory: {self.trainer.default_root_dir}")
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                hint = logger.sync_hint()
                logger.experiment.finish()
                if hint:
                    print(hint)


def _run_directory(config: Any) -> Path:
    """``--trainer.default_root_dir``, defaulting to ``runs/<experiment>`` (stable across requeues)."""
    if not config.trainer.get("default_root_dir"):
        config.trainer.default_root_dir = str(Path("runs") / _experiment_name(config))
    return Path(config.trainer.default_root_dir)


def _experiment_name(config: Any) -> str:
    """``dcgan/digits`` for ``experiments/dcgan/digits.yaml``; the model class otherwise."""
    configs = config.get("config") or []
    if configs:
        path = Path(str(configs[-1])).resolve()
        parts = path.with_suffix("").parts
        if "experiments" in parts:
            return "/".join(parts[parts.index("experiments") + 1 :])
        return path.stem
    return config.model.class_path.rsplit(".", 1)[-1].lower()


def _run_tags(config: Any, experiment: str) -> list[str]:
    """Tags that let a W&B dashboard compare like with like: model, dataset, experiment, commit."""
    tags = [
        f"model:{config.model.class_path.rsplit('.', 1)[-1]}",
        f"data:{config.data.class_path.rsplit('.', 1)[-1].removesuffix('DataModule')}",
        f"experiment:{experiment}",
    ]
    commit = _git_commit()
    return tags + ([f"git:{commit}"] if commit else [])


def _git_commit() -> Optional[str]:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _import_class(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _is_wandb_config(logger_cfg: Any) -> bool:
    class_path = getattr(logger_cfg, "class_path", None) if logger_cfg not in (None, True, False) else None
    return bool(class_path) and class_path.rsplit(".", 1)[-1] == "WandbLogger"


def _run_id(run_dir: Path, reuse: bool) -> str:
    """The W&B run id stored in the run directory; a fresh run on rank 0 writes a new one."""
    id_file = run_dir / RUN_ID_FILE
    if reuse and id_file.is_file():
        return id_file.read_text().strip()
    if rank_zero_only.rank != 0:
        # Only rank 0 logs; other ranks never create a run, so any id will do.
        return id_file.read_text().strip() if id_file.is_file() else _new_run_id()
    run_id = _new_run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id + "\n")
    return run_id


def _new_run_id() -> str:
    """An 8-character id in W&B's alphabet (lowercase letters and digits)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


# Commands beyond LightningCLI's fit/validate/test: name -> (module, function taking argv).
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate": ("genmodels.metrics.commands", "evaluate_main"),
    "train-classifier": ("genmodels.metrics.commands", "train_classifier_main"),
    "prefetch-weights": ("genmodels.metrics.commands", "prefetch_weights_main"),
    "anomaly": ("genmodels.apps.anomaly", "anomaly_main"),
    "control": ("genmodels.apps.controllable", "control_main"),
    "sample": ("genmodels.apps.commands", "sample_main"),
    "interpolate": ("genmodels.apps.commands", "interpolate_main"),
    "export": ("genmodels.apps.commands", "export_main"),
    "serve": ("genmodels.apps.serve", "serve_main"),
    "augment": ("genmodels.apps.augment", "augment_main"),
    "compare": ("genmodels.compare", "compare_main"),
    "sweep": ("genmodels.sweep", "sweep_main"),
    "bias": ("genmodels.apps.bias", "bias_main"),
    "class-accuracy": ("genmodels.apps.scores", "accuracy_main"),
    "translate": ("genmodels.apps.translate", "translate_main"),
    "train-damsm": ("genmodels.text.commands", "train_damsm_main"),
    "r-precision": ("genmodels.text.commands", "r_precision_main"),
    "style-mix": ("genmodels.apps.style", "style_mix_main"),
    "truncation-grid": ("genmodels.apps.style", "truncation_grid_main"),
    "ppl": ("genmodels.apps.style", "ppl_main"),
    "check-data": ("genmodels.commands.check_data", "main"),
}


def main(args: Any = None) -> None:
    """Entry point of the ``genmodels`` console script and ``python -m genmodels``."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if argv and argv[0] in EXTRA_COMMANDS:
            module, function = EXTRA_COMMANDS[argv[0]]
            getattr(importlib.import_module(module), function)(argv[1:])
            return
        GenModelsCLI(args=argv)
    except (UserError, CheckpointError, CheckpointMismatchError, ConfigError, FileNotFoundError, ConditionError) as err:
        print(f"genmodels: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
