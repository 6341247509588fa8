"""Test-wide settings: W&B offline and quiet, deterministic threads, a tiny shared digits fixture."""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_CONSOLE", "off")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
os.environ.setdefault("WANDB_X_DISABLE_STATS", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

# `make test` runs two pytest-xdist workers on a 2-core machine: one thread each, so they do not
# oversubscribe the cores; a single process (`pytest` alone) uses both.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Every test runs in its own directory, so runs/, wandb/ and data/ never leak between tests."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / ".wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / ".wandb-config"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc credentials leak in
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield


@pytest.fixture(autouse=True)
def _sigterm_ends_the_suite(monkeypatch):
    """SIGTERM to the test runner (``timeout``, CI cancelling) ends the session, even mid-fit.

    An in-process fit installs handlers that turn SIGTERM into a clean stop (genmodels' Preemption:
    save and return; Lightning's: a SIGTERMException), so the test would end normally and pytest
    would go on with the next one. A real signal (a frame, not a direct call) is noted here and
    the session exits after this test with 143, as a terminated process does.
    """
    import signal

    from pytorch_lightning.trainer.connectors.signal_connector import _SignalConnector

    from genmodels.callbacks.preemption import Preemption

    received = []

    def watching(original):
        def handler(self, signum, frame):
            if signum == signal.SIGTERM and frame is not None:
                received.append(signum)
            return original(self, signum, frame)
        return handler

    monkeypatch.setattr(Preemption, "_record", watching(Preemption._record))
    monkeypatch.setattr(_SignalConnector, "_sigterm_notifier_fn", watching(_SignalConnector._sigterm_notifier_fn))
    yield
    if received:
        pytest.exit("the test runner received SIGTERM during an in-process fit; stopping the session", returncode=143)
