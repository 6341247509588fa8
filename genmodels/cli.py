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

Safety (docs/reliability.md): a fresh launch refuses a directory that already holds checkpoints
(the run's, or ``--checkpoint.dirpath``: nothing is overwritten); ``--ckpt_path`` is opened with
``weights_only=True`` and the class names it records are compared, as strings, with the
configured model class before anything is imported: nothing a checkpoint names is ever imported,
and the configured class is never swapped for the checkpoint's. On resume the config wins: an
option that changes the networks' parameters is refused with the changed keys; any other change
is applied (optimizer settings included) and announced on one ``genmodels: warning:`` line.
A non-finite loss or weight stops the run (exit 2) without a checkpoint of it; Ctrl-C saves
``last.ckpt`` at the end of the batch and exits 130, a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import atexit
import importlib
import os
from argparse import ArgumentError
import secrets
import string
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_only

from genmodels.base import CheckpointMismatchError, GenerativeModel, check_checkpoint_class, rng_record_problem
from genmodels.checkpoints import CheckpointError, load_checkpoint_safely
from genmodels.compat import wandb_run_started
from genmodels.errors import UserError
from genmodels.callbacks import IterationCheckpoint, IterationProgressBar, Preemption, SampleGrid, StopAtIteration
from genmodels.callbacks.run import BatchKeys, ConfiguredOptimizerSettings, KeepingSaveConfigCallback
from genmodels.callbacks.nonfinite import NonFiniteGuard
from genmodels.callbacks.preemption import PreemptedBeforeStart
from genmodels.loggers import WandbLogger
from genmodels.rundir import RunLock, changed_settings, check_fork, checkpoint_settings, newest_checkpoint, recorded_config
import genmodels
from genmodels.console import quiet_third_party_noise

# jsonargparse lists (and resolves short names of) GenerativeModel subclasses among those imported.
genmodels.import_all()

__all__ = ["GenModelsCLI", "load_checkpoint_safely", "CheckpointError", "ConfigError"]

RUN_ID_FILE = "wandb_run_id"
CHECKPOINT_DIR = "checkpoints"
#: Exit status of a run stopped by Ctrl-C (after its checkpoint), as a shell reports SIGINT.
INTERRUPTED_EXIT_CODE = 130


class ConfigError(ValueError, UserError):
    """A config value that the model or datamodule rejects when it is built."""


def _one_line(message: str, limit: int = 400) -> str:
    """jsonargparse's indented, multi-line report as one line (the most specific parts first)."""
    noise = ("- Expected a <class 'NoneType'>", "Does not validate against any of the", "Subtypes:", "Errors:",
             "Given value type:")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = "; ".join(line.removeprefix("- ").rstrip(":") for line in lines if not line.startswith(noise))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_reason(err: Exception) -> str:
    """The model's own message out of jsonargparse's union-type wrapping."""
    text = str(err)
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- ") and not line.startswith("- Expected a <class 'NoneType'>"):
            return line[2:]
    return text


class GenModelsCLI(LightningCLI):
    """LightningCLI for every genmodels model and datamodule (see the module docstring)."""

    _resume: Optional["_ResumeRecord"] = None  # what --ckpt_path recorded, for the resume check

    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any) -> None:
        quiet_third_party_noise()
        trainer_defaults = {
            "logger": {"class_path": "genmodels.loggers.WandbLogger", "init_args": {}},
            "log_every_n_steps": 50,
            "max_epochs": -1,
        }
        trainer_defaults.update(kwargs.pop("trainer_defaults", {}))
        try:
            self._init_cli(trainer_defaults, args, run, **kwargs)
        except BaseException:  # the run directory's lock ends with this launch, errors included
            self._release_run_lock(failed=True)
            raise
        if run:
            self._release_run_lock()

    def _release_run_lock(self, failed: bool = False) -> None:
        lock = getattr(self, "_run_lock", None)
        if lock is not None and failed:
            lock.discard_if_unused()  # a launch refused before it wrote anything leaves no empty run folder
        elif lock is not None:
            lock.release()

    def _init_cli(self, trainer_defaults: dict[str, Any], args: Any, run: bool, **kwargs: Any) -> None:
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
    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        # Parse errors raise (and become one `genmodels: error:` line in `parse_arguments`)
        # instead of printing jsonargparse's usage and a multi-line report.
        kwargs.setdefault("exit_on_error", False)
        from genmodels.yamlsafe import install_config_checks

        install_config_checks()  # duplicate keys and alias bombs in --config files are refused
        return super().init_parser(**kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            raise ConfigError(_one_line(str(err))) from None

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(IterationCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleGrid, "sample_grid")
        parser.add_argument(
            "--max_iterations",
            type=Optional[int],
            default=None,
            help="Stop after this many iterations (batches); trainer.max_steps counts optimizer steps.",
        )
        parser.add_argument("--fork", type=bool, default=False,
                            help="Resume from a checkpoint older than the run's newest (the later ones are moved aside).")
        parser.add_argument(
            "--init_weights",
            type=Optional[str],
            default=None,
            help="fit only: start from the weights of this genmodels model file (e.g. from `genmodels import-weights`) "
            "to fine-tune; optimizer state and iteration start fresh. The model config must describe the same architecture.",
        )
        parser.link_arguments("data.image_shape", "model.init_args.image_shape", apply_on="instantiate")
        # Text-to-image: the training captions' vocabulary (skipped for models without `vocab`).
        parser.link_arguments("data.vocab", "model.init_args.vocab", apply_on="instantiate")

    # -- before anything is built: run directory, resume, W&B identity -------------------------
    def _parse_ckpt_path(self) -> None:
        # Lightning's version reads the checkpoint's hyperparameters here, imports whatever class
        # `hyper_parameters["_class_path"]` names and replaces the configured model (class and
        # arguments) with them. Here the config always wins: the checkpoint is only opened
        # (weights-only), its recorded class compared *as a string* with the configured one, and
        # its hyperparameters kept for the comparison in `after_instantiate_classes`. Nothing the
        # file names is ever imported.
        if self.config.get("subcommand"):
            self._prepare_run(self.config[self.config.subcommand])

    def _prepare_run(self, config: Any) -> None:
        run_dir = _run_directory(config)
        self._resume = None
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"--trainer.default_root_dir {run_dir} is a file, not a directory; give a directory for the run")
        checkpoint_dir = _checkpoint_directory(config, run_dir)
        _check_trainer_numbers(config)
        if self.config.subcommand == "fit":
            self._lock_run(run_dir)  # before anything is written there
            config.ckpt_path = self._resolve_fit_ckpt_path(config.get("ckpt_path"), run_dir, checkpoint_dir)
            if config.ckpt_path not in (None, "hpc"):
                check_fork(Path(config.ckpt_path), checkpoint_dir, bool(config.get("fork")))
        ckpt_path = config.get("ckpt_path")
        if ckpt_path not in (None, "hpc", "best", "last"):
            checkpoint = load_checkpoint_safely(ckpt_path)
            # The configured class is imported because the config names it; the checkpoint's
            # class names are only compared with it, as strings.
            model_class = _import_class(config.model.class_path)
            _check_recorded_class_paths(checkpoint, str(config.model.class_path), f"{model_class.__module__}.{model_class.__qualname__}")
            check_checkpoint_class(checkpoint, model_class)
            _check_record(checkpoint, ckpt_path)
            if self.config.subcommand == "fit":
                _announce_changed_settings(run_dir, config, checkpoint, ckpt_path)
            self._resume = _ResumeRecord.of(ckpt_path, checkpoint)
            del checkpoint

    def _lock_run(self, run_dir: Path) -> None:
        if rank_zero_only.rank != 0:  # DDP ranks > 0 join rank 0's run; rank 0 holds the lock
            return
        self._run_lock = RunLock(run_dir).acquire()
        atexit.register(self._run_lock.release)  # errors before the run ends leave a clean record too

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        init_weights = self.config[self.subcommand].get("init_weights") if self.subcommand else None
        if init_weights and self.subcommand == "fit":
            _load_initial_weights(self.model, init_weights, self.config.fit.get("ckpt_path"))
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger):  # rows without an iteration (validate, test) get the model's
                logger.iteration_of = lambda model=self.model: int(getattr(model, "iteration", 0))
        if self._resume is not None and self.subcommand == "fit":
            changes = self._resume.check_against(self.model)
            if changes:
                self.trainer.callbacks.append(ConfiguredOptimizerSettings())

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._configure_wandb(config, _run_directory(config), _experiment_name(config))

    def _resolve_fit_ckpt_path(self, ckpt_path: Optional[str], run_dir: Path, checkpoint_dir: Path) -> Optional[str]:
        # `checkpoint_dir` is where IterationCheckpoint writes (--checkpoint.dirpath, or
        # <run>/checkpoints): "last" and the fresh-launch guard both look there.
        last = checkpoint_dir / "last.ckpt"
        if ckpt_path == "last":
            newest = newest_checkpoint(checkpoint_dir)  # by iteration: last-v1.ckpt of an older version too
            if newest is not None:
                return str(newest[0])
            rank_zero_info(f"--ckpt_path last: no {last} yet, starting a new run in {run_dir}")
            ckpt_path = None
        if ckpt_path is None:
            existing = sorted(checkpoint_dir.glob("*.ckpt"))
            if existing:
                raise CheckpointError(
                    f"{checkpoint_dir} already holds checkpoints ({', '.join(p.name for p in existing[:3])}...); "
                    "a new run there would overwrite them. Resume with --ckpt_path last, or start the new "
                    "run elsewhere with --trainer.default_root_dir"
                    + (" and --checkpoint.dirpath" if checkpoint_dir != run_dir / CHECKPOINT_DIR else "")
                )
            return None
        if ckpt_path == "best":
            raise UserError("--ckpt_path best has no meaning for fit (checkpoints are kept by iteration, not by a "
                            "metric); resume with --ckpt_path last or a checkpoint file")
        if ckpt_path == "hpc":
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
        except (ValueError, MisconfigurationException) as err:
            raise ConfigError(f"invalid configuration: {_first_reason(err)}") from err

    # -- fit with a checked checkpoint ----------------------------------------------------------
    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[pl.Callback]) -> pl.Trainer:
        # Added before the Trainer exists so Lightning orders it ahead of the checkpoint callback,
        # which then sees `should_stop` and saves the final batch from on_train_batch_end.
        max_iterations = self.config_init[self.subcommand].get("max_iterations") if self.subcommand else None
        if max_iterations is not None:
            callbacks = [*callbacks, StopAtIteration(max_iterations)]
        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        if self.subcommand == "fit" and config.get("enable_progress_bar") is not False and not any(
                isinstance(c, ProgressBar) for c in [*callbacks, *configured]):
            callbacks = [*callbacks, IterationProgressBar()]  # counts iterations toward max_iterations, not epochs
        self.preemption = Preemption()
        self.batch_keys = BatchKeys()
        return super()._instantiate_trainer(config, [*callbacks, NonFiniteGuard(), self.batch_keys, self.preemption])

    def fit(self, model: pl.LightningModule, **kwargs: Any) -> None:
        # weights_only: a resume checkpoint holds tensors and plain values only (RNG states
        # included), so nothing in it needs to be unpickled as code.
        if kwargs.get("weights_only") is None:
            kwargs["weights_only"] = True
        self.preemption.arm()  # before the W&B run starts and the data is set up
        try:
            self.trainer.fit(model, **kwargs)
        except KeyError as err:
            raise self.batch_keys.explain(err, model, self.datamodule) or err
        except PreemptedBeforeStart as stop:
            how = "the SLURM job was requeued" if stop.requeued else "relaunch the same command"
            rank_zero_info(f"preempted before the first training step: no checkpoint was written (nothing was trained "
                           f"in this launch); {how}")
            return
        if self.preemption.preempted_at is not None:
            last = Path(self.trainer.checkpoint_callback.dirpath or self.trainer.default_root_dir) / "last.ckpt"
            how = "the SLURM job was requeued" if self.preemption.requeued else "relaunch the same command with --ckpt_path last"
            if self.preemption.interrupted:
                rank_zero_info(f"interrupted (Ctrl-C): stopped after iteration {self.preemption.preempted_at} "
                               f"with {last}; {how}")
                self._exit_code = INTERRUPTED_EXIT_CODE
            else:
                rank_zero_info(f"preempted: stopped after iteration {self.preemption.preempted_at} with {last}; {how}")

    def _run_subcommand(self, subcommand: str) -> None:
        self._exit_code = 0
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            self._forget_unstarted_run()
            raise
        finally:
            self._finish_run()
        if self._exit_code:
            raise SystemExit(self._exit_code)

    @rank_zero_only
    def _forget_unstarted_run(self) -> None:
        """A fresh run that failed before its first checkpoint leaves no run id behind (nothing to resume)."""
        if self.subcommand != "fit" or self._resume is not None:
            return
        config = self.config[self.subcommand]
        run_dir = _run_directory(config)
        if any(_checkpoint_directory(config, run_dir).glob("*.ckpt")) or (run_dir / "wandb").exists():
            return
        (run_dir / RUN_ID_FILE).unlink(missing_ok=True)
        lock = getattr(self, "_run_lock", None)  # getattr: set only once the run directory was locked
        if lock is not None:
            lock.discard()
        try:
            run_dir.rmdir()  # only when empty: the directory was made for this run
        except OSError:
            pass

    @rank_zero_only
    def _finish_run(self) -> None:
        """Close the W&B run (so a later run in this process starts its own) and say where it is."""
        if Path(self.trainer.default_root_dir).is_dir():  # not when a failed fresh run was cleared away
            print(f"run directory: {self.trainer.default_root_dir}")
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and wandb_run_started(logger):
                hint = logger.sync_hint()
                logger.experiment.finish()
                if hint:
                    print(hint)


