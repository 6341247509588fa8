"""CelebA: 202,599 aligned celebrity faces with 40 binary attributes, decoded lazily from JPEG.

Dataset: Z. Liu, P. Luo, X. Wang and X. Tang, "Deep Learning Face Attributes in the Wild",
ICCV 2015, arXiv:1411.7766. http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html

Files (the "Align&Cropped Images" release), in torchvision's layout ``<data_dir>/celeba/`` or
directly in ``<data_dir>/``::

    img_align_celeba/000001.jpg ... 202599.jpg    178x218 JPEGs (from img_align_celeba.zip)
    list_attr_celeba.txt                          count, 40 attribute names, one row of +-1 per image
    list_eval_partition.txt                       "<file> <0|1|2>": train 162,770 / val 19,867 / test 19,962

Also recognised (see docs/datasets.md), in ``<data_dir>``, ``<data_dir>/celeba``,
``<data_dir>/CelebA`` or any folder up to two levels below ``<data_dir>``:

- the Kaggle copy (``celeba-dataset``): ``img_align_celeba/img_align_celeba/*.jpg`` (the zip
  repeats the folder) with ``list_attr_celeba.csv`` (header ``image_id,5_o_Clock_Shadow,...``)
  and ``list_eval_partition.csv`` (header ``image_id,partition``);
- the official Google Drive folder as downloaded: ``Img/img_align_celeba/``,
  ``Anno/list_attr_celeba.txt``, ``Eval/list_eval_partition.txt``.

Bad files: every image of a split is checked at setup (header and end marker, see
`datamodules.image_folder.image_file_problem`); a damaged one is refused with a `DataError`
naming it (``bad_files: error``, the default: a broken file means a broken download), or with
``bad_files: skip`` left out with a warning naming it.

Each image's centred ``crop_size`` square (default 178: the full width, cutting 20 rows above and
below, the usual crop) is resized to ``image_size`` (64, 128, 256, ...) when a batch asks for it:
the images are never held in memory. Batches: ``image`` uint8 (B, 3, S, S), ``label`` int64 -1
(CelebA has no classes: ``num_classes`` 0) and ``attributes`` float (B, 40) in {0, 1}, in the order
of `attribute_names` (the files' order, checked against the header when the files are read).

Download: ``download=True`` goes through torchvision (Google Drive), whose daily quota on these
files often refuses with "Too many users have viewed or downloaded this file recently". The manual
route: fetch ``img_align_celeba.zip``, ``list_attr_celeba.txt`` and ``list_eval_partition.txt``
from the official Google Drive (https://drive.google.com/drive/folders/0B7EVK8r0v71pWEZsZE9oNnFzTm8)
or Baidu Drive (https://pan.baidu.com/s/1CRxxhoQ97A5qbsKO7iaAJg, password rp0s) linked from the
official page, unzip the archive into ``<data_dir>/celeba/`` and put the two text files next to it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import torch

from datamodules.base import DATA_ENV_VAR, DataError, DataNotFoundError, candidate_dirs, check_int, fetch_or_explain, searched_dirs
from datamodules.image_folder import BadFiles, LazyImageDataModule, LazyImageDataset
from genmodels.errors import InvalidValue

__all__ = ["CelebADataModule", "CELEBA_ATTRIBUTES", "read_attributes", "read_partition"]

#: The 40 attributes in the column order of list_attr_celeba.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip

IMAGE_DIR = "img_align_celeba"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
_PARTITION_CODES = {"train": 0, "val": 1, "test": 2}
#: Where each part sits relative to the dataset's folder, in the order tried: torchvision's and
#: the official zip's layout, the Kaggle copy (a repeated image folder, .csv lists), the official
#: Google Drive folder (Img/, Anno/, Eval/).
IMAGE_DIRS = ("img_align_celeba/img_align_celeba", "img_align_celeba", "Img/img_align_celeba/img_align_celeba", "Img/img_align_celeba")
ATTRIBUTE_FILES = ("list_attr_celeba.txt", "list_attr_celeba.csv", "Anno/list_attr_celeba.txt", "Anno/list_attr_celeba.csv")
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv", "Eval/list_eval_partition.txt", "Anno/list_eval_partition.txt")
#: Width of the aligned images: the largest centred square.
ALIGNED_WIDTH = 178


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a Kaggle-style CSV list."""
    with open(path, newline="") as file:
        rows = [row for row in csv.reader(file) if row]
    if not rows:
        raise DataError(f"{path}: empty file; re-download it")
    return [name.strip() for name in rows[0]], rows[1:]


