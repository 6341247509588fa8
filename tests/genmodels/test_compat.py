"""Every private Lightning name `genmodels.compat` relies on still exists and means what it did."""

import pytorch_lightning as pl

from genmodels.compat import ddp_kwargs_of, logger_will_write


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
