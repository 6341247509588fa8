"""CelebADataModule: official layout, centre crop, attributes, lazy decoding, errors, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules import CelebADataModule
from datamodules.celeba import CELEBA_ATTRIBUTES
from tests.datamodules.conftest import fake_trainer
from tests.datamodules.formats import write_celeba


def test_shapes_and_attribute_names_need_no_files(tmp_path):
    dm = CelebADataModule(data_dir=str(tmp_path / "nowhere"), image_size=128)
    assert dm.image_shape == (3, 128, 128) and dm.num_classes == 0
    assert dm.attribute_names == list(CELEBA_ATTRIBUTES) and len(dm.attribute_names) == 40
    assert dm.attribute_names[20] == "Male" and dm.attribute_names[31] == "Smiling"
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("nested", [True, False])
def test_reads_the_official_split_and_attributes(tmp_path, nested):
    written = write_celeba(tmp_path, splits=(5, 2, 3), nested=nested)
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=16, batch_size=5, num_workers=0)
    dm.setup()
    sizes = {split: len(dm._dataset(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 5, "val": 2, "test": 3}

    batch = dm._dataset("test").__getitems__([0, 2])
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (2, 3, 16, 16)
    assert batch["label"].tolist() == [-1, -1]
    # Test images are files 8..10 (0-based 7..9) of the partition; rows 7 and 9 of the attributes.
    expected = torch.from_numpy(written["attributes"][[7, 9]])
    assert batch["attributes"].dtype == torch.float32 and torch.equal(batch["attributes"], expected)


def test_default_crop_cuts_the_bands_above_and_below_the_face(tmp_path):
    write_celeba(tmp_path, splits=(2, 1, 1))
    image = CelebADataModule(data_dir=str(tmp_path), image_size=16)._dataset("train")[0]["image"]
    # Image 0's centre square is (0, 255, 128); the red bands must not leak into any row (JPEG noise only).
    assert (image[0].int() - 0).abs().max() <= 6 and (image[1].int() - 255).abs().max() <= 6
    assert (image[2].int() - 128).abs().max() <= 6

    # The largest centred square of a 178x218 image is the 178 crop; a closer crop stays red-free too.
    from datamodules.image_folder import load_image

    uncropped = load_image(tmp_path / "celeba/img_align_celeba/000001.jpg", 16, 3, crop_size=None)
    assert torch.equal(uncropped, image)
    closer = CelebADataModule(data_dir=str(tmp_path), image_size=16, crop_size=108)._dataset("train")[0]["image"]
    assert (closer[0].int()).abs().max() <= 6


def test_batches_are_uint8_dicts_through_the_resumable_loader(tmp_path):
    write_celeba(tmp_path, splits=(8, 1, 1))
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=0)
    dm.trainer = fake_trainer()
    first = [b["attributes"][:, 0].tolist() + b["image"][:, 0, 0, 0].tolist() for b in dm.train_dataloader()]
    assert len(first) == 4

    # Resume after 3 consumed batches: the next batch is the 4th of the same epoch.
    dm2 = CelebADataModule(data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=0)
    dm2.trainer = fake_trainer()
    dm2.load_state_dict({"epoch": 0, "batches_consumed": 3})
    resumed = [b["attributes"][:, 0].tolist() + b["image"][:, 0, 0, 0].tolist() for b in dm2.train_dataloader()]
    assert resumed == first[3:]

    converted = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert converted["image"].dtype == torch.float32 and converted["image"].min() >= -1 and converted["image"].max() <= 1
    assert converted["attributes"].shape == (2, 40)


def test_works_with_dataloader_workers(tmp_path):
    write_celeba(tmp_path, splits=(4, 1, 1))
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=1)
    batches = list(dm.val_dataloader()) + list(dm.train_dataloader())
    assert [b["image"].shape[0] for b in batches] == [1, 2, 2]


def test_missing_files_name_the_directories_the_files_and_the_manual_route(tmp_path):
    dm = CelebADataModule(data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        dm.setup()
    message = str(err.value)
    assert str(tmp_path / "celeba") in message and "list_attr_celeba.txt" in message and "img_align_celeba" in message
    assert "drive.google.com" in message and "baidu" in message.lower()


def test_missing_image_and_bad_annotations_are_clear_errors(tmp_path):
    write_celeba(tmp_path, splits=(2, 1, 1))
    (tmp_path / "celeba/img_align_celeba/000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000001.jpg"):
        CelebADataModule(data_dir=str(tmp_path))._dataset("train")

    attr = tmp_path / "celeba/list_attr_celeba.txt"
    attr.write_text(attr.read_text().replace("Smiling", "Smile"))
    with pytest.raises(ValueError, match="not CelebA's 40"):
        CelebADataModule(data_dir=str(tmp_path)).setup()


@pytest.mark.parametrize("crop", [4, 200])
def test_bad_crop_size_names_the_key(crop):
    with pytest.raises(ValueError, match="crop_size"):
        CelebADataModule(crop_size=crop)


def test_read_split_decodes_into_memory_for_small_sets(tmp_path):
    write_celeba(tmp_path, splits=(3, 1, 1))
    images, labels = CelebADataModule(data_dir=str(tmp_path), image_size=8).read_split("train")
    assert images.shape == (3, 3, 8, 8) and images.dtype == torch.uint8 and labels.tolist() == [-1, -1, -1]
    assert np.unique(images[:, 2].numpy()).size <= 3  # blue channel 128 everywhere (JPEG +- noise)


def test_a_failed_download_is_one_user_error_saying_how_to_get_the_files(tmp_path, monkeypatch):
    """torchvision's Google Drive download refused (quota, offline): a DownloadError, not a traceback."""
    from torchvision import datasets

    from datamodules.base import DownloadError
    from genmodels.errors import UserError

    def refuse(*args, **kwargs):
        raise RuntimeError("The daily quota of the file img_align_celeba.zip is exceeded\nand it can't be downloaded.")

    monkeypatch.setattr(datasets, "CelebA", refuse)
    with pytest.raises(DownloadError) as err:
        CelebADataModule(data_dir=str(tmp_path), download=True).prepare_data()
    message = str(err.value)
    assert isinstance(err.value, UserError) and "\n" not in message
    assert message.startswith("downloading CelebA failed (The daily quota") and "img_align_celeba.zip" in message
    assert "kaggle.com" in message  # the by-hand advice of _how_to_get
