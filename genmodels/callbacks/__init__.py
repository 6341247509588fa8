"""Side effects of training, each isolated in its own callback.

Periodic callbacks share `IterationCallback` (every N iterations, once per iteration value, and
at the end); picture callbacks share `ImageCallback` (rank 0, eval mode, PNG + `log_image`).
"""

from genmodels.callbacks.autoencoder_views import LatentInterpolation, LatentMap, ReconstructionGrid
from genmodels.callbacks.base import ImageCallback, IterationCallback, log_image
from genmodels.callbacks.caption_grid import CaptionGrid
from genmodels.callbacks.checkpoint import AtomicCheckpointIO, IterationCheckpoint
from genmodels.callbacks.class_grid import ClassGrid
from genmodels.callbacks.metrics import GenerativeMetrics
from genmodels.callbacks.mode_coverage import ModeCoverage
from genmodels.callbacks.preemption import Preemption
from genmodels.callbacks.progress import IterationProgressBar
from genmodels.callbacks.r_precision import RPrecision
from genmodels.callbacks.sample_grid import SampleGrid
from genmodels.callbacks.stop import StopAtIteration
from genmodels.callbacks.temperature_grid import TemperatureGrid
from genmodels.callbacks.translation_grid import TranslationGrid

__all__ = [
    "IterationCallback", "ImageCallback", "log_image",
    "GenerativeMetrics", "ModeCoverage", "Preemption", "IterationProgressBar", "SampleGrid", "IterationCheckpoint", "AtomicCheckpointIO",
    "StopAtIteration", "TranslationGrid", "CaptionGrid", "RPrecision", "ClassGrid", "TemperatureGrid",
    "ReconstructionGrid", "LatentInterpolation", "LatentMap",
]
