"""Every public layout a download unpacks to is found and read the same: official archives, mirrors
(Kaggle), nested copies (an extra top folder), debris (``__MACOSX``, ``.DS_Store``, ``.t7``).

Each fixture is written in that exact layout (tests/datamodules/formats.py); docs/datasets.md
lists the layouts."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from datamodules import (
    CelebADataModule, CIFAR10DataModule, FashionMNISTDataModule, ImageFolderDataModule, MNISTDataModule,
    PairedImageDataModule, TextImageDataModule, UnpairedImageDataModule,
)
from tests.datamodules.formats import (
    write_celeba, write_cifar10, write_cub, write_cyclegan, write_image_folder, write_mnist, write_mnist_kaggle,
    write_oxford102, write_pix2pix,
)


def _macos_debris(folder: Path) -> None:
    """What zipping on a Mac leaves: a __MACOSX tree of '._' files and .DS_Store files."""
    (folder / "__MACOSX").mkdir(parents=True, exist_ok=True)
    (folder / "__MACOSX" / "._x.jpg").write_bytes(b"\x00\x05\x16\x07 not an image")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")


# -- MNIST / Fashion-MNIST -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["MNIST/raw", "MNIST", ".", "archive/mnist", "mnist_data/gz"])
def test_mnist_idx_files_found_in_every_folder_of_the_layouts(tmp_path, where):
    arrays = write_mnist(tmp_path / where, n_train=12, n_test=6, gz=where.endswith("gz"))
    dm = MNISTDataModule(data_dir=str(tmp_path), image_size=28)
    images, labels = dm.read_split("train")
    assert torch.equal(images[:, 0], torch.from_numpy(arrays["train"][0])) and labels.tolist() == arrays["train"][1].tolist()
    assert dm.root_found == tmp_path / where


def test_mnist_kaggle_copy_dotted_names_and_duplicate_folders(tmp_path):
    arrays = write_mnist_kaggle(tmp_path / "mnist", n_train=10, n_test=4)
    shutil.rmtree(next(p for p in (tmp_path / "mnist").iterdir() if p.name == "train-images-idx3-ubyte"))
    dm = MNISTDataModule(data_dir=str(tmp_path), image_size=28)
    images, _ = dm.read_split("train")  # train-images.idx3-ubyte (dotted) with the labels from the folders
    assert torch.equal(images[:, 0], torch.from_numpy(arrays["train"][0]))
    assert "Kaggle" in dm.layout_found
    assert len(dm.read_split("test")[0]) == 4


def test_fashion_mnist_repository_layout_and_mnist_does_not_take_it(tmp_path):
    # github.com/zalandoresearch/fashion-mnist: data/fashion/*.gz, same file names as MNIST's.
    arrays = write_mnist(tmp_path / "fashion-mnist" / "data" / "fashion", n_train=8, n_test=4, gz=True)
    dm = FashionMNISTDataModule(data_dir=str(tmp_path), image_size=28)
    assert dm.read_split("train")[1].tolist() == arrays["train"][1].tolist()
    with pytest.raises(FileNotFoundError, match="MNIST: the IDX files"):
        MNISTDataModule(data_dir=str(tmp_path)).read_split("train")


# -- CIFAR-10 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["cifar-10-batches-py", ".", "cifar10/cifar-10-batches-py"])
def test_cifar10_python_batches_found_flat_or_nested(tmp_path, where):
    batches = write_cifar10(tmp_path / where, per_batch=4, n_test=6)
    meta = {b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]}
    (tmp_path / where / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    (tmp_path / where / "readme.html").write_text("<html></html>")
    _macos_debris(tmp_path)
    dm = CIFAR10DataModule(data_dir=str(tmp_path))
    images, labels = dm.read_split("train")
    assert labels.tolist() == [l for i in range(1, 6) for l in batches[f"data_batch_{i}"][b"labels"]]
    assert dm.root_found == tmp_path / where and dm.class_names[:2] == ["airplane", "automobile"]


# -- CelebA --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout,folder,expected",
    [
        ("official", "celeba", "official"),
        ("kaggle", "celeba-dataset", "Kaggle"),  # Kaggle's download name; its image folder repeats
        ("kaggle", "archive/celeba", "Kaggle"),  # an extra top folder around it
        ("drive", "CelebA", "Google Drive"),
    ],
)
def test_celeba_layouts_give_the_same_splits_and_attributes(tmp_path, layout, folder, expected):
    files = write_celeba(tmp_path, splits=(4, 2, 2), layout=layout, folder_name=folder)
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, num_workers=0)
    train = dm._dataset("train")
    assert [Path(p).name for p in train.paths] == files["files"][:4]
    assert torch.equal(train.attributes, torch.from_numpy(files["attributes"][:4]))
    assert [len(dm._dataset(s)) for s in ("val", "test")] == [2, 2]
    assert expected in dm.layout_found
    batch = train.__getitems__([0, 1])
    assert batch["image"].shape == (2, 3, 8, 8)


# -- image folder ---------------------------------------------------------------------------------


def test_image_folder_ignores_macos_debris_as_images_and_as_classes(tmp_path):
    write_image_folder(tmp_path, {"cats": 3, "dogs": 2})
    _macos_debris(tmp_path)
    (tmp_path / "__MACOSX" / "cats").mkdir()
    (tmp_path / "__MACOSX" / "cats" / "._img0.png").write_bytes(b"\x00\x05\x16\x07")
    dm = ImageFolderDataModule(data_dir=str(tmp_path), labels_from_subfolders=True, val_fraction=0.0, image_size=8,
                               bad_files="error")
    assert dm.class_names == ["cats", "dogs"]
    assert sorted(dm._dataset("train").labels.tolist()) == [0, 0, 0, 1, 1]


# -- pix2pix and CycleGAN -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["maps", "maps/maps", "datasets/maps"])
def test_pix2pix_folder_found_directly_or_nested(tmp_path, where):
    folder = write_pix2pix(tmp_path / Path(where).parent, "maps", {"train": 3, "val": 2})
    _macos_debris(folder / "train")
    dm = PairedImageDataModule("maps", data_dir=str(tmp_path), image_size=16, load_size=16)
    assert [Path(p).name for p in dm._dataset("train").paths] == ["1.jpg", "2.jpg", "3.jpg"]
    assert len(dm._dataset("test")) == 2  # maps has no test/: val serves
    assert dm.root == tmp_path / where


def test_pix2pix_data_dir_pointing_at_the_dataset_itself(tmp_path):
    folder = write_pix2pix(tmp_path, "facades", {"train": 2, "val": 1, "test": 1})
    dm = PairedImageDataModule("facades", data_dir=str(folder), image_size=16, load_size=16)
    assert len(dm._dataset("train")) == 2 and dm.root == folder


def test_cyclegan_repository_layout_datasets_name(tmp_path):
    folder = write_cyclegan(tmp_path / "pytorch-CycleGAN-and-pix2pix" / "datasets", "horse2zebra")
    (folder / "trainA" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    dm = UnpairedImageDataModule("horse2zebra", data_dir=str(tmp_path), image_size=16, load_size=16)
    dataset = dm._dataset("train")
    assert (len(dataset.paths_a), len(dataset.paths_b)) == (4, 3) and dm.root == folder


# -- CUB and Oxford-102 with captions --------------------------------------------------------------


def _captions_match_images(dm, files):
    dataset = dm._dataset("train")
    batch = dataset.__getitems__(range(len(dataset)))
    for path, caption in zip(dataset.records.images, batch["caption"]):
        key = Path(path).stem
        colour = next(c for k, c in files["colours"].items() if Path(k).name == key)
        assert colour in caption
    return dataset


@pytest.mark.parametrize("pickle_keys", ["class", "jpg"])
def test_oxford102_stackgan_layout_split_by_filenames_pickle(tmp_path, pickle_keys):
    files = write_oxford102(tmp_path, train_classes=2, test_classes=1, per_class=2, layout="stackgan", pickle_keys=pickle_keys)
    dm = TextImageDataModule("oxford102", data_dir=str(tmp_path), image_size=8, num_workers=0)
    dataset = _captions_match_images(dm, files)
    assert [Path(p).stem for p in dataset.records.images] == files["train"]
    assert dm._dataset("test").records.labels.tolist() == [2, 2]
    assert dm.layout_found.startswith("StackGAN")


def test_oxford102_reed_cvpr2016_layout_class_lists_beside_text_c10(tmp_path):
    files = write_oxford102(tmp_path, 2, 1, 2, layout="reed", folder="cvpr2016_flowers")
    # 102flowers.tgz unpacked next to the caption data, not inside it.
    shutil.move(str(tmp_path / "cvpr2016_flowers" / "jpg"), str(tmp_path / "jpg"))
    dm = TextImageDataModule("oxford102", data_dir=str(tmp_path), image_size=8, num_workers=0)
    dataset = _captions_match_images(dm, files)
    assert sorted(Path(p).stem for p in dataset.records.images) == sorted(files["train"])
    assert dm.layout_found.startswith("Reed") and dm.root_found == tmp_path / "cvpr2016_flowers"


def test_oxford102_prefers_the_pickle_split_when_both_exist(tmp_path):
    files = write_oxford102(tmp_path, train_classes=2, test_classes=1, per_class=2, layout="both")
    dm = TextImageDataModule("oxford102", data_dir=str(tmp_path), image_size=8, num_workers=0)
    # The pickles move class 2 to test; the class lists would have trained on it.
    assert dm._dataset("train").records.labels.tolist() == [0, 0]
    assert [Path(p).stem for p in dm._dataset("test").records.images] == files["test"]


def test_cub_reed_layout_class_lists_with_cub_images_beside(tmp_path):
    files = write_cub(tmp_path, n_train=4, n_test=2, layout="reed")
    dm = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0)
    dataset = _captions_match_images(dm, files)
    assert sorted(Path(p).stem for p in dataset.records.images) == sorted(Path(k).name for k in files["train"])
    assert set(dataset.records.labels.tolist()) == {0} and dm._dataset("test").records.labels.tolist() == [1] * 3
    assert all(box is not None for box in dataset.records.boxes)  # CUB_200_2011 tables found beside: box crops


def test_cub_attngan_layout_nested_in_an_extra_folder(tmp_path):
    files = write_cub(tmp_path / "data", n_train=4, n_test=2)
    _macos_debris(tmp_path / "data" / "birds")
    dm = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0)
    dataset = _captions_match_images(dm, files)
    assert [Path(p).stem for p in dataset.records.images] == [Path(k).name for k in files["train"]]
    assert dm.root_found == tmp_path / "data" / "birds"
