"""Images with captions for text-to-image models: CUB-200-2011 birds, Oxford-102 flowers, shapes.

Datasets and the caption files:

- CUB-200-2011 (Wah et al. 2011, https://www.vision.caltech.edu/datasets/cub_200_2011/): 11,788
  bird photographs of 200 species with bounding boxes; ten captions per image by Reed et al. 2016
  (arXiv:1605.05395). Split of StackGAN/AttnGAN: 150 training and 50 test species
  (8,855 / 2,933 images), given by ``train/filenames.pickle`` and ``test/filenames.pickle``.
- Oxford-102 flowers (Nilsback & Zisserman 2008, https://www.robots.ox.ac.uk/~vgg/data/flowers/102/):
  8,189 images of 102 species, ten captions per image (Reed et al.). Split of StackGAN: the 82
  classes of ``text_c10/trainvalclasses.txt`` train, the 20 of ``text_c10/testclasses.txt`` test.
- ``shapes``: a synthetic set made in memory (no files): a red/green/blue/yellow circle, square or
  triangle on black, captions naming both ("a small red circle"). Trains on a CPU in minutes and
  lets tests measure whether a model follows its captions.

Layouts (those of the StackGAN and AttnGAN repositories' ``data/birds`` and ``data/flowers``),
under ``<data_dir>/birds`` or ``<data_dir>`` for CUB, ``<data_dir>/flowers`` or ``<data_dir>``
for Oxford-102::

    birds/CUB_200_2011/images/<class>/<image>.jpg      flowers/jpg/image_XXXXX.jpg
    birds/CUB_200_2011/images.txt                       flowers/text_c10/class_XXXXX/image_XXXXX.txt
    birds/CUB_200_2011/bounding_boxes.txt               flowers/text_c10/trainvalclasses.txt
    birds/text/<class>/<image>.txt                      flowers/text_c10/testclasses.txt
    birds/train/filenames.pickle   birds/test/filenames.pickle

Cropping: a bird is cut out around its bounding box (x, y, w, h) as StackGAN and AttnGAN do: a
square of half-side r = int(0.75 * max(w, h)) around the box centre (int((2x + w) / 2),
int((2y + h) / 2)), clipped to the image (so near a border it is not square), then resized to
``image_size`` x ``image_size``. Flowers have no boxes: the centred square is used (what
resizing the shorter side and cropping gives). ``random_flip`` flips training images (as the
public code does); its random crops (76/64 of the size, then a 64 crop) are not applied.

Captions: a caption file has one caption per line; empty lines are skipped and the first
``captions_per_image`` (10) are kept. Each training epoch shows each image with one of its
captions drawn from (seed, epoch, image) only, so a resumed run sees the same pairs as an
uninterrupted one and DataLoader workers need no shared state; val and test always use the
caption drawn for epoch 0. Tokens and the vocabulary: `genmodels.text.vocabulary` (lowercase,
``\\w+`` words, ``<pad>`` 0 and ``<unk>`` 1, the words of the *training* captions seen at least
``min_word_count`` times). Captions longer than ``max_length`` (18, AttnGAN's) keep their first
words.

Batches: ``image`` uint8 (B, 3, S, S) (float in [-1, 1] on the device), ``label`` int64 species
(0-based; for shapes colour + 4 * shape, in 0..11; ``num_classes`` says how many), ``tokens``
int64 (B, max_length) padded with 0, ``lengths`` int64 (B,), ``caption`` list of B strings (the
caption as written). The CLI links ``vocab`` (and ``image_shape``) into the model.
"""

from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from datamodules.base import DATA_ENV_VAR, SPLITS, ResumableSampler, check_int
from datamodules.cifar10 import random_hflip
from datamodules.image_folder import LazyImageDataModule
from genmodels.text.vocabulary import Vocabulary, build_vocab

__all__ = ["TextImageDataModule", "TextImageDataset", "read_filenames", "stackgan_crop_box", "SHAPE_COLOURS", "SHAPES"]

DATASETS = ("cub", "oxford102", "shapes")
Box = tuple[float, float, float, float]

#: Colours and shapes of the synthetic set (RGB on a black background).
SHAPE_COLOURS = {"red": (230, 40, 40), "green": (40, 210, 40), "blue": (40, 70, 230), "yellow": (230, 220, 40)}
SHAPES = ("circle", "square", "triangle")


# ---------------------------------------------------------------------------------------------
# Reading the public files


