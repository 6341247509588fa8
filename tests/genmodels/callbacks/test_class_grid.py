"""ClassGrid: one row per class, the same noise in every row, written under samples/classes/."""

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader

from genmodels import DCGAN, ConditionalGAN
from genmodels.callbacks import StopAtIteration
from genmodels.callbacks import ClassGrid
from tests.genmodels.apps.control_helpers import single_thread
from tests.genmodels.gans.test_cgan import Labelled


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def test_grid_has_one_row_per_class_with_shared_noise(tmp_path):
    model = ConditionalGAN(image_shape=(1, 16, 16), num_classes=3, latent_dim=8, feature_maps=4)
    grid = ClassGrid(every_n_iterations=2, samples_per_class=4, seed=5)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=-1, default_root_dir=tmp_path,
                         callbacks=[grid, StopAtIteration(2)], limit_val_batches=0)
    trainer.fit(model, DataLoader(Labelled(n=16, num_classes=3), batch_size=8))
    path = tmp_path / "samples/classes/iter_00000002.png"
    assert grid.last_path == path and path.is_file()
    assert Image.open(path).size == (4 * 18 + 2, 3 * 18 + 2)  # 4 columns, 3 rows of 16 px + 2 px padding

    rows = grid._sample(model.train()).view(3, 4, 1, 16, 16)
    assert model.training  # sampled in eval mode, then put back
    z = model.sample_latent(4, torch.Generator().manual_seed(5))
    for k in range(3):
        assert torch.equal(rows[k], model.eval().decode(z, k))


def test_refuses_unconditional_models():
    with pytest.raises(ValueError, match="ClassGrid needs a class-conditional model.*DCGAN has num_classes=0"):
        ClassGrid().setup(None, DCGAN(image_shape=(1, 16, 16), latent_dim=4, feature_maps=4), "fit")
