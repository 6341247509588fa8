"""IterationCallback: every N iterations, once per iteration value, and at the end; ImageCallback."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import genmodels.callbacks as callbacks
from genmodels import GAN
from genmodels.callbacks import IterationCallback, SampleGrid, StopAtIteration, TemperatureGrid
from tests.genmodels.helpers import RandomImages


class Counting(IterationCallback):
    def __init__(self, every_n_iterations: int, at_end: bool = True) -> None:
        super().__init__(every_n_iterations, at_end)
        self.fired: list[tuple[int, bool]] = []

    def fire(self, trainer, pl_module, at_end):
        self.fired.append((pl_module.iteration, at_end))


def _run(callback: IterationCallback, iterations: list[int]) -> None:
    model = SimpleNamespace(iteration=0)
    for batch_idx, iteration in enumerate(iterations):
        model.iteration = iteration
        callback.on_train_batch_end(None, model, None, None, batch_idx)
    callback.on_train_end(None, model)


def test_fires_every_n_iterations_once_per_value_and_at_the_end():
    callback = Counting(2)
    _run(callback, [0, 1, 1, 2, 2, 3, 3, 4, 4, 5])  # two batches per iteration (accumulation)
    assert callback.fired == [(2, False), (4, False), (5, True)]

    callback = Counting(2)
    _run(callback, [1, 2, 2, 3, 4, 4])  # the last iteration was just handled: no second action at the end
    assert callback.fired == [(2, False), (4, False)]

    callback = Counting(0, at_end=False)
    _run(callback, [1, 2, 3])
    assert callback.fired == []


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="every_n_iterations must be >= 0"):
        Counting(-1)


def _periodic_callbacks() -> list[type]:
    return sorted(
        (c for c in vars(callbacks).values() if inspect.isclass(c) and issubclass(c, IterationCallback)
         and not inspect.isabstract(c) and c not in (IterationCallback, callbacks.ImageCallback)),
        key=lambda c: c.__name__,
    )


_ARGS = {"ModeCoverage": {"classifier": "unused.pt"}, "RPrecision": {"damsm_ckpt": "unused.ckpt"}}


@pytest.mark.parametrize("cls", _periodic_callbacks(), ids=lambda c: c.__name__)
def test_every_periodic_callback_acts_once_when_an_iteration_is_seen_twice(cls, monkeypatch):
    callback = cls(**{**_ARGS.get(cls.__name__, {}), "every_n_iterations": 2})
    fired = []
    monkeypatch.setattr(callback, "fire", lambda trainer, module, at_end: fired.append((module.iteration, at_end)))
    trainer = SimpleNamespace(should_stop=False, callbacks=[], max_steps=-1, max_epochs=-1)
    model = SimpleNamespace(iteration=2)
    for batch_idx in range(3):  # accumulation or a manual-optimization model: the same iteration thrice
        callback.on_train_batch_end(trainer, model, None, None, batch_idx)
    assert fired == [(2, False)]


def test_the_callbacks_that_lost_the_guard_are_on_the_base():
    # TemperatureGrid and the autoencoder views used to act on every batch of an iteration.
    assert {"TemperatureGrid", "ReconstructionGrid", "LatentInterpolation", "LatentMap"} <= {c.__name__ for c in _periodic_callbacks()}


class _Recorder(pl.loggers.TensorBoardLogger):
    """A TensorBoardLogger whose writer records ``add_image`` calls instead of writing files."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.images: list[tuple[str, int]] = []
        self._experiment = _Writer(self.images)


class _Writer:
    """Stands in for a SummaryWriter: images are recorded, every other call does nothing (and returns the writer)."""

    def __init__(self, images: list) -> None:
        self.images = images

    def add_image(self, key, picture, global_step):
        self.images.append((key, global_step))

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


def test_one_picture_per_iteration_under_gradient_accumulation(tmp_path):
    # GAN: manual optimization with accumulate_grad_batches=2 (genmodels' own accumulation): two
    # batches per iteration, so on_train_batch_end sees each iteration twice.
    torch.manual_seed(0)
    model = GAN(image_shape=(1, 8, 8), latent_dim=4, generator_hidden=(8,), discriminator_hidden=(8,), dropout=0.0,
                accumulate_grad_batches=2)
    logger = _Recorder(tmp_path)
    trainer = pl.Trainer(accelerator="cpu", logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, max_epochs=-1, limit_val_batches=0,
                         callbacks=[SampleGrid(every_n_iterations=1, num_samples=4), StopAtIteration(3)])
    seen = []
    trainer.callbacks.append(_IterationSpy(seen))
    trainer.fit(model, DataLoader(RandomImages(32, (1, 8, 8)), batch_size=4))
    assert seen[:5] == [0, 1, 1, 2, 2]  # the premise: each iteration is seen by two batches
    assert logger.images == [("samples", 1), ("samples", 2), ("samples", 3)]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [f"iter_0000000{i}.png" for i in (1, 2, 3)]


class _IterationSpy(pl.Callback):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append(pl_module.iteration)


def test_image_callbacks_write_only_on_rank_zero(tmp_path):
    model = SimpleNamespace(iteration=4)
    trainer = SimpleNamespace(is_global_zero=False, default_root_dir=str(tmp_path), loggers=[])
    assert TemperatureGrid(every_n_iterations=1).write(trainer, model) is None
    assert not any(tmp_path.iterdir())
