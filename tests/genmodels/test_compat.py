"""Every private Lightning name `genmodels.compat` relies on still exists and means what it did."""

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger

from genmodels.compat import (
    LIGHTNING_CLI_HOOKS,
    MODEL_CHECKPOINT_HOOKS,
    _check_hooks,
    batches_that_stepped,
    check_private_hooks,
    ddp_kwargs_of,
    has_trainer,
    logger_will_write,
    save_model_checkpoint_now,
    wandb_run_started,
)


def test_logger_will_write_follows_log_every_n_steps(tmp_path):
    trainer = pl.Trainer(logger=pl.loggers.CSVLogger(tmp_path), log_every_n_steps=3, max_steps=1,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    assert hasattr(trainer, "_logger_connector"), "Lightning removed Trainer._logger_connector"
    trainer.training = True  # the fit loop is the active one, as inside training_step
    # Lightning counts the batch about to step: batch k+1 writes when (k + 1) % 3 == 0.
    trainer.fit_loop.epoch_loop._batches_that_stepped = 2
    assert logger_will_write(trainer) is True
    trainer.fit_loop.epoch_loop._batches_that_stepped = 3
    assert logger_will_write(trainer) is False


def test_logger_will_write_is_false_without_loggers():
    trainer = pl.Trainer(logger=False, max_steps=1, enable_progress_bar=False, enable_checkpointing=False)
    assert logger_will_write(trainer) is False


def test_ddp_kwargs_of_reads_the_strategy_keywords():
    strategy = pl.strategies.DDPStrategy(find_unused_parameters=True)
    assert ddp_kwargs_of(strategy) == {"find_unused_parameters": True}
    assert ddp_kwargs_of(pl.strategies.SingleDeviceStrategy("cpu")) is None


def test_batches_that_stepped_counts_optimizer_steps():
    trainer = pl.Trainer(logger=False, max_steps=1, enable_progress_bar=False, enable_checkpointing=False)
    assert batches_that_stepped(trainer) == 0
    trainer.fit_loop.epoch_loop._batches_that_stepped = 5
    assert batches_that_stepped(trainer) == 5


def test_has_trainer_follows_attachment():
    module = pl.LightningModule()
    assert has_trainer(module) is False
    trainer = pl.Trainer(logger=False, max_steps=1, enable_progress_bar=False, enable_checkpointing=False)
    module.trainer = trainer
    assert has_trainer(module) is True and module.trainer is trainer


def test_wandb_run_started_is_false_until_the_experiment_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    logger = WandbLogger(save_dir=str(tmp_path), project="compat")
    assert wandb_run_started(logger) is False
    logger.experiment  # starts the (offline) run
    try:
        assert wandb_run_started(logger) is True
    finally:
        logger.experiment.finish()


def test_the_private_hooks_genmodels_overrides_still_exist_with_their_parameters():
    check_private_hooks()  # raises with the name that changed
    for name, parameters in {**LIGHTNING_CLI_HOOKS, **MODEL_CHECKPOINT_HOOKS}.items():
        assert parameters is not None and name.startswith("_")
    with pytest.raises(RuntimeError, match="no longer exists"):
        _check_hooks(ModelCheckpoint, {"_not_a_lightning_method": ()})
    with pytest.raises(RuntimeError, match="now takes"):
        _check_hooks(ModelCheckpoint, {"_monitor_candidates": ("trainer", "extra")})


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_save_model_checkpoint_now_writes_top_k_and_last_and_skips_a_saved_step(tmp_path):
    trainer = pl.Trainer(logger=False, max_steps=2, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
    trainer.fit(_Tiny(), data)
    callback = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", save_last=True)
    save_model_checkpoint_now(callback, trainer)
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("*.ckpt")) == ["last.ckpt", "step=2.ckpt"]
    for path in (tmp_path / "ckpt").glob("*.ckpt"):
        path.unlink()
    save_model_checkpoint_now(callback, trainer)  # this global step is already saved: nothing written
    assert not any((tmp_path / "ckpt").glob("*.ckpt"))


def test_private_torch_names_behind_compat_still_work():
    from genmodels.compat import BATCH_NORM, lerp_all_, register_load_state_dict_pre_hook

    targets, sources = [torch.zeros(3), torch.ones(2)], [torch.full((3,), 4.0), torch.full((2,), 3.0)]
    lerp_all_(targets, sources, 0.25)
    assert torch.equal(targets[0], torch.full((3,), 1.0)) and torch.equal(targets[1], torch.full((2,), 1.5))
    assert all(issubclass(cls, BATCH_NORM) for cls in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.SyncBatchNorm))
    assert not issubclass(torch.nn.LayerNorm, BATCH_NORM)

    module, seen = torch.nn.Module(), []
    module.register_buffer("pool", torch.empty(0))

    def resize(state_dict, prefix, *args):
        seen.append(prefix)
        module.pool = torch.empty_like(state_dict[prefix + "pool"])

    register_load_state_dict_pre_hook(module, resize)
    module.load_state_dict({"pool": torch.arange(4.0)})
    assert seen == [""] and torch.equal(module.pool, torch.arange(4.0))


def test_wandb_run_if_started_does_not_start_a_run(tmp_path):
    from genmodels.compat import wandb_run_if_started

    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert wandb_run_if_started(logger) is None and not wandb_run_started(logger)


def test_torchmetrics_still_has_the_lpips_network_class():
    from torchmetrics.functional.image import lpips

    assert isinstance(lpips._LPIPS, type) and issubclass(lpips._LPIPS, torch.nn.Module)