def _check_trainer_numbers(config: Any) -> None:
    """Trainer numbers Lightning would reject with a traceback (or accept and misbehave on)."""
    accumulate = config.trainer.get("accumulate_grad_batches")
    if accumulate is not None and (isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1):
        raise ConfigError(f"--trainer.accumulate_grad_batches must be an integer >= 1, got {accumulate!r} (manual-"
                          "optimization models accumulate with their own accumulate_grad_batches option)")
    iterations = config.get("max_iterations")
    if iterations is not None and (isinstance(iterations, bool) or iterations < 1):
        raise ConfigError(f"--max_iterations must be an integer >= 1, got {iterations!r}")


def _announce_changed_settings(run_dir: Path, config: Any, checkpoint: dict[str, Any], ckpt_path: str) -> None:
    """One warning line per setting that differs from the run's last recorded config (batch size, seed, ...).

    Resuming into another run directory compares with what the checkpoint was trained with instead.
    """
    recorded = recorded_config(run_dir) or checkpoint_settings(checkpoint, Path(ckpt_path))
    if recorded is None:
        return
    current = config.as_dict() if hasattr(config, "as_dict") else dict(config)
    for change in changed_settings(recorded, current):
        _warn(f"resuming {run_dir} with a changed {change}")


def _load_initial_weights(model: pl.LightningModule, path: str, ckpt_path: Optional[str]) -> None:
    """``fit --init_weights``: the model's parameters and buffers from a genmodels model file, all or nothing."""
    if ckpt_path is not None:
        raise UserError("--init_weights starts a new run from given weights; --ckpt_path resumes one. Give one of them")
    checkpoint = load_checkpoint_safely(path)
    check_checkpoint_class(checkpoint, type(model))
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise UserError(f"--init_weights {path} holds no state_dict")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshapen:
        first = (misshapen or missing or unexpected)[0]
        raise UserError(
            f"--init_weights {path} does not fit the configured model ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(misshapen)} misshapen tensors, e.g. {first}); configure the file's architecture: {_architecture_hint(checkpoint)}"
        )
    model.load_state_dict(state)
    rank_zero_info(f"--init_weights: {len(state)} tensors from {path}")


