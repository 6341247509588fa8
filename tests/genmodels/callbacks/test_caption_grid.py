"""CaptionGrid: captioned PNG rows and a .txt of the captions under the run directory, validation
captions by default, W&B images carrying their captions, and the fixed noise across iterations."""

import warnings
from unittest.mock import MagicMock

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import WandbLogger

from genmodels import StackGAN
from genmodels.callbacks import CaptionGrid
from tests.genmodels.gans.text_helpers import TINY_TEXT, one_thread, shapes  # noqa: F401 (autouse fixture)


def _fit(callback, tmp_path, iterations=2):
    dm = shapes()
    model = StackGAN((3, 16, 16), dm.vocab, gf_dim=4, df_dim=4, condition_dim=8, **TINY_TEXT)
    trainer = pl.Trainer(max_steps=2 * iterations, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                         default_root_dir=str(tmp_path), callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, dm)
    return trainer, model, dm


def test_writes_captioned_rows_for_validation_captions(tmp_path):
    callback = CaptionGrid(every_n_iterations=1, num_captions=3, samples_per_caption=2)
    trainer, model, dm = _fit(callback, tmp_path)
    folder = tmp_path / "samples/captions"
    assert sorted(p.name for p in folder.glob("*.png")) == ["iter_00000001.png", "iter_00000002.png"]
    captions = [caps[0] for caps in dm.records("val").captions[:3]]
    assert (folder / "iter_00000002.txt").read_text().splitlines() == captions
    picture = np.asarray(Image.open(folder / "iter_00000002.png"))
    assert picture.shape == (3 * (12 + 20), 2 * 18 + 2, 3)
    # The same seeded noise at every call: the grid is a function of the weights only.
    first = callback._sample(model, captions)
    torch.testing.assert_close(callback._sample(model, captions), first)


def test_logs_one_wandb_image_per_caption():
    callback = CaptionGrid(captions=["a red circle", "a blue square"], samples_per_caption=2)
    logger = MagicMock(spec=WandbLogger)
    callback._log_wandb(logger, torch.zeros(4, 3, 8, 8), ["a red circle", "a blue square"], 7)
    logged = logger.experiment.log.call_args[0][0]
    assert logged["iteration"] == 7
    assert [image._caption for image in logged["samples/captions"]] == ["a red circle", "a blue square"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="captions is empty"):
        CaptionGrid(captions=[])
    with pytest.raises(ValueError, match="samples_per_caption"):
        CaptionGrid(samples_per_caption=0)
