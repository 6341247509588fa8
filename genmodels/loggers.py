"""Weights & Biases logging with the project's defaults.

- project ``genmodels``; the CLI sets ``group`` (the model), ``name`` (the experiment file),
  ``save_dir`` (the run directory) and ``id`` (persisted in the run directory, so a resumed or
  requeued job continues the same W&B run);
- with no credentials (no ``WANDB_API_KEY``, no netrc entry, no ``WANDB_MODE``), it runs offline
  instead of prompting or failing on a compute node, and the CLI prints the ``wandb sync`` hint;
- every scalar and sample grid is plotted against ``iteration`` (one per batch): each row carries
  it (values logged without one get the model's current iteration, so ``genmodels test`` after
  training lands at the run's last iteration), ``define_metric`` makes it every key's x-axis, and
  Lightning's ``trainer/global_step`` (one behind ``iteration`` for manual optimization) is not logged;
- a resumed or ``test``/``validate`` launch continues the same run; offline, its segment's W&B
  steps continue after the earlier segments' (wandb starts an offline segment at step 0, which a
  sync would put before the points already there), and `sync_hint` names every segment.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger

from genmodels.compat import wandb_init_settings, wandb_run_if_started
from genmodels.runs import offline_segments

__all__ = ["WandbLogger", "has_wandb_credentials"]


def has_wandb_credentials() -> bool:
    """True when wandb could log in without prompting (API key in the env or in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


class WandbLogger(_LightningWandbLogger):
    """Lightning's WandbLogger, offline by default without credentials, on an iteration x-axis.

    Args:
        name: run name (the CLI uses the experiment file, e.g. ``dcgan/digits``).
        save_dir: folder that receives ``wandb/`` (the CLI uses the run directory).
        project: W&B project.
        group: W&B group (the CLI uses the model class).
        id: run id; reuse it to continue a run.
        offline: ``None`` decides from ``WANDB_MODE`` and the available credentials.
        log_model: upload checkpoints as artifacts (not with ``offline``).
        **kwargs: passed to ``wandb.init``.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        save_dir: str = ".",
        project: str = "genmodels",
        group: Optional[str] = None,
        id: Optional[str] = None,
        offline: Optional[bool] = None,
        log_model: bool = False,
        **kwargs: Any,
    ) -> None:
        if offline is None:
            mode = os.environ.get("WANDB_MODE", "")
            offline = mode in ("offline", "dryrun") or (mode not in ("online", "disabled") and not has_wandb_credentials())
        # Absolute: wandb's service process keeps the working directory it started in, and resolves
        # a relative folder against that one, not against the caller's current one.
        super().__init__(
            name=name, save_dir=os.path.abspath(save_dir), project=project, group=group, id=id, offline=offline, log_model=log_model, **kwargs
        )
        # Lightning always passes `anonymous` (None when unset); wandb >= 0.19 then prints "The
        # anonymous setting has no effect" on every run.
        init_settings = wandb_init_settings(self)
        if init_settings.get("anonymous") is None:
            init_settings.pop("anonymous", None)
        self.offline = offline
        #: Returns the model's iteration; rows logged without ``iteration`` get it (GenerativeModel.setup sets it).
        self.iteration_of: Optional[Callable[[], int]] = None
        self._iteration_axis_defined = False

    @property
    def experiment(self) -> Any:
        run = super().experiment
        # getattr: off rank 0 the experiment is Lightning's DummyExperiment, without define_metric.
        if not self._iteration_axis_defined and callable(getattr(run, "define_metric", None)):
            run.define_metric("iteration")
            # Replaces Lightning's default ("*" against trainer/global_step): every key, the images
            # and the test/validate values included, is plotted against the iteration.
            run.define_metric("*", step_metric="iteration", step_sync=True)
            self._iteration_axis_defined = True
            self._continue_steps(run)
        return run

    def _continue_steps(self, run: Any) -> None:
        """Offline, start this segment's W&B steps after those of the run's earlier segments."""
        # getattr: off rank 0 the experiment is Lightning's DummyExperiment, whose attributes are no-op methods.
        if not self.offline or not isinstance(getattr(run, "dir", None), str):
            return
        here = Path(run.dir).parent  # <save_dir>/wandb/offline-run-<time>-<id>/files -> the segment
        earlier = [p for p in offline_segments(here.parent.parent, run.id) if p.resolve() != here.resolve()]
        last = _last_step(earlier)
        if last is not None:
            # Positions the next row at `last + 1` without writing one (commit=False): the next
            # log fills it and later ones count on from there.
            run.log({}, step=last + 1, commit=False)

    def log_metrics(self, metrics: Any, step: Optional[int] = None) -> None:
        """Log ``metrics`` in one row with its ``iteration`` (``step``, Lightning's global step, is not logged)."""
        metrics = dict(metrics)
        if "iteration" not in metrics and self.iteration_of is not None:
            metrics["iteration"] = float(self.iteration_of())
        super().log_metrics(metrics, step=None)

    def sync_hint(self) -> Optional[str]:
        """The command that uploads every offline segment of this run, or None when the run is online."""
        run = wandb_run_if_started(self)
        if not self.offline or run is None:
            return None
        segment = Path(os.path.normpath(run.dir)).parent  # <segment>/files -> <segment>
        segments = offline_segments(segment.parent.parent, run.id)
        run_dir = segment.parent.parent
        count = f"its {len(segments)} launches" if len(segments) > 1 else "it"
        return (f"W&B ran offline (no credentials). Upload {count} with:  genmodels sync {run_dir}   "
                f"(or: wandb sync {' '.join(str(p) for p in segments)})")


def _last_step(segments: list[Path]) -> Optional[int]:
    """The largest W&B step written in ``segments`` (None when they hold no history)."""
    from genmodels.runs import wandb_records

    last = None
    for segment in segments:
        for log in segment.glob("run-*.wandb"):
            for record in wandb_records(log):
                if record.WhichOneof("record_type") == "history":
                    step = record.history.step.num
                    last = step if last is None else max(last, step)
    return last