def _architecture_hint(checkpoint: dict[str, Any]) -> str:
    hparams = {k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not str(k).startswith("_")}
    return ", ".join(f"{k}={v}" for k, v in list(hparams.items())[:12]) or "(the file records no hyperparameters)"


def _checkpoint_directory(config: Any, run_dir: Path) -> Path:
    """Where `IterationCheckpoint` writes: ``--checkpoint.dirpath``, else ``<run>/checkpoints``."""
    dirpath = (config.get("checkpoint") or {}).get("dirpath")
    return Path(dirpath).expanduser() if dirpath else run_dir / CHECKPOINT_DIR


def _check_recorded_class_paths(checkpoint: dict[str, Any], configured: str, qualified: str) -> None:
    """Refuse a checkpoint whose recorded class paths differ from the configured class, importing nothing.

    A checkpoint names its class twice: ``genmodels.model_class`` (written by `GenerativeModel`)
    and ``hyper_parameters._class_path`` (written by LightningCLI, as spelled in the config, e.g.
    ``genmodels.DCGAN``). Both are compared as strings with the configured class path and the
    configured class's qualified name; a genmodels alias of the same class is accepted.
    """
    meta = checkpoint.get("genmodels")
    hparams = checkpoint.get("hyper_parameters")
    recorded = [meta.get("model_class") if isinstance(meta, dict) else None,
                hparams.get("_class_path") if isinstance(hparams, dict) else None]
    short = qualified.rsplit(".", 1)[-1]
    for name in recorded:
        if name is None or name in (configured, qualified):
            continue
        alias = isinstance(name, str) and name.startswith("genmodels.") and name.rsplit(".", 1)[-1] == short
        if not alias:
            raise CheckpointMismatchError(
                f"the checkpoint was written by {name!r} but the config builds {qualified} ({configured}); nothing "
                "from the checkpoint was imported. Use the experiment config that produced it, or another --ckpt_path"
            )


