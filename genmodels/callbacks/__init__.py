"""Side effects of training, each isolated in its own callback."""

from genmodels.callbacks.checkpoint import AtomicCheckpointIO, IterationCheckpoint
from genmodels.callbacks.sample_grid import SampleGrid
from genmodels.callbacks.stop import StopAtIteration

__all__ = ["SampleGrid", "IterationCheckpoint", "AtomicCheckpointIO", "StopAtIteration"]
