"""Fixtures of the metric tests (defined in fixtures.py, shared with the callback tests)."""

from tests.genmodels.metrics.fixtures import (  # noqa: F401
    inception_weights,
    isolated_weights_and_cache,
    lenet_file,
    single_thread,
)