def read_partition(path: Path) -> dict[str, int]:
    """``{file name: 0 (train) | 1 (val) | 2 (test)}`` from list_eval_partition.txt (or the Kaggle .csv)."""
    if path.suffix == ".csv":
        header, rows = _csv_rows(path)
        if header[:2] != ["image_id", "partition"]:
            raise DataError(f"{path}: expected the header 'image_id,partition', got {','.join(header)!r}")
        bad = next((row for row in rows if len(row) != 2 or row[1].strip() not in ("0", "1", "2")), None)
        if bad is not None:
            raise DataError(f"{path}: expected rows '<file>.jpg,<0|1|2>', got {','.join(bad)!r}")
        return {row[0].strip(): int(row[1]) for row in rows}
    partition = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}, line {number}: expected '<file>.jpg <0|1|2>', got {line!r}")
        partition[fields[0]] = int(fields[1])
    return partition


def read_attributes(path: Path) -> tuple[list[str], torch.Tensor]:
    """File names and float {0, 1} attributes (N, 40) from list_attr_celeba.txt (+-1 in the file)
    or the Kaggle list_attr_celeba.csv.

    Raises:
        DataError: a header other than the 40 CelebA attributes, a malformed row, or a count that
            does not match the rows.
    """
    if path.suffix == ".csv":
        header, rows = _csv_rows(path)
        if tuple(header[1:]) != CELEBA_ATTRIBUTES:
            raise DataError(f"{path}: the header does not list CelebA's 40 attributes in their order: {header[:5]}...")
        bad = next((row for row in rows if len(row) != 41 or any(v.strip() not in ("1", "-1") for v in row[1:])), None)
        if bad is not None:
            raise DataError(f"{path}: expected rows of a file name and 40 values of 1 or -1, got {','.join(bad)[:80]!r}")
        values = [[v.strip() == "1" for v in row[1:]] for row in rows]
        return [row[0].strip() for row in rows], torch.tensor(values, dtype=torch.float32).view(-1, len(CELEBA_ATTRIBUTES))
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        raise DataError(f"{path}: truncated attribute file (needs a count line and a header line)")
    names = lines[1].split()
    if tuple(names) != CELEBA_ATTRIBUTES:
        raise DataError(f"{path}: header lists {len(names)} attributes that are not CelebA's 40 in their order: {names[:5]}...")
    files, values = [], []
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if len(fields) != 41 or any(v not in ("1", "-1") for v in fields[1:]):
            raise DataError(f"{path}, line {number}: expected a file name and 40 values of 1 or -1, got {line[:80]!r}")
        files.append(fields[0])
        values.append([v == "1" for v in fields[1:]])
    if lines[0].strip() != str(len(files)):
        raise DataError(f"{path}: the first line declares {lines[0].strip()!r} images but the file lists {len(files)}")
    return files, torch.tensor(values, dtype=torch.float32).view(-1, len(CELEBA_ATTRIBUTES))


