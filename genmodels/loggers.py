"""Weights & Biases logging with the project's defaults.

- project ``genmodels``; the CLI sets ``group`` (the model), ``name`` (the experiment file),
  ``save_dir`` (the run directory) and ``id`` (persisted in the run directory, so a resumed or
  requeued job continues the same W&B run);
- with no credentials (no ``WANDB_API_KEY``, no netrc entry, no ``WANDB_MODE``), it runs offline
  instead of prompting or failing on a compute node, and the CLI prints the ``wandb sync`` hint;
- every scalar and sample grid is plotted against ``iteration`` (one per batch), not against
  W&B's internal ``_step`` or ``trainer/global_step``.
"""

from __future__ import annotations

import netrc
import os
from typing import Any, Optional
from urllib.parse import urlparse

from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger

from genmodels.compat import wandb_run_if_started

__all__ = ["WandbLogger", "has_wandb_credentials"]

ITERATION_AXIS = ("train/*", "val/*", "test/*", "samples*")


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
        super().__init__(
            name=name, save_dir=save_dir, project=project, group=group, id=id, offline=offline, log_model=log_model, **kwargs
        )
        self.offline = offline
        self._iteration_axis_defined = False

    @property
    def experiment(self) -> Any:
        run = super().experiment
        # getattr: off rank 0 the experiment is Lightning's DummyExperiment, without define_metric.
        if not self._iteration_axis_defined and callable(getattr(run, "define_metric", None)):
            run.define_metric("iteration")
            for pattern in ITERATION_AXIS:
                run.define_metric(pattern, step_metric="iteration", step_sync=True)
            self._iteration_axis_defined = True
        return run

    def sync_hint(self) -> Optional[str]:
        """The command that uploads an offline run, or None when the run is online."""
        run = wandb_run_if_started(self)
        if not self.offline or run is None:
            return None
        run_dir = os.path.dirname(os.path.normpath(run.dir))  # <run>/files -> <run>
        return f"W&B ran offline (no credentials). Upload this run with:  wandb sync {run_dir}"
