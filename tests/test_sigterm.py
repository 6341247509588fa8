"""SIGTERM to pytest during an in-process fit ends the whole session (tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.cli.common import ROOT


@pytest.mark.slow
def test_sigterm_during_an_in_process_fit_stops_the_session(tmp_path):
    tests = tmp_path / "test_probe.py"
    tests.write_text(textwrap.dedent('''
        import os, signal
        import pytorch_lightning as pl
        from tests.cli.common import TINY, TINY_DCGAN, fit

        class TermAt(pl.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if pl_module.iteration == 1:
                    os.kill(os.getpid(), signal.SIGTERM)  # as `timeout` would

        def test_a_fit(tmp_path):
            fit("dcgan/digits.yaml", tmp_path / "run", *TINY_DCGAN, "--data.init_args.image_size", "16",
                "--max_iterations", "30", "--trainer.enable_progress_bar", "false", "--sample_grid.every_n_iterations", "0", "--trainer.callbacks+=test_probe.TermAt")

        def test_never_reached():
            open(os.environ["REACHED"], "w").write("yes")
    '''))
    reached = tmp_path / "reached"
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}", REACHED=str(reached), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "--rootdir", str(ROOT),
                             "-c", str(ROOT / "pyproject.toml"), "--confcutdir", str(ROOT), str(tests)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 143, result.stdout[-2000:] + result.stderr[-2000:]
    assert not reached.exists()  # the session stopped after the interrupted test
