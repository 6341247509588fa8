"""Exact mid-epoch resume and rank sharding of the training order (ResumableSampler + state_dict)."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from datamodules import ResumableSampler
from tests.datamodules.conftest import IndexedDataModule, batch_indices, fake_trainer

BATCHES_PER_EPOCH = 10  # IndexedDataModule(num_train=40, batch_size=4)


def consume(dm: IndexedDataModule, batches, limit: int | None = None) -> list[list[int]]:
    """Feeds batches through the datamodule's hook as the training loop does; returns their indices."""
    seen = []
    for batch in batches:
        if limit is not None and len(seen) == limit:
            break
        seen.append(batch_indices(dm.on_before_batch_transfer(batch, 0)))
    return seen


def uninterrupted(num_epochs: int, **kwargs) -> list[list[list[int]]]:
    dm = IndexedDataModule(**kwargs)
    dm.trainer = fake_trainer()
    loader = dm.train_dataloader()
    epochs = []
    for epoch in range(num_epochs):
        loader.sampler.set_epoch(epoch)
        epochs.append(consume(dm, loader))
    return epochs


def test_uninterrupted_epochs_differ_and_cover_each_sample_once():
    epochs = uninterrupted(2)
    for batches in epochs:
        assert len(batches) == BATCHES_PER_EPOCH
        assert sorted(i for batch in batches for i in batch) == list(range(40))
    assert epochs[0] != epochs[1]
    assert uninterrupted(2) == epochs  # (seed, epoch) alone fix the order


@pytest.mark.parametrize("epoch,consumed", [(0, 3), (1, 7), (2, 1)])
def test_resume_yields_rest_of_epoch_then_the_uninterrupted_next_epoch(epoch, consumed):
    reference = uninterrupted(epoch + 2)

    dm = IndexedDataModule()
    dm.trainer = fake_trainer()
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    assert consume(dm, loader, limit=consumed) == reference[epoch][:consumed]
    state = dm.state_dict()
    assert state == {"epoch": epoch, "batches_consumed": consumed}
    state = json.loads(json.dumps(state))  # plain ints only

    resumed = IndexedDataModule()
    resumed.trainer = fake_trainer()
    resumed.load_state_dict(state)
    loader = resumed.train_dataloader()
    loader.sampler.set_epoch(epoch)  # Lightning re-sets the restored epoch before iterating
    assert consume(resumed, loader) == reference[epoch][consumed:]
    assert resumed.state_dict() == {"epoch": epoch, "batches_consumed": BATCHES_PER_EPOCH}
    # Lightning's counters are restored, so it expects the full epoch length (see ResumableSampler).
    assert len(loader) == BATCHES_PER_EPOCH

    loader.sampler.set_epoch(epoch + 1)
    assert consume(resumed, loader) == reference[epoch + 1]


def test_resume_skip_is_dropped_when_lightning_moves_to_another_epoch():
    reference = uninterrupted(3)
    dm = IndexedDataModule()
    dm.load_state_dict({"epoch": 1, "batches_consumed": 4})
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(2)
    assert consume(dm, loader) == reference[2]


def test_resume_at_end_of_epoch_starts_the_next_epoch():
    reference = uninterrupted(3)
    dm = IndexedDataModule()
    dm.trainer = fake_trainer()
    dm.load_state_dict({"epoch": 1, "batches_consumed": BATCHES_PER_EPOCH})
    loader = dm.train_dataloader()
    assert loader.sampler.epoch == 2
    assert dm.state_dict() == {"epoch": 2, "batches_consumed": 0}
    assert consume(dm, loader) == reference[2]  # also without a set_epoch call (eager workers)


def test_batches_are_counted_only_while_training():
    dm = IndexedDataModule()
    dm.trainer = fake_trainer(training=False)
    consume(dm, dm.train_dataloader(), limit=3)
    assert dm.state_dict()["batches_consumed"] == 0
    dm.trainer = None
    consume(dm, dm.val_dataloader())
    assert dm.state_dict()["batches_consumed"] == 0


def test_load_state_dict_rejects_malformed_state():
    with pytest.raises(ValueError, match="batches_consumed"):
        IndexedDataModule().load_state_dict({"epoch": 0})


def test_sampler_never_touches_the_global_rng():
    state = torch.get_rng_state()
    sampler = ResumableSampler(range(40), seed=3)
    sampler.set_epoch(5)
    list(sampler)
    assert torch.equal(torch.get_rng_state(), state)


