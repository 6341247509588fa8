"""CelebA: 202,599 aligned celebrity faces with 40 binary attributes, decoded lazily from JPEG.

Dataset: Z. Liu, P. Luo, X. Wang and X. Tang, "Deep Learning Face Attributes in the Wild",
ICCV 2015, arXiv:1411.7766. http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html

Files (the "Align&Cropped Images" release), in torchvision's layout ``<data_dir>/celeba/`` or
directly in ``<data_dir>/``::

    img_align_celeba/000001.jpg ... 202599.jpg    178x218 JPEGs (from img_align_celeba.zip)
    list_attr_celeba.txt                          count, 40 attribute names, one row of +-1 per image
    list_eval_partition.txt                       "<file> <0|1|2>": train 162,770 / val 19,867 / test 19,962

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

from pathlib import Path
from typing import Optional

import torch

from datamodules.base import DATA_ENV_VAR, check_int
from datamodules.image_folder import LazyImageDataModule, LazyImageDataset

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
#: Width of the aligned images: the largest centred square.
ALIGNED_WIDTH = 178


def read_partition(path: Path) -> dict[str, int]:
    """``{file name: 0 (train) | 1 (val) | 2 (test)}`` from list_eval_partition.txt."""
    partition = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}, line {number}: expected '<file>.jpg <0|1|2>', got {line!r}")
        partition[fields[0]] = int(fields[1])
    return partition


def read_attributes(path: Path) -> tuple[list[str], torch.Tensor]:
    """File names and float {0, 1} attributes (N, 40) from list_attr_celeba.txt (+-1 in the file).

    Raises:
        ValueError: a header other than the 40 CelebA attributes, a malformed row, or a count that
            does not match the rows.
    """
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path}: truncated attribute file (needs a count line and a header line)")
    names = lines[1].split()
    if tuple(names) != CELEBA_ATTRIBUTES:
        raise ValueError(f"{path}: header lists {len(names)} attributes that are not CelebA's 40 in their order: {names[:5]}...")
    files, values = [], []
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if len(fields) != 41 or any(v not in ("1", "-1") for v in fields[1:]):
            raise ValueError(f"{path}, line {number}: expected a file name and 40 values of 1 or -1, got {line[:80]!r}")
        files.append(fields[0])
        values.append([v == "1" for v in fields[1:]])
    if lines[0].strip() != str(len(files)):
        raise ValueError(f"{path}: the first line declares {lines[0].strip()!r} images but the file lists {len(files)}")
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
    ) -> None:
        check_int("crop_size", crop_size, 8)
        if crop_size > ALIGNED_WIDTH:
            raise ValueError(f"crop_size must be <= {ALIGNED_WIDTH} (the width of the aligned images), got {crop_size}")
        super().__init__(data_dir, batch_size, num_workers, image_size, download, seed, pin_memory)
        self.crop_size = crop_size
        self._annotations: Optional[tuple[Path, list[str], torch.Tensor, dict[str, int]]] = None

    @property
    def attribute_names(self) -> list[str]:
        """The 40 attribute names, in the column order of ``batch["attributes"]`` (no file is read)."""
        return list(CELEBA_ATTRIBUTES)

    @property
    def search_dirs(self) -> list[Path]:
        """Directories searched for the files, in order."""
        return [self.data_dir / "celeba", self.data_dir]

    def lazy_split(self, split: str) -> LazyImageDataset:
        root, files, attributes, partition = self._read_annotations()
        code = _PARTITION_CODES[split]
        missing = [name for name in files if name not in partition]
        if missing:
            raise ValueError(f"{root / PARTITION_FILE} has no split for {len(missing)} images, e.g. {missing[0]}")
        index = torch.tensor([i for i, name in enumerate(files) if partition[name] == code], dtype=torch.long)
        paths = [root / IMAGE_DIR / files[i] for i in index.tolist()]
        if paths and not paths[0].is_file():  # one stat, not 200k: a wrong folder fails here, clearly
            raise FileNotFoundError(f"CelebA image {paths[0]} not found. {self._how_to_get()}")
        labels = torch.full((len(paths),), -1, dtype=torch.int64)
        return LazyImageDataset(paths, labels, self.image_size, 3, self.crop_size, attributes[index])

    def download_files(self) -> None:
        if self._locate() is not None:
            return
        from torchvision import datasets  # only needed to download

        try:
            datasets.CelebA(root=str(self.data_dir), split="all", target_type="attr", download=True)
        except Exception as err:  # network and quota errors come in many types; all need the same advice
            raise RuntimeError(f"Downloading CelebA failed ({err}). {self._how_to_get()}") from err

    def _read_annotations(self) -> tuple[Path, list[str], torch.Tensor, dict[str, int]]:
        """(folder, file names, attributes, partition), parsed once."""
        if self._annotations is None:
            root = self._locate()
            if root is None:
                searched = "\n".join(f"  {directory}" for directory in self.search_dirs)
                raise FileNotFoundError(
                    f"CelebA files {IMAGE_DIR}/, {ATTRIBUTE_FILE} and {PARTITION_FILE} not found together. "
                    f"Searched:\n{searched}\n{self._how_to_get()}"
                )
            files, attributes = read_attributes(root / ATTRIBUTE_FILE)
            self._annotations = root, files, attributes, read_partition(root / PARTITION_FILE)
        return self._annotations

    def _locate(self) -> Optional[Path]:
        for directory in self.search_dirs:
            if (directory / IMAGE_DIR).is_dir() and (directory / ATTRIBUTE_FILE).is_file() and (directory / PARTITION_FILE).is_file():
                return directory
        return None

    def _how_to_get(self) -> str:
        target = self.data_dir / "celeba"
        return (
            f"To get them: download img_align_celeba.zip, {ATTRIBUTE_FILE} and {PARTITION_FILE} from the official "
            "Google Drive (https://drive.google.com/drive/folders/0B7EVK8r0v71pWEZsZE9oNnFzTm8) or Baidu Drive "
            "(https://pan.baidu.com/s/1CRxxhoQ97A5qbsKO7iaAJg, password rp0s), see "
            f"http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html; unzip the archive into {target}/ (giving "
            f"{target / IMAGE_DIR}/000001.jpg ...) and put the two text files in {target}/. "
            "--data.init_args.download true tries torchvision's Google Drive download, which is often refused by its "
            f"daily quota. The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
        )
