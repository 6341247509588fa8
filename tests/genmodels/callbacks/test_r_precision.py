"""RPrecision callback: logs R-precision and its candidate count against the iteration, leaves the
model's mode and the global RNG alone."""

import csv
import warnings

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from genmodels import StackGAN
from genmodels.callbacks import RPrecision
from genmodels.commands import main
from tests.genmodels.gans.text_helpers import TINY_TEXT, one_thread, shapes  # noqa: F401 (autouse fixture)


def test_logs_r_precision_every_n_iterations(tmp_path):
    damsm = tmp_path / "damsm.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train-damsm", "--dataset", "shapes", "--image-size", "16", "--synthetic-size", "32", "--batch-size", "8",
              "--num-workers", "0", "--epochs", "1", "--dim", "16", "--embedding-dim", "8", "--width", "4", "--out", str(damsm)])
        dm = shapes()
        model = StackGAN((3, 16, 16), dm.vocab, gf_dim=4, df_dim=4, condition_dim=8, **dict(TINY_TEXT, text_dim=16))
        callback = RPrecision(str(damsm), every_n_iterations=1, num_captions=8)
        trainer = pl.Trainer(max_steps=4, logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[callback])
        trainer.fit(model, dm)
        model.train()
        previous = dict(callback.last_value)
        rng = torch.get_rng_state()
        again = callback.evaluate(trainer, model)
    assert torch.equal(rng, torch.get_rng_state()) and model.training  # no RNG or mode side effects
    assert again == previous  # fixed seed: the same weights give the same value
    assert callback.last_value["val/r_precision_candidates"] == 8  # 8 captions: 1 true + 7 others at most
    with open(trainer.logger.log_dir + "/metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("val/r_precision_damsm")]
    assert [int(float(r["iteration"])) for r in rows] == [1, 2]
    assert all(0.0 <= float(r["val/r_precision_damsm"]) <= 1.0 for r in rows)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_captions >= 2"):
        RPrecision("x.ckpt", num_captions=1)