class _ListOfStringsUnpickler(pickle.Unpickler):
    """Rebuilds only lists of strings: a crafted pickle cannot reach any callable."""

    # Protocol-2 pickles written by Python 3 rebuild bytes through _codecs.encode (a pure function).
    _allowed = {("builtins", "list"): list, ("builtins", "str"): str, ("builtins", "bytes"): bytes,
                ("__builtin__", "list"): list, ("__builtin__", "unicode"): str, ("_codecs", "encode"): codecs.encode}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        raise ValueError(f"refusing to unpickle {module}.{name}: a filenames.pickle holds a list of strings only")


def read_filenames(path: Path) -> list[str]:
    """The ``"<class>/<image>"`` keys of a StackGAN ``filenames.pickle`` (Python 2 or 3 pickle)."""
    try:
        with open(path, "rb") as file:
            names = _ListOfStringsUnpickler(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError) as err:
        raise ValueError(f"{path}: not a readable pickle ({err})") from err
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise ValueError(f"{path}: expected a list of '<class>/<image>' strings, got {type(names).__name__}")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]


def read_captions(path: Path, limit: int) -> list[str]:
    """The first ``limit`` non-empty lines of a caption file."""
    if not path.is_file():
        raise FileNotFoundError(f"caption file missing: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    captions = [line for line in lines if line][:limit]
    if not captions:
        raise ValueError(f"{path} holds no caption")
    return captions


def _read_table(path: Path, columns: int) -> dict[str, list[str]]:
    """``{id: [fields...]}`` of a whitespace-separated CUB table with ``columns`` fields per row."""
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns:
            raise ValueError(f"{path}, line {number}: expected {columns} fields, got {line!r}")
        table[fields[0]] = fields[1:]
    return table


def stackgan_crop_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) cut around a bounding box (x, y, w, h), StackGAN/AttnGAN's rule."""
    x, y, w, h = box
    r = int(max(w, h) * 0.75)
    centre_x, centre_y = int((2 * x + w) / 2), int((2 * y + h) / 2)
    return max(0, centre_x - r), max(0, centre_y - r), min(width, centre_x + r), min(height, centre_y + r)


