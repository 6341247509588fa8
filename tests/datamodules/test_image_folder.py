"""ImageFolderDataModule: recursive discovery, crop and resize, channels, seeded hold-out, labels."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from datamodules import ImageFolderDataModule
from datamodules.image_folder import find_images, load_image
from tests.datamodules.formats import write_image_folder


def test_finds_every_image_recursively_and_skips_other_files(tmp_path):
    paths = write_image_folder(tmp_path, {"cats": 4, "dogs": 3})
    (tmp_path / "cats" / "deep").mkdir()
    Image.new("RGB", (9, 9)).save(tmp_path / "cats" / "deep" / "x.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    Image.new("RGB", (9, 9)).save(tmp_path / ".hidden" / "y.png")
    found = find_images(tmp_path)
    assert found == sorted(paths + [tmp_path / "cats" / "deep" / "x.png"])
    assert {p.suffix for p in found} == {".png", ".jpg", ".JPEG", ".webp"}


def test_centre_crop_then_resize_and_channels(tmp_path):
    # 30x10 image: left third black, middle third white, right third black; the centred 10x10
    # square is the white middle.
    pixels = torch.zeros(10, 30, 3, dtype=torch.uint8)
    pixels[:, 10:20] = 255
    Image.fromarray(pixels.numpy()).save(tmp_path / "wide.png")
    rgb = load_image(tmp_path / "wide.png", 8, channels=3)
    assert rgb.shape == (3, 8, 8) and rgb.dtype == torch.uint8 and bool((rgb == 255).all())
    grey = load_image(tmp_path / "wide.png", 8, channels=1)
    assert grey.shape == (1, 8, 8) and bool((grey == 255).all())


def test_seeded_holdout_is_fixed_and_disjoint(tmp_path):
    write_image_folder(tmp_path, {"a": 10, "b": 10})
    make = lambda **kw: ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.25, **kw)  # noqa: E731
    dm = make()
    train, val = dm._dataset("train").paths, dm._dataset("val").paths
    assert len(train) == 15 and len(val) == 5 and not set(train) & set(val)
    assert dm._dataset("test").paths == val  # the hold-out serves as val and test
    assert make(seed=7)._dataset("val").paths == val  # the training seed does not move the hold-out
    assert make(split_seed=1)._dataset("val").paths != val


def test_labels_none_or_from_subfolders(tmp_path):
    write_image_folder(tmp_path, {"cats": 3, "dogs": 2})
    plain = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.0, batch_size=5)
    assert plain.num_classes == 0 and plain.class_names == []
    assert next(iter(plain.train_dataloader()))["label"].tolist() == [-1] * 5

    labelled = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.0, batch_size=5,
                                     labels_from_subfolders=True)
    assert labelled.class_names == ["cats", "dogs"] and labelled.num_classes == 2
    dataset = labelled._dataset("train")
    expected = [0 if "/cats/" in p else 1 for p in dataset.paths]
    assert dataset.labels.tolist() == expected and sorted(expected) == [0, 0, 0, 1, 1]
    # Grey value 40 * class + k identifies each file: the batch decodes the file its label belongs to.
    batch = dataset.__getitems__(range(5))
    assert (batch["image"][:, 0, 0, 0] // 40).tolist() == expected


def test_grey_channels_and_shape_without_io(tmp_path):
    dm = ImageFolderDataModule(data_dir=str(tmp_path / "nowhere"), image_size=16, channels=1)
    assert dm.image_shape == (1, 16, 16)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        ImageFolderDataModule(channels=2)
    with pytest.raises(ValueError, match="val_fraction"):
        ImageFolderDataModule(val_fraction=1.0)


def test_missing_empty_and_corrupt_inputs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder \S*nowhere not found"):
        ImageFolderDataModule(data_dir=str(tmp_path / "nowhere")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"images \(\*\.png.*\) not found"):
        ImageFolderDataModule(data_dir=str(tmp_path / "empty")).setup()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.jpg").write_bytes(b"not a jpeg")
    dm = ImageFolderDataModule(data_dir=str(tmp_path / "bad"), image_size=8, val_fraction=0.0, batch_size=1, bad_files="error")
    with pytest.raises(ValueError, match="broken.jpg: not a readable image"):
        dm.setup("fit")  # at setup, not in the middle of training
    Image.new("RGB", (8, 8)).save(tmp_path / "bad" / "top_level.png")
    with pytest.raises(ValueError, match="not inside a subfolder"):
        ImageFolderDataModule(data_dir=str(tmp_path / "bad"), labels_from_subfolders=True).setup()