@rank_zero_only
def _warn(message: str) -> None:
    """One line on stderr, like the errors (a Python warning would add its source location)."""
    print(f"genmodels: warning: {message}", file=sys.stderr, flush=True)


def _check_record(checkpoint: dict[str, Any], path: Any) -> None:
    """The genmodels record holds what a resume reads (an integer iteration, RNG states as tensors)."""
    meta = checkpoint["genmodels"]
    iteration = meta.get("iteration")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise CheckpointError(f"{path}: its genmodels record has iteration {iteration!r}, not a count; the file was not "
                              "written by `genmodels fit` or was edited")
    problem = rng_record_problem(meta)
    if problem is not None:
        raise CheckpointError(f"{path}: cannot resume its random streams: {problem}; the file is damaged or was "
                              "edited: resume from an earlier iter_*.ckpt")


def _plain(value: Any) -> Any:
    """Hyperparameter values in one comparable form (tuples and lists alike)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _ResumeRecord:
    """What the resume check needs from a checkpoint (its hyperparameters and tensor shapes)."""

    def __init__(self, path: str, hparams: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
        self.path, self.hparams, self.shapes = path, hparams, shapes

    @classmethod
    def of(cls, path: str, checkpoint: dict[str, Any]) -> "_ResumeRecord":
        hparams = checkpoint.get("hyper_parameters") or {}
        state = checkpoint.get("state_dict") or {}
        return cls(
            str(path),
            {k: _plain(v) for k, v in hparams.items() if not k.startswith("_")},
            {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)},
        )

    def check_against(self, model: pl.LightningModule) -> list[str]:
        """Refuse a config that changes the networks; return (and announce) the other changes.

        The config is never silently ignored: a change that alters parameter shapes or names
        cannot resume these weights and is refused with the changed keys; any other change
        (learning rates, schedule, loss weights, penalties) is applied and recorded in the run's
        ``config.resume-N.yaml``.
        """
        configured = {k: _plain(v) for k, v in dict(model.hparams).items() if not k.startswith("_")}
        # A checkpoint written before an option existed means the value of its time (`build_model`).
        recorded = {**getattr(type(model), "checkpoint_defaults", {}), **self.hparams}
        keys = sorted(set(configured) | set(recorded))
        changes = [
            f"{k}: {recorded.get(k, '<unset>')!r} -> {configured.get(k, '<unset>')!r}"
            for k in keys if configured.get(k, "<unset>") != recorded.get(k, "<unset>")
        ]
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        # Parameters define the networks; buffers may be state that grows in training (CycleGAN's
        # example sources, image pools) and are restored by the model's own load hooks.
        parameters = {name for name, _ in model.named_parameters()}
        compared = parameters | (set(self.shapes) - set(shapes))
        differing = sorted(k for k in compared if shapes.get(k) != self.shapes.get(k))
        if differing:
            first = differing[0]
            raise UserError(
                f"--ckpt_path {self.path}: the config changes the networks, so these weights cannot be resumed "
                f"({'; '.join(changes) or 'no hyperparameter differs; the datamodule changes the image shape?'}; "
                f"e.g. {first}: {list(self.shapes[first]) if first in self.shapes else 'absent'} in the checkpoint, "
                f"{list(shapes[first]) if first in shapes else 'absent'} configured). Resume with the checkpoint's "
                "values, or start a new run in another --trainer.default_root_dir"
            )
        for change in changes:  # one line each, like the datamodule and trainer settings
            _warn(f"resuming {self.path} with a changed model.init_args.{change} (applied; recorded in config.resume-N.yaml)")
        return changes


def _run_directory(config: Any) -> Path:
    """``--trainer.default_root_dir``, defaulting to ``runs/<experiment>`` (stable across requeues).

    Under ``wandb agent`` (a W&B sweep), each run defaults to ``runs/sweeps/<sweep id>/<run id>``.
    """
    if not config.trainer.get("default_root_dir"):
        agent = _sweep_agent_run()
        config.trainer.default_root_dir = str(
            Path("runs/sweeps", *agent) if agent else Path("runs") / _experiment_name(config))
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
    # getattr: importing the configured class by name: the lookup itself.
    return getattr(importlib.import_module(module), name)


def _is_wandb_config(logger_cfg: Any) -> bool:
    # getattr: a logger config is a Namespace with class_path, or a plain value (true/false/a list).
    class_path = getattr(logger_cfg, "class_path", None) if logger_cfg not in (None, True, False) else None
    return bool(class_path) and class_path.rsplit(".", 1)[-1] == "WandbLogger"


def _sweep_agent_run() -> Optional[tuple[str, str]]:
    """``(sweep id, run id)`` when ``wandb agent`` launched this process, else None."""
    sweep, run = os.environ.get("WANDB_SWEEP_ID"), os.environ.get("WANDB_RUN_ID")
    return (sweep, run) if sweep and run else None


def _run_id(run_dir: Path, reuse: bool) -> str:
    """The W&B run id stored in the run directory; a fresh run on rank 0 writes a new one.

    Under ``wandb agent`` the run id is the agent's (the sweep records its result under it).
    """
    id_file = run_dir / RUN_ID_FILE
    if reuse and id_file.is_file():
        return id_file.read_text().strip()
    agent = _sweep_agent_run()
    if agent is not None and rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(agent[1] + "\n")
        return agent[1]
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
