"""Checkpoints by iteration, atomic saves, stale temp files, never a non-finite checkpoint."""

import os
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch

from genmodels import GAN
from genmodels.callbacks import AtomicCheckpointIO, IterationCheckpoint, StopAtIteration
from genmodels.callbacks.checkpoint import remove_stale_temp_files
from genmodels.callbacks.nonfinite import NonFiniteError
from tests.genmodels.helpers import loader


def _fit(tmp_path, iterations, every, **kwargs):
    model = GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(8,))
    ckpt = IterationCheckpoint(every_n_iterations=every, **kwargs)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, callbacks=[ckpt, StopAtIteration(iterations)], max_epochs=-1,
    )
    trainer.fit(model, loader(16, (1, 8, 8), 4))
    return trainer, model


def test_named_and_spaced_by_iteration_not_global_step(tmp_path):
    trainer, model = _fit(tmp_path, 7, 3)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    # global_step is 14 here; the files follow iterations 3, 6 and the final 7.
    assert names == ["iter_00000003.ckpt", "iter_00000006.ckpt", "iter_00000007.ckpt", "last.ckpt"]
    assert trainer.global_step == 14
    last = torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=True)
    assert last["genmodels"]["iteration"] == 7
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_keep_last_k_prunes_old_periodic_checkpoints(tmp_path):
    _fit(tmp_path, 8, 2, keep_last_k=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == ["iter_00000006.ckpt", "iter_00000008.ckpt", "last.ckpt"]


def test_interrupted_save_leaves_previous_checkpoint_loadable(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"value": torch.tensor(1)}, target)

    def killed_mid_write(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial bytes of a checkpoint")
        raise KeyboardInterrupt("job killed")

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"value": torch.tensor(2)}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True)["value"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_temp_files_of_killed_saves_are_removed_at_start_and_live_ones_kept(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # a PID whose process has exited: the writer of a save that was killed
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = folder / f".last.ckpt.tmp-{finished.pid}"
        live = folder / f".iter_00000004.ckpt.tmp-{sleeper.pid}"  # another process saving right now
        ours = folder / f".last.ckpt.tmp-{os.getpid()}"
        unrelated = folder / "notes.tmp-1"
        for path in (stale, live, ours, unrelated):
            path.write_bytes(b"PK partial")
        assert remove_stale_temp_files(folder) == [stale]
        assert not stale.exists() and live.exists() and ours.exists() and unrelated.exists()
        # IterationCheckpoint does it when training starts.
        stale.write_bytes(b"PK partial")
        _fit(tmp_path, 1, 0, dirpath=str(folder))
        assert not stale.exists() and live.exists()
        assert (folder / "last.ckpt").is_file()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_no_checkpoint_with_non_finite_weights_is_written(tmp_path):
    model = GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(8,))
    ckpt = IterationCheckpoint(every_n_iterations=1)

    class Poison(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if pl_module.iteration == 3:
                with torch.no_grad():
                    next(pl_module.generator.parameters()).view(-1)[0] = float("nan")

    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, callbacks=[Poison(), ckpt, StopAtIteration(6)], max_epochs=-1,
    )
    with pytest.raises(NonFiniteError, match=r"diverged at iteration 3: the weight generator\..* is not finite.*iteration 2"):
        trainer.fit(model, loader(16, (1, 8, 8), 4))
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("*.ckpt"))
    assert names == ["iter_00000001.ckpt", "iter_00000002.ckpt", "last.ckpt"]
    assert torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=True)["genmodels"]["iteration"] == 2