class CelebADataModule(LazyImageDataModule):
    """CelebA aligned faces, centre-cropped and resized per batch; 3 channels, 40 attributes, no classes.

    Args:
        data_dir: data root holding ``celeba/`` (torchvision's layout) or the files themselves;
            ``None`` means ``$GENMODELS_DATA``, else ``./data``.
        batch_size: samples per batch (per rank).
        num_workers: DataLoader worker processes (JPEG decoding happens there: use several).
        image_size: side of the square images (64, 128, 256, ...).
        download: fetch the files through torchvision (Google Drive, rate limited) if missing.
        seed: seed of the training order.
        pin_memory: pin batches for faster host-to-GPU copies.
        crop_size: side of the centred square cut from the 178x218 image before resizing
            (178 = full width, the common choice; 140 and 108 crop closer to the face).
        max_train_images: train on this many images only (see `ImageDataModule`).
        random_flip: mirror training images left-right at random (ProGAN/StyleGAN's
            ``mirror_augment``; see `ImageDataModule`).
        bad_files: ``error`` (default) or ``skip`` for damaged image files (see the module docstring).
    """

    dataset_name = "CelebA"
    _channels = 3
    _num_classes = 0

    def __init__(
        self,
        data_dir: Optional[str] = None,
        batch_size: int = 64,
        num_workers: int = 4,
        image_size: int = 64,
        download: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        crop_size: int = ALIGNED_WIDTH,
        max_train_images: Optional[int] = None,
        random_flip: bool = False,
        bad_files: BadFiles = "error",
    ) -> None:
        check_int("crop_size", crop_size, 8)
        if crop_size > ALIGNED_WIDTH:
            raise InvalidValue(f"crop_size must be <= {ALIGNED_WIDTH} (the width of the aligned images), got {crop_size}")
        if bad_files not in ("error", "skip"):
            raise InvalidValue(f"bad_files must be 'error' or 'skip', got {bad_files!r} (--data.init_args.bad_files)")
        super().__init__(data_dir, batch_size, num_workers, image_size, download, seed, pin_memory,
                         max_train_images=max_train_images, random_flip=random_flip)
        self.crop_size, self.bad_files = crop_size, bad_files
        self._annotations: Optional[tuple[Path, list[str], torch.Tensor, dict[str, int]]] = None
        self._files: Optional[tuple[Path, Path, Path]] = None  # (image folder, attributes, partition)

    @property
    def attribute_names(self) -> list[str]:
        """The 40 attribute names, in the column order of ``batch["attributes"]`` (no file is read)."""
        return list(CELEBA_ATTRIBUTES)

    @property
    def search_dirs(self) -> list[Path]:
        """The preferred directories for the files, in order (subfolders are searched after them)."""
        return [self.data_dir / "celeba", self.data_dir / "CelebA", self.data_dir]

    def report_details(self) -> dict[str, str]:
        details = super().report_details()
        details["attributes"] = f"{len(CELEBA_ATTRIBUTES)} ({', '.join(CELEBA_ATTRIBUTES[:4])}, ...)"
        details["crop"] = f"centred {self.crop_size}x{self.crop_size} of the 178x218 images, resized to {self.image_size}"
        return details

    def sample_descriptions(self, count: int) -> list[str]:
        dataset = self._dataset("train")
        out = []
        for i in range(min(count, len(dataset))):
            on = [name for name, v in zip(CELEBA_ATTRIBUTES, dataset.attributes[i].tolist()) if v]
            out.append(f"{Path(dataset.paths[i]).name}: {', '.join(on[:6]) or 'no attribute'}" + (", ..." if len(on) > 6 else ""))
        return out

    def lazy_split(self, split: str) -> LazyImageDataset:
        images, files, attributes, partition = self._read_annotations()
        code = _PARTITION_CODES[split]
        missing = [name for name in files if name not in partition]
        if missing:
            raise DataError(f"the partition list has no split for {len(missing)} images of the attribute list, e.g. {missing[0]}")
        index = torch.tensor([i for i, name in enumerate(files) if partition[name] == code], dtype=torch.long)
        paths = [images / files[i] for i in index.tolist()]
        keep = torch.tensor(self.screen_files(paths), dtype=torch.bool)
        index, paths = index[keep], [p for p, k in zip(paths, keep.tolist()) if k]
        labels = torch.full((len(paths),), -1, dtype=torch.int64)
        return LazyImageDataset(paths, labels, self.image_size, 3, self.crop_size, attributes[index])

    def download_files(self) -> None:
        if self._locate() is not None:
            return
        from torchvision import datasets  # only needed to download

        fetch_or_explain("CelebA", self._how_to_get(),  # Google Drive's quota refusals included
                         lambda: datasets.CelebA(root=str(self.data_dir), split="all", target_type="attr", download=True))

    def _read_annotations(self) -> tuple[Path, list[str], torch.Tensor, dict[str, int]]:
        """(image folder, file names, attributes, partition), parsed once."""
        if self._annotations is None:
            found = self._locate()
            if found is None:
                raise DataNotFoundError(
                    "CelebA", f"{IMAGE_DIR}/ with {ATTRIBUTE_FILE} and {PARTITION_FILE} (or the Kaggle .csv lists)",
                    searched_dirs(self.search_dirs, self._candidates()), self._how_to_get(),
                )
            images, attribute_file, partition_file = found
            files, attributes = read_attributes(attribute_file)
            self._annotations = images, files, attributes, read_partition(partition_file)
        return self._annotations

    def _candidates(self):
        return candidate_dirs(self.data_dir, self.search_dirs, depth=2)

    def _locate(self) -> Optional[tuple[Path, Path, Path]]:
        """(image folder, attribute list, partition list) of the first folder holding all three."""
        for directory in self._candidates():
            images = next((directory / d for d in IMAGE_DIRS if (directory / d).is_dir()), None)
            attributes = next((directory / f for f in ATTRIBUTE_FILES if (directory / f).is_file()), None)
            partition = next((directory / f for f in PARTITION_FILES if (directory / f).is_file()), None)
            if images is not None and attributes is not None and partition is not None:
                self.root_found = directory
                if attributes.suffix == ".csv":
                    self.layout_found = f"Kaggle copy ({images.relative_to(directory)}/, .csv lists)"
                elif attributes.parent.name == "Anno":
                    self.layout_found = "official Google Drive folders (Img/, Anno/, Eval/)"
                else:
                    self.layout_found = f"official / torchvision ({images.relative_to(directory)}/, .txt lists)"
                return images, attributes, partition
        return None

    def _how_to_get(self) -> str:
        target = self.data_dir / "celeba"
        return (
            f"To get them: download img_align_celeba.zip, {ATTRIBUTE_FILE} and {PARTITION_FILE} from the official "
            "Google Drive (https://drive.google.com/drive/folders/0B7EVK8r0v71pWEZsZE9oNnFzTm8) or Baidu Drive "
            "(https://pan.baidu.com/s/1CRxxhoQ97A5qbsKO7iaAJg, password rp0s), see "
            f"http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html; unzip the archive into {target}/ (giving "
            f"{target / IMAGE_DIR}/000001.jpg ...) and put the two text files in {target}/; the Kaggle copy "
            "(kaggle.com/datasets/jessicali9530/celeba-dataset) works as it unzips. "
            "--data.init_args.download true tries torchvision's Google Drive download, which is often refused by its "
            f"daily quota. The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
        )
