"""A bad file inside a dataset is found at setup (or by ``check-data``), never an hour into training:
refused with a one-line `UserError` naming it, or skipped with one warning naming it, per dataset
as docs/datasets.md says."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

from datamodules import (
    CelebADataModule, CIFAR10DataModule, ImageFolderDataModule, MNISTDataModule, TextImageDataModule,
)
from datamodules.image_folder import image_file_problem
from genmodels.errors import UserError
from tests.datamodules.formats import write_celeba, write_cifar10, write_cub, write_image_folder, write_mnist, write_oxford102


def truncate(path: Path) -> None:
    """Cuts a file in half, as an interrupted copy leaves it: the header stays readable."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_image_check_finds_truncation_and_non_images_and_passes_good_files(tmp_path):
    good_jpg, good_png = tmp_path / "a.jpg", tmp_path / "b.png"
    Image.new("RGB", (32, 24), (10, 200, 30)).save(good_jpg, quality=90)
    Image.new("RGB", (32, 24), (10, 200, 30)).save(good_png)
    assert image_file_problem(good_jpg) is None and image_file_problem(good_png) is None
    padded = tmp_path / "padded.jpg"  # bytes after the end marker (some cameras): still decodes, still fine
    padded.write_bytes(good_jpg.read_bytes() + b"trailing")
    assert image_file_problem(padded) is None
    for path in (good_jpg, good_png):
        truncate(path)
        assert "truncated" in image_file_problem(path)
    (tmp_path / "fake.jpg").write_text("<html>403 Forbidden</html>")
    assert "not a readable image" in image_file_problem(tmp_path / "fake.jpg")


def test_celeba_refuses_a_truncated_jpeg_naming_it_or_skips_it(tmp_path):
    write_celeba(tmp_path, splits=(4, 1, 1))
    truncate(tmp_path / "celeba" / "img_align_celeba" / "000002.jpg")
    with pytest.raises(UserError) as info:
        CelebADataModule(data_dir=str(tmp_path), image_size=8, batch_size=2).setup("fit")
    assert "000002.jpg: not a readable image, truncated" in one_line(info.value)
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, batch_size=2, bad_files="skip")
    with pytest.warns(UserWarning, match=r"skipping \S*000002.jpg"):
        dm.setup("fit")
    assert [Path(p).name for p in dm._dataset("train").paths] == ["000001.jpg", "000003.jpg", "000004.jpg"]
    assert dm._dataset("train").attributes.shape == (3, 40)  # the attribute rows follow the kept images


def test_image_folder_skips_a_non_image_with_an_image_extension_by_default(tmp_path):
    write_image_folder(tmp_path, {"a": 4})
    (tmp_path / "a" / "notes.jpg").write_text("not an image")
    dm = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.0, batch_size=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
    assert [str(w.message).split(":")[0] for w in caught if "skipping" in str(w.message)] == [f"skipping {tmp_path / 'a' / 'notes.jpg'}"]
    assert len(dm._dataset("train")) == 4 and dm.skipped_files == [str(tmp_path / "a" / "notes.jpg")]


@pytest.mark.parametrize("dataset", ["cub", "oxford102"])
def test_an_empty_caption_file_is_named_or_skipped(tmp_path, dataset):
    if dataset == "cub":
        files = write_cub(tmp_path, n_train=4, n_test=2)
        caption = tmp_path / "birds" / "text" / f"{files['train'][1]}.txt"
    else:
        files = write_oxford102(tmp_path, train_classes=2, test_classes=1, per_class=2)
        caption = next((tmp_path / "flowers" / "text_c10").glob(f"*/{files['train'][1]}.txt"))
    caption.write_text("\n  \n")
    with pytest.raises(UserError) as info:
        TextImageDataModule(dataset, data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=0).setup("fit")
    assert f"{caption} holds no caption" in one_line(info.value) or f"{caption}: an empty caption file" in one_line(info.value)
    dm = TextImageDataModule(dataset, data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=0, bad_files="skip")
    with pytest.warns(UserWarning, match=f"skipping {caption}"):
        dm.setup("fit")
    assert len(dm._dataset("train")) == 3 and caption.stem not in [Path(p).stem for p in dm._dataset("train").records.images]


def test_a_truncated_text_image_jpeg_is_named_at_setup(tmp_path):
    files = write_oxford102(tmp_path, train_classes=2, test_classes=1, per_class=2)
    truncate(tmp_path / "flowers" / "jpg" / f"{files['train'][0]}.jpg")
    with pytest.raises(UserError, match=rf"{files['train'][0]}.jpg: not a readable image, truncated"):
        TextImageDataModule("oxford102", data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=0).setup("fit")


@pytest.mark.parametrize("gz", [False, True])
def test_a_truncated_idx_file_is_refused_naming_it(tmp_path, gz):
    write_mnist(tmp_path, n_train=10, n_test=4, gz=gz)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    truncate(path)
    with pytest.raises(UserError) as info:
        MNISTDataModule(data_dir=str(tmp_path), batch_size=2).setup("fit")
    assert one_line(info.value).startswith(f"{path}: ") and "truncated" in str(info.value)


def test_a_cifar_pickle_that_fails_is_refused_naming_it(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=4)
    truncate(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(UserError) as info:
        CIFAR10DataModule(data_dir=str(tmp_path), batch_size=2).setup("fit")
    assert one_line(info.value).startswith(f"{tmp_path / 'cifar-10-batches-py' / 'data_batch_3'}: not a readable CIFAR-10 batch")


def test_check_data_full_decode_finds_damage_the_cheap_check_cannot_see(tmp_path):
    # A PNG whose pixel data is corrupt but whose header and IEND end are intact passes the setup
    # check; describe(full_decode=True) (check-data --decode) decodes it and names it.
    write_image_folder(tmp_path, {"a": 3}, size=(40, 30))
    path = tmp_path / "a" / "img0.png"
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 4
    data[start : start + 8] = b"\x00\xff" * 4  # zlib stream and CRC broken
    path.write_bytes(bytes(data))
    dm = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.0, batch_size=1, bad_files="error")
    assert dm.describe().counts["train"] == 3  # the cheap check passes it
    with pytest.raises(UserError, match=r"1 image files do not decode, e.g. \S*img0.png"):
        dm.describe(full_decode=True)


def _png_header_claiming(path: Path, width: int, height: int) -> None:
    """A small, well-formed PNG whose header says width x height (a decompression bomb's shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_found_at_setup_from_its_header(tmp_path):
    """Before: it passed the setup check, and PIL's DecompressionBombError killed training mid-run."""
    write_image_folder(tmp_path, {"a": 3})
    bomb = tmp_path / "a" / "bomb.png"
    _png_header_claiming(bomb, 30000, 30000)
    assert "decompression bomb" in image_file_problem(bomb)
    with pytest.raises(UserError, match="bomb.png"):
        ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.0, batch_size=1, bad_files="error").setup("fit")
    dm = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, val_fraction=0.0, batch_size=1)
    with pytest.warns(UserWarning, match=r"skipping \S*bomb.png"):
        dm.setup("fit")
    assert len(dm._dataset("train")) == 3


def test_a_symlinked_class_folder_is_read_not_dropped(tmp_path):
    """Before: check-data said "complete" while the linked class's images were left out."""
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    write_image_folder(root, {"a": 2})
    write_image_folder(elsewhere, {"b": 3})
    (root / "b").symlink_to(elsewhere / "b", target_is_directory=True)
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # a link loop ends, each folder read once
    dm = ImageFolderDataModule(data_dir=str(root), image_size=8, val_fraction=0.0, batch_size=1)
    assert dm.describe().counts["train"] == 5
