"""Files the command tests share: tiny DCGAN and cGAN checkpoints, a file that is not a checkpoint,
a folder with one image, and a path that cannot be written (its parent is a regular file, which
refuses writes even for root)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from genmodels import DCGAN
from genmodels.gans.cgan import ConditionalGAN
from tests.genmodels.apps.model_files import save_checkpoint


@pytest.fixture(scope="package")
def files(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    dcgan = save_checkpoint(DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4), root / "dcgan.ckpt")
    cgan = save_checkpoint(ConditionalGAN(image_shape=(1, 16, 16), num_classes=10, latent_dim=8, feature_maps=4),
                           root / "cgan.ckpt")
    text = root / "notes.txt"
    text.write_text("not a checkpoint\n")
    images = root / "images"
    images.mkdir()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(images / "a.png")
    return SimpleNamespace(root=root, dcgan=dcgan, cgan=cgan, text=text, images=images,
                           missing=root / "missing.ckpt", unwritable=text / "out")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
