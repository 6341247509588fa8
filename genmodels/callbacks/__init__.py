"""Side effects of training, each isolated in its own callback."""

from genmodels.callbacks.caption_grid import CaptionGrid
from genmodels.callbacks.checkpoint import AtomicCheckpointIO, IterationCheckpoint
from genmodels.callbacks.metrics import GenerativeMetrics
from genmodels.callbacks.mode_coverage import ModeCoverage
from genmodels.callbacks.preemption import Preemption
from genmodels.callbacks.r_precision import RPrecision
from genmodels.callbacks.sample_grid import SampleGrid
from genmodels.callbacks.stop import StopAtIteration
from genmodels.callbacks.translation_grid import TranslationGrid

__all__ = [
    "GenerativeMetrics", "ModeCoverage", "Preemption", "SampleGrid", "IterationCheckpoint", "AtomicCheckpointIO",
    "StopAtIteration", "TranslationGrid", "CaptionGrid", "RPrecision",
]