def test_sampler_skip_applies_to_one_iteration_only():
    sampler = ResumableSampler(range(40), seed=0)
    full = list(sampler)
    sampler.resume_at(0, 12)
    assert sampler.remaining == 28 and len(sampler) == 40
    assert list(sampler) == full[12:]
    assert list(sampler) == full


def test_ranks_get_disjoint_equal_shards():
    shards = [list(ResumableSampler(range(41), num_replicas=2, rank=rank, seed=7)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 20  # drop_last: the odd sample out is dropped
    assert not set(shards[0]) & set(shards[1])
    assert set(shards[0]) | set(shards[1]) <= set(range(41))


def test_datamodule_shards_by_the_trainers_world():
    batches = []
    for rank in (0, 1):
        dm = IndexedDataModule(num_train=40)
        dm.trainer = fake_trainer(world_size=2, global_rank=rank)
        loader = dm.train_dataloader()
        assert isinstance(loader.sampler, ResumableSampler)
        assert (loader.sampler.num_replicas, loader.sampler.rank) == (2, rank)
        batches.append({i for batch in consume(dm, loader) for i in batch})
        assert len(loader) == 5
    assert not batches[0] & batches[1]
    assert batches[0] | batches[1] == set(range(40))


# --------------------------------------------------------------------------------------------------
# End to end with a real Trainer: checkpoint mid-epoch, resume, compare with an uninterrupted run.


class RecordingModel(pl.LightningModule):
    """Records the sample indices of every training batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[int, list[int]]] = []

    def training_step(self, batch, batch_idx):
        assert batch["image"].dtype == torch.float32  # converted on the device by the datamodule
        self.seen.append((self.current_epoch, batch_indices(batch)))
        return (self.weight - batch["image"].mean()) ** 2

    def validation_step(self, batch, batch_idx):
        self.log("val/mean", batch["image"].mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(root, max_epochs: int = 3, ckpt_path=None, callbacks=(), num_workers: int = 0, **trainer_kwargs):
    """Fits `RecordingModel` on `IndexedDataModule`; returns the batches it trained on."""
    model, dm = RecordingModel(), IndexedDataModule(num_workers=num_workers)
    defaults = dict(limit_val_batches=0, enable_checkpointing=bool(callbacks))
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        num_sanity_val_steps=0,
        default_root_dir=root,
        **{**defaults, **trainer_kwargs},
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model.seen


# Lightning cannot see that the datamodule restores the position, so it warns that it may not.
ignore_not_resumable_warning = pytest.mark.filterwarnings(
    "ignore:You're resuming from a checkpoint that ended before the epoch ended"
)
# The resumed runs deliberately leave out the checkpoint callback.
ignore_missing_callback_warning = pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")


@pytest.mark.parametrize(
    "stop_step,num_workers",
    [(3, 0), (17, 0), (BATCHES_PER_EPOCH, 0), (3, 1), (17, 1)],  # workers build the iterator eagerly
)
@ignore_not_resumable_warning
@ignore_missing_callback_warning
def test_trainer_mid_epoch_resume_equals_uninterrupted_run(tmp_path, stop_step, num_workers):
    reference = fit(tmp_path / "ref")
    assert len(reference) == 3 * BATCHES_PER_EPOCH

    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="stop", every_n_train_steps=stop_step)
    first = fit(tmp_path / "run", max_steps=stop_step, callbacks=[checkpoint], num_workers=num_workers)
    second = fit(tmp_path / "run", ckpt_path=tmp_path / "ckpt" / "stop.ckpt", num_workers=num_workers)
    assert first == reference[:stop_step]
    assert second == reference[stop_step:]


@ignore_not_resumable_warning
@ignore_missing_callback_warning
def test_trainer_resume_from_checkpoint_saved_after_mid_epoch_validation(tmp_path):
    validating = dict(val_check_interval=4, limit_val_batches=2)
    reference = fit(tmp_path / "ref", **validating)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="stop")  # saved on validation end
    fit(tmp_path / "run", max_steps=8, callbacks=[checkpoint], **validating)
    second = fit(tmp_path / "run", ckpt_path=tmp_path / "ckpt" / "stop.ckpt", **validating)
    assert second == reference[8:]


@ignore_missing_callback_warning
def test_trainer_resume_from_end_of_epoch_checkpoint(tmp_path):
    reference = fit(tmp_path / "ref")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="stop")  # saved at epoch end
    first = fit(tmp_path / "run", max_epochs=1, callbacks=[checkpoint])
    second = fit(tmp_path / "run", ckpt_path=tmp_path / "ckpt" / "stop.ckpt")
    assert first == reference[:BATCHES_PER_EPOCH]
    assert second == reference[BATCHES_PER_EPOCH:]