def load_cropped(path: str, box: Optional[Box], image_size: int) -> torch.Tensor:
    """uint8 (3, S, S): the StackGAN crop around ``box`` (or the centred square), resized."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            if box is None:
                side = min(width, height)
                left, top = (width - side) // 2, (height - side) // 2
                crop = (left, top, left + side, top + side)
            else:
                crop = stackgan_crop_box(box, width, height)
            pixels = np.asarray(image.crop(crop).resize((image_size, image_size), Image.Resampling.BILINEAR), dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file missing: {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


@dataclass
class Records:
    """One split: image sources (paths, or in-memory uint8 images), boxes, labels, captions."""

    images: Union[list[str], torch.Tensor]
    boxes: list[Optional[Box]]
    labels: torch.Tensor
    captions: list[list[str]]


def read_cub(root: Path, split: str, captions_per_image: int) -> Records:
    """CUB in the StackGAN layout (see the module docstring); val is the test split."""
    cub = root / "CUB_200_2011"
    keys = read_filenames(root / ("train" if split == "train" else "test") / "filenames.pickle")
    paths = {name.rsplit(".", 1)[0]: image_id for image_id, (name,) in _read_table(cub / "images.txt", 2).items()}
    boxes = _read_table(cub / "bounding_boxes.txt", 5)
    missing = [k for k in keys if k not in paths]
    if missing:
        raise ValueError(f"{cub / 'images.txt'} does not list {len(missing)} images of the split, e.g. {missing[0]}")
    return Records(
        images=[str(cub / "images" / f"{key}.jpg") for key in keys],
        boxes=[tuple(float(v) for v in boxes[paths[key]]) for key in keys],  # type: ignore[misc]
        labels=torch.tensor([_class_number(key.split("/")[0]) for key in keys], dtype=torch.int64),
        captions=[read_captions(root / "text" / f"{key}.txt", captions_per_image) for key in keys],
    )


def read_oxford102(root: Path, split: str, captions_per_image: int) -> Records:
    """Oxford-102 in the StackGAN layout: classes from ``text_c10/{trainval,test}classes.txt``."""
    text = root / "text_c10"
    listing = text / ("trainvalclasses.txt" if split == "train" else "testclasses.txt")
    classes = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    images, labels, captions = [], [], []
    for name in classes:
        folder = text / name
        if not folder.is_dir():
            raise FileNotFoundError(f"{listing} lists {name} but {folder} does not exist")
        for caption_file in sorted(folder.glob("image_*.txt")):
            images.append(str(root / "jpg" / f"{caption_file.stem}.jpg"))
            labels.append(_class_number(name))
            captions.append(read_captions(caption_file, captions_per_image))
    return Records(images, [None] * len(images), torch.tensor(labels, dtype=torch.int64), captions)


def _class_number(name: str) -> int:
    """0-based class from "001.Black_footed_Albatross" or "class_00001"."""
    digits = name.split(".")[0].removeprefix("class_")
    if not digits.isdigit():
        raise ValueError(f"cannot read a class number from folder name {name!r}")
    return int(digits) - 1


# ---------------------------------------------------------------------------------------------
# The synthetic shapes set


def shape_caption_templates() -> tuple[str, ...]:
    return (
        "a {size} {colour} {shape}",
        "a {colour} {shape} on a black background",
        "there is a {shape} that is {colour}",
        "this {colour} {shape} is {size}",
        "the picture shows one {size} {colour} {shape}",
    )


def make_shapes(num: int, image_size: int, seed: int) -> Records:
    """``num`` images of one coloured shape on black, with five captions each (colour and shape named)."""
    rng = np.random.default_rng(seed)
    images = torch.empty(num, 3, image_size, image_size, dtype=torch.uint8)
    captions, colours = [], list(SHAPE_COLOURS)
    for i in range(num):
        colour, shape = colours[i % len(colours)], SHAPES[(i // len(colours)) % len(SHAPES)]
        scale = rng.uniform(0.45, 0.8)
        half = scale * image_size / 2
        cx, cy = rng.uniform(half, image_size - half, size=2)
        canvas = Image.new("RGB", (image_size, image_size), (0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        box = (cx - half, cy - half, cx + half, cy + half)
        if shape == "circle":
            draw.ellipse(box, fill=SHAPE_COLOURS[colour])
        elif shape == "square":
            draw.rectangle(box, fill=SHAPE_COLOURS[colour])
        else:
            draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=SHAPE_COLOURS[colour])
        images[i] = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)
        size = "small" if scale < 0.6 else "large"
        captions.append([t.format(size=size, colour=colour, shape=shape) for t in shape_caption_templates()])
    # The label is the (colour, shape) pair, so DAMSM does not treat same-pair captions as negatives.
    labels = torch.tensor([i % len(colours) + len(colours) * ((i // len(colours)) % len(SHAPES)) for i in range(num)])
    return Records(images, [None] * num, labels, captions)


# ---------------------------------------------------------------------------------------------
# Dataset and sampler


class TextImageDataset(Dataset):
    """Images with their captions; a batch holds one caption per image, chosen per epoch.

    Index ``epoch * len(self) + i`` means image ``i`` with the caption drawn for ``epoch`` (the
    training sampler encodes the epoch this way, so workers need no shared epoch counter).
    """

    def __init__(self, records: Records, vocab: Vocabulary, image_size: int, max_length: int, seed: int) -> None:
        self.records, self.vocab = records, vocab
        self.image_size, self.max_length, self.seed = image_size, max_length, seed
        self.labels = records.labels
        # Tokens of every caption, computed once: (image, caption) -> word indices.
        self._ids = [[vocab.ids(c)[0][:max_length] or [1] for c in caps] for caps in records.captions]

    def __len__(self) -> int:
        return len(self.records.labels)

    def caption_index(self, image: int, epoch: int) -> int:
        """Which caption of ``image`` epoch ``epoch`` shows: a function of (seed, epoch, image) only."""
        count = len(self.records.captions[image])
        return int(np.random.default_rng([self.seed, epoch, image]).integers(count))

    def image(self, i: int) -> torch.Tensor:
        images = self.records.images
        if isinstance(images, torch.Tensor):
            return images[i]
        return load_cropped(images[i], self.records.boxes[i], self.image_size)

    def __getitem__(self, index: int) -> dict[str, Any]:
        batch = self.__getitems__([index])
        return {key: value[0] for key, value in batch.items()}

    def load_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image decoded into memory, with the labels (`read_split`'s contract; small sets only)."""
        batch = self.__getitems__(range(len(self)))
        return batch["image"], batch["label"]

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        n = len(self)
        pairs = [(int(k) % n, int(k) // n) for k in indices]
        tokens = torch.zeros(len(pairs), self.max_length, dtype=torch.long)
        lengths = torch.zeros(len(pairs), dtype=torch.long)
        captions = []
        for row, (i, epoch) in enumerate(pairs):
            c = self.caption_index(i, epoch)
            ids = self._ids[i][c]
            tokens[row, : len(ids)] = torch.tensor(ids)
            lengths[row] = len(ids)
            captions.append(self.records.captions[i][c])
        images = [self.image(i) for i, _ in pairs]
        empty = torch.empty(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        return {
            "image": torch.stack(images) if images else empty,
            "label": self.labels.index_select(0, torch.tensor([i for i, _ in pairs], dtype=torch.long)),
            "tokens": tokens,
            "lengths": lengths,
            "caption": captions,
        }


class EpochCaptionSampler(ResumableSampler):
    """`ResumableSampler` whose indices carry the epoch (``epoch * N + i``) for caption choice."""

    def __iter__(self):  # type: ignore[override]
        base = len(self.dataset) * self.epoch
        return (base + i for i in super().__iter__())


# ---------------------------------------------------------------------------------------------


class TextImageDataModule(LazyImageDataModule):
    """CUB birds, Oxford-102 flowers or synthetic shapes, with captions (see the module docstring).

    Args:
        dataset: ``cub``, ``oxford102`` or ``shapes`` (synthetic, in memory).
        data_dir: data root; ``None`` means ``$GENMODELS_DATA``, else ``./data``.
        batch_size: samples per batch (per rank).
        num_workers: DataLoader worker processes (JPEG decoding happens there).
        image_size: side of the square images (64 for StackGAN stage I, 256 for stage II).
        download: not available (the files need a manual download, see the README).
        seed: seed of the training order and of the caption drawn per image and epoch.
        pin_memory: pin batches for faster host-to-GPU copies.
        captions_per_image: captions read per image (10 in the public caption files).
        max_length: words per caption (AttnGAN: 18); longer captions keep their first words.
        min_word_count: words seen fewer times in the training captions map to ``<unk>``.
        synthetic_size: ``shapes`` only: training images (val and test have a quarter as many).
        random_flip: flip training images horizontally with probability 0.5, on the device (the
            public StackGAN/AttnGAN/DF-GAN code flips; captions rarely say left or right).
    """

    dataset_name = "text-image"
    _channels = 3
    _num_classes = 0

    def __init__(
        self,
        dataset: Literal["cub", "oxford102", "shapes"] = "cub",
        data_dir: Optional[str] = None,
        batch_size: int = 24,
        num_workers: int = 4,
        image_size: int = 64,
        download: bool = False,
        seed: int = 0,
        pin_memory: bool = False,
        captions_per_image: int = 10,
        max_length: int = 18,
        min_word_count: int = 1,
        synthetic_size: int = 1024,
        random_flip: bool = False,
    ) -> None:
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r} (--data.init_args.dataset)")
        for name, value, minimum in [("captions_per_image", captions_per_image, 1), ("max_length", max_length, 1),
                                     ("min_word_count", min_word_count, 1), ("synthetic_size", synthetic_size, 4)]:
            check_int(name, value, minimum)
        super().__init__(data_dir, batch_size, num_workers, image_size, download, seed, pin_memory)
        self.dataset, self.dataset_name = dataset, dataset
        self.captions_per_image, self.max_length = captions_per_image, max_length
        self.min_word_count, self.synthetic_size = min_word_count, synthetic_size
        self.random_flip = random_flip
        self._records: dict[str, Records] = {}
        self._vocab: Optional[Vocabulary] = None

    @property
    def num_classes(self) -> int:
        """Species (CUB 200, Oxford-102 102) or (colour, shape) pairs (shapes 12): what ``label`` indexes."""
        return {"cub": 200, "oxford102": 102, "shapes": len(SHAPE_COLOURS) * len(SHAPES)}[self.dataset]

    # -- what the CLI links into the model ------------------------------------------------------
    @property
    def vocab(self) -> Optional[list[str]]:
        """The vocabulary (``[<pad>, <unk>, words...]``), built from the training captions on first use.

        None while the caption files are missing, so a config can be instantiated (and checked)
        before the data is in place; fitting then stops on the missing files with their layout.
        """
        try:
            return self.vocabulary.words
        except FileNotFoundError:
            return None

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocab is None:
            captions = (c for caps in self.records("train").captions for c in caps)
            words = build_vocab(captions, self.min_word_count)
            if len(words) <= 2:
                raise ValueError(f"no word of the {self.dataset} training captions appears min_word_count="
                                 f"{self.min_word_count} times; lower --data.init_args.min_word_count")
            self._vocab = Vocabulary(words)
        return self._vocab

    # -- reading ------------------------------------------------------------------------------
    def records(self, split: str) -> Records:
        """Image sources, boxes, labels and captions of ``split`` (read once)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        key = "train" if split == "train" else "test"  # val is the test split, as in StackGAN/AttnGAN
        if key not in self._records:
            self._records[key] = self._read(key)
            if len(self._records[key].labels) == 0:
                raise ValueError(f"the {key} split of {self.dataset} is empty under {self.data_dir}")
        return self._records[key]

    def _read(self, split: str) -> Records:
        if self.dataset == "shapes":
            size = self.synthetic_size if split == "train" else max(4, self.synthetic_size // 4)
            return make_shapes(size, self.image_size, seed=self.seed * 2 + (split == "test"))
        root = self._locate()
        reader = read_cub if self.dataset == "cub" else read_oxford102
        return reader(root, split, self.captions_per_image)

    def lazy_split(self, split: str) -> TextImageDataset:  # type: ignore[override]
        return TextImageDataset(self.records(split), self.vocabulary, self.image_size, self.max_length, self.seed)

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        num_replicas, rank = self._world()
        sampler = EpochCaptionSampler(dataset, num_replicas, rank, seed=self.seed, on_iter=self._on_train_iter)
        if len(sampler) < self.batch_size:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the {len(sampler)} training images per rank "
                f"of {self.dataset}; lower --data.init_args.batch_size"
            )
        self._position_sampler(sampler)
        return self._loader(dataset, sampler=sampler, drop_last=True)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        if self.random_flip and self.trainer is not None and self.trainer.training:
            batch = {**batch, "image": random_hflip(batch["image"])}
        return batch

    def download_files(self) -> None:
        raise RuntimeError(f"{self.dataset} cannot be downloaded automatically. {self._how_to_get()}")

    # -- locating the files -------------------------------------------------------------------
    @property
    def search_dirs(self) -> list[Path]:
        sub = "birds" if self.dataset == "cub" else "flowers"
        return [self.data_dir / sub, self.data_dir]

    def _complete(self, directory: Path) -> bool:
        if self.dataset == "cub":
            needed = ["CUB_200_2011/images.txt", "CUB_200_2011/bounding_boxes.txt", "train/filenames.pickle", "test/filenames.pickle"]
            return all((directory / n).is_file() for n in needed) and (directory / "text").is_dir()
        needed = ["text_c10/trainvalclasses.txt", "text_c10/testclasses.txt"]
        return all((directory / n).is_file() for n in needed) and (directory / "jpg").is_dir()

    def _locate(self) -> Path:
        for directory in self.search_dirs:
            if self._complete(directory):
                return directory
        searched = "\n".join(f"  {d}" for d in self.search_dirs)
        raise FileNotFoundError(f"{self.dataset} files not found. Searched:\n{searched}\n{self._how_to_get()}")

    def _how_to_get(self) -> str:
        if self.dataset == "cub":
            return (
                f"Expected {self.data_dir}/birds/CUB_200_2011/{{images/,images.txt,bounding_boxes.txt}}, "
                f"{self.data_dir}/birds/text/<class>/<image>.txt and {{train,test}}/filenames.pickle. Get CUB_200_2011.tgz "
                "from https://www.vision.caltech.edu/datasets/cub_200_2011/ and the captions and filenames.pickle from the "
                "AttnGAN/StackGAN repositories' birds.zip (github.com/taoxugit/AttnGAN, data/birds), then unpack both into "
                f"{self.data_dir}/birds/. The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
            )
        return (
            f"Expected {self.data_dir}/flowers/jpg/image_XXXXX.jpg and {self.data_dir}/flowers/text_c10/class_XXXXX/"
            "image_XXXXX.txt with text_c10/trainvalclasses.txt and testclasses.txt. Get 102flowers.tgz from "
            "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ and the captions (text_c10) from Reed et al.'s "
            "cvpr2016 data (github.com/reedscot/cvpr2016) or StackGAN's flowers data, then unpack both into "
            f"{self.data_dir}/flowers/. The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
        )
