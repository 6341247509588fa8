"""ClassSubsetDataModule: keeps some classes of a labelled datamodule in every split."""

from __future__ import annotations

import pytest
import torch

from datamodules import ClassSubsetDataModule, DigitsDataModule, ImageFolderDataModule
from tests.datamodules.formats import write_image_folder


def test_keeps_only_the_requested_classes_with_their_labels():
    dm = ClassSubsetDataModule(dataset="datamodules.DigitsDataModule", classes=[3, 1], image_size=8, batch_size=16)
    assert dm.image_shape == (1, 8, 8) and dm.num_classes == 10 and dm.classes == [1, 3]
    full_images, full_labels = DigitsDataModule(image_size=8).read_split("train")
    images, labels = dm.read_split("train")
    keep = (full_labels == 1) | (full_labels == 3)
    assert torch.equal(labels, full_labels[keep]) and torch.equal(images, full_images[keep])
    batch = next(iter(dm.train_dataloader()))
    assert set(batch["label"].tolist()) <= {1, 3}
    assert set(dm.read_split("test")[1].tolist()) == {1, 3}


def test_no_classes_keeps_everything_and_arguments_reach_the_wrapped_datamodule():
    dm = ClassSubsetDataModule(image_size=16, dataset_args={"val_fraction": 0.5})
    assert dm.dataset.val_fraction == 0.5 and dm.dataset.image_size == 16
    assert len(dm.read_split("val")[1]) == round(1797 * 0.5)
    assert dm.hparams["dataset"] == "datamodules.DigitsDataModule" and dm.hparams["classes"] is None


@pytest.mark.parametrize("classes", [[10], [-1], [], [2, 2]])
def test_bad_classes_name_the_allowed_range(classes):
    with pytest.raises(ValueError, match=r"classes must be distinct labels in 0\.\.9"):
        ClassSubsetDataModule(classes=classes)


def test_unlabelled_or_unknown_datasets_are_refused(tmp_path):
    write_image_folder(tmp_path, {"a": 2})
    with pytest.raises(ValueError, match="has no class labels"):
        ClassSubsetDataModule(dataset="datamodules.ImageFolderDataModule", classes=[0], data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="is not one genmodels builds"):
        ClassSubsetDataModule(dataset="torch.nn.Linear")
    with pytest.raises(ValueError, match="nothing was imported"):  # resolved as text, never imported
        ClassSubsetDataModule(dataset="nowhere.Module")
    # A labelled image folder works: its labels come from the subfolders.
    write_image_folder(tmp_path, {"a": 2, "b": 3})
    dm = ClassSubsetDataModule(dataset="datamodules.ImageFolderDataModule", classes=[1], data_dir=str(tmp_path),
                               image_size=8, dataset_args={"labels_from_subfolders": True, "val_fraction": 0.0})
    assert dm.read_split("train")[1].tolist() == [1, 1, 1]
    assert isinstance(dm.dataset, ImageFolderDataModule)
