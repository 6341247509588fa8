"""Tiny blocks run on one thread: a second one only adds contention on a busy machine."""

import pytest

from tests.genmodels.apps.control_helpers import single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield
