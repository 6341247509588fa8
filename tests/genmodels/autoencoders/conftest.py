"""Single-threaded torch for this family's tests.

The networks here are tiny (4-32 channels, 16 px): each op is microseconds of work, less than the
cost of an OpenMP fork/join, and on a loaded 2-core machine every barrier can wait a scheduler
slice (measured: a 20k-element exp took 15 ms on 2 threads, 15 us on 1).
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
