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

Layouts. The folder holding the captions is ``<data_dir>/birds`` (CUB) or ``<data_dir>/flowers``
(Oxford-102), ``<data_dir>`` itself, or any folder up to two levels below (``cvpr2016_flowers/``,
an archive's extra top folder). It holds a caption folder, ``text/`` or ``text_c10/``, of
``<class>/<image>.txt`` files (anything else in it, such as Reed et al.'s ``.t7`` and ``.h5``
files, is ignored), and a split, either

- StackGAN/AttnGAN's ``train/filenames.pickle`` and ``test/filenames.pickle`` (what their
  published numbers used; preferred when both kinds are present, as their code does), or
- Reed et al.'s class lists ``trainvalclasses.txt`` and ``testclasses.txt``, beside the caption
  folder (cvpr2016 data) or inside it.

The images: CUB's ``CUB_200_2011/images/<class>/<image>.jpg`` (with ``images.txt`` and
``bounding_boxes.txt`` beside ``images/``), Oxford-102's ``jpg/image_XXXXX.jpg`` (``102flowers.tgz``),
in the caption folder's parent (the StackGAN layout), next to it, or in ``<data_dir>``::

    birds/CUB_200_2011/images/<class>/<image>.jpg      flowers/jpg/image_XXXXX.jpg
    birds/CUB_200_2011/{images,bounding_boxes}.txt      flowers/text_c10/class_XXXXX/image_XXXXX.txt
    birds/text/<class>/<image>.txt                      flowers/{train,test}/filenames.pickle
    birds/{train,test}/filenames.pickle                 or cvpr2016_flowers/{trainval,test}classes.txt

Bad files: every image is checked at setup (`datamodules.image_folder.image_file_problem`) and
every caption file is read; an unreadable image or a caption file without a caption is refused
with a `DataError` naming it (``bad_files: error``, the default), or with ``bad_files: skip``
left out (the image with its captions) with a warning naming it.

Cropping: a bird is cut out around its bounding box (x, y, w, h) as StackGAN and AttnGAN do: a
square of half-side r = int(0.75 * max(w, h)) around the box centre (int((2x + w) / 2),
int((2y + h) / 2)), clipped to the image (so near a border it is not square). Then, with
``preprocessing`` (S = ``image_size``):

- ``attngan`` (default; AttnGAN code/datasets.py and DF-GAN code/lib/perpare.py): the shorter side
  resized to int(S x 76 / 64) keeping the aspect ratio (torchvision ``Resize``), then an S x S
  crop at a random offset (``RandomCrop``), on every split as in both codes (so DF-GAN's FID
  reference images are cut the same way);
- ``stackgan`` (the TF StackGAN, misc/preprocess_birds.py + misc/datasets.py): squashed to
  int(S x 76 / 64) square, then the random S crop;
- ``squash``: squashed to S x S, no crop (Flowers without boxes: the centred square).

Crop offsets are drawn from (seed, epoch, image) only (val and test: epoch 0), so runs resume
exactly. ``random_flip`` flips training images (as the public code does).

Captions: a caption file has one caption per line; empty lines are skipped and the first
``captions_per_image`` (10) are kept. Each training epoch shows each image with one of its
captions drawn from (seed, epoch, image) only, so a resumed run sees the same pairs as an
uninterrupted one and DataLoader workers need no shared state; val and test always use the
caption drawn for epoch 0. Tokens and the vocabulary: `genmodels.text.vocabulary` (lowercase,
``\\w+`` words, ``<pad>`` 0 and ``<unk>`` 1, the words of the *training* captions seen at least
``min_word_count`` times). Captions longer than ``max_length`` (18, AttnGAN's) keep a random
subset of ``max_length`` of their words in their original order (AttnGAN code/datasets.py
``get_caption``), drawn from (seed, epoch, image); ``long_captions: first`` keeps the first words.

The TF StackGAN's two training inputs (misc/datasets.py), off by default: ``captions_per_embedding:
K`` adds ``embedding_tokens`` (B, K, T) and ``embedding_lengths`` (B, K), K distinct captions per
image drawn from (seed, epoch, image) (StackGAN averages their sentence embeddings, the code's
TRAIN.NUM_EMBEDDING 4); ``wrong_images: other_class`` adds ``wrong_image`` (uint8, then scaled and
flipped like ``image``), a mismatched training image per image by the code's rule
(`TextImageDataset.wrong_index`). Both are training-only; the class ids are the labels, so a
training split of one class is refused.

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

from datamodules.base import (
    DATA_ENV_VAR, SPLITS, DataError, DataNotFoundError, ResumableSampler, candidate_dirs, check_int, ignored_entry,
    mirror, searched_dirs, to_model_range,
)
from datamodules.image_folder import BadFiles, LazyImageDataModule, image_file_problem
from genmodels.text.vocabulary import Vocabulary, build_vocab
from genmodels.errors import InvalidValue, MissingFile

__all__ = [
    "TextImageDataModule", "TextImageDataset", "TextImageLayout", "read_filenames", "stackgan_crop_box", "SHAPE_COLOURS",
    "SHAPES",
]

DATASETS = ("cub", "oxford102", "shapes")
_NO_CAPTIONS = "a caption folder text/ or text_c10/"
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
        raise InvalidValue(f"refusing to unpickle {module}.{name}: a filenames.pickle holds a list of strings only")


def read_filenames(path: Path) -> list[str]:
    """The ``"<class>/<image>"`` keys of a StackGAN ``filenames.pickle`` (Python 2 or 3 pickle)."""
    try:
        with open(path, "rb") as file:
            names = _ListOfStringsUnpickler(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise DataError(f"{path}: not a readable filenames.pickle ({err}); re-download it") from err
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise DataError(f"{path}: expected a list of '<class>/<image>' strings, got {type(names).__name__}")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]


def read_captions(path: Path, limit: int) -> list[str]:
    """The first ``limit`` non-empty lines of a caption file (a `DataError` if it has none)."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    captions = [line for line in lines if line][:limit]
    if not captions:
        raise DataError(f"{path} holds no caption")
    return captions


def _read_table(path: Path, columns: int) -> dict[str, list[str]]:
    """``{id: [fields...]}`` of a whitespace-separated CUB table with ``columns`` fields per row."""
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != columns:
            raise DataError(f"{path}, line {number}: expected {columns} fields, got {line!r}")
        table[fields[0]] = fields[1:]
    return table


def stackgan_crop_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) cut around a bounding box (x, y, w, h), StackGAN/AttnGAN's rule."""
    x, y, w, h = box
    r = int(max(w, h) * 0.75)
    centre_x, centre_y = int((2 * x + w) / 2), int((2 * y + h) / 2)
    return max(0, centre_x - r), max(0, centre_y - r), min(width, centre_x + r), min(height, centre_y + r)


Preprocessing = Literal["attngan", "stackgan", "squash"]


def crop_offset(key: Sequence[int], height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of a ``RandomCrop(size)`` in a ``height`` x ``width`` image, drawn from ``key`` only."""
    rng = np.random.default_rng([*key, 7])
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def _resize_then_crop(image: Image.Image, image_size: int, preprocessing: str, key: Sequence[int]) -> Image.Image:
    """The authors' Resize(int(S x 76 / 64)) (aspect kept, or squashed for the TF StackGAN) + RandomCrop(S)."""
    large = int(image_size * 76 / 64)
    width, height = image.size
    if preprocessing == "stackgan":
        new = (large, large)
    elif width <= height:  # torchvision Resize(int): the shorter side to `large`, the other truncated
        new = (large, int(large * height / width))
    else:
        new = (int(large * width / height), large)
    image = image.resize(new, Image.Resampling.BILINEAR)
    top, left = crop_offset(key, new[1], new[0], image_size)
    return image.crop((left, top, left + image_size, top + image_size))


def load_cropped(path: str, box: Optional[Box], image_size: int, preprocessing: str = "squash",
                 key: Sequence[int] = (0,)) -> torch.Tensor:
    """uint8 (3, S, S): the StackGAN crop around ``box`` (else the whole image, or its centred
    square for ``squash``), then ``preprocessing`` (see the module docstring); ``key`` seeds the crop."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            if box is not None:
                crop = stackgan_crop_box(box, width, height)
            elif preprocessing == "squash":
                side = min(width, height)
                left, top = (width - side) // 2, (height - side) // 2
                crop = (left, top, left + side, top + side)
            else:
                crop = (0, 0, width, height)
            image = image.crop(crop)
            if preprocessing == "squash":
                image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
            else:
                image = _resize_then_crop(image, image_size, preprocessing, key)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise MissingFile(f"image file missing: {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise InvalidValue(f"{path}: not a readable image ({err})") from err
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


@dataclass
class Records:
    """One split: image sources (paths, or in-memory uint8 images), boxes, labels, captions."""

    images: Union[list[str], torch.Tensor]
    boxes: list[Optional[Box]]
    labels: torch.Tensor
    captions: list[list[str]]


@dataclass
class TextImageLayout:
    """Where the parts of a CUB or Oxford-102 copy were found (see the module docstring)."""

    root: Path  # the folder holding the caption folder
    captions: Path  # text/ or text_c10/
    images: Path  # CUB_200_2011/images or jpg/
    split_files: tuple[Path, Path]  # (train, test): filenames.pickle files or class lists
    split_kind: Literal["pickle", "classes"]
    cub_tables: Optional[Path] = None  # CUB_200_2011/ with images.txt and bounding_boxes.txt

    def describe(self) -> str:
        source = "StackGAN/AttnGAN" if self.split_kind == "pickle" else "Reed et al. (cvpr2016)"
        split = ("train|test/filenames.pickle" if self.split_kind == "pickle"
                 else f"class lists in {self.split_files[0].parent.relative_to(self.root) or '.'}/")
        boxes = "" if self.cub_tables is None else ", bounding boxes"
        return f"{source}: captions {self.captions.name}/, split {split}, images {self.images}{boxes}"


def _file_index(folder: Path, suffix: str, depth: int) -> dict[str, Path]:
    """``{stem: path}`` of the ``suffix`` files exactly ``depth`` levels below ``folder`` (1: in it,
    2: in its subfolders), hidden entries and ``__MACOSX`` skipped."""
    pattern = "/".join(["*"] * depth) + suffix
    return {p.stem: p for p in sorted(folder.glob(pattern))
            if not any(ignored_entry(part) for part in p.relative_to(folder).parts) and p.is_file()}


def _split_keys(layout: TextImageLayout, split: str, captions: dict[str, Path]) -> list[str]:
    """The image stems of ``split``, in the order of the split file (pickle) or of the class lists."""
    path = layout.split_files[0 if split == "train" else 1]
    if layout.split_kind == "pickle":
        # CUB keys are "<class>/<image>"; only the image name is needed (names are unique).
        return [Path(key).name.removesuffix(".jpg") for key in read_filenames(path)]
    classes = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    keys = []
    for name in classes:
        folder = layout.captions / name
        if not folder.is_dir():
            raise DataError(f"{path} lists the class {name} but {folder} does not exist; the captions are incomplete")
        keys += [p.stem for p in sorted(folder.glob("*.txt")) if not ignored_entry(p.name)]
    return keys


def read_text_image(layout: TextImageLayout, split: str, captions_per_image: int, screen: Any) -> Records:
    """One split of CUB or Oxford-102: images, StackGAN crop boxes (CUB), species and captions.

    ``screen(paths, check)`` is the datamodule's bad-file policy (`LazyImageDataModule.screen_files`).
    """
    caption_files = _file_index(layout.captions, ".txt", depth=2)
    image_files = {**_file_index(layout.images, ".jpg", depth=1), **_file_index(layout.images, ".jpg", depth=2)}
    keys = _split_keys(layout, split, caption_files)
    for key in keys:
        if key not in caption_files:
            raise DataError(f"no caption file {key}.txt in the class folders of {layout.captions} "
                            f"(listed by {layout.split_files[0 if split == 'train' else 1]})")
        if key not in image_files:
            raise DataError(f"no image {key}.jpg under {layout.images} (listed by {layout.split_files[0 if split == 'train' else 1]})")
    boxes: dict[str, Box] = {}
    if layout.cub_tables is not None:
        names = {image_id: Path(name).stem for image_id, (name,) in _read_table(layout.cub_tables / "images.txt", 2).items()}
        boxes = {names[i]: tuple(float(v) for v in box) for i, box in  # type: ignore[misc]
                 _read_table(layout.cub_tables / "bounding_boxes.txt", 5).items() if i in names}

    def caption_problem(path: Path) -> Optional[str]:
        try:
            read_captions(path, 1)
        except DataError:
            return "an empty caption file (no caption)"
        return None

    keep = screen([caption_files[k] for k in keys], check=caption_problem)
    keys = [k for k, ok in zip(keys, keep) if ok]
    keep = screen([image_files[k] for k in keys], check=image_file_problem)
    keys = [k for k, ok in zip(keys, keep) if ok]
    return Records(
        images=[str(image_files[k]) for k in keys],
        boxes=[boxes.get(k) for k in keys],
        labels=torch.tensor([_class_number(caption_files[k].parent.name) for k in keys], dtype=torch.int64),
        captions=[read_captions(caption_files[k], captions_per_image) for k in keys],
    )


def _class_number(name: str) -> int:
    """0-based class from "001.Black_footed_Albatross" or "class_00001"."""
    digits = name.split(".")[0].removeprefix("class_")
    if not digits.isdigit():
        raise DataError(f"cannot read a class number from folder name {name!r}")
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

    def __init__(self, records: Records, vocab: Vocabulary, image_size: int, max_length: int, seed: int,
                 preprocessing: str = "attngan", long_captions: str = "subset", captions_per_embedding: int = 1,
                 wrong_images: str = "none") -> None:
        self.records, self.vocab = records, vocab
        self.image_size, self.max_length, self.seed = image_size, max_length, seed
        self.preprocessing, self.long_captions = preprocessing, long_captions
        self.captions_per_embedding, self.wrong_images = captions_per_embedding, wrong_images
        self.labels = records.labels
        if wrong_images == "other_class" and len(self.labels.unique()) < 2:
            raise InvalidValue(f"wrong_images: other_class needs at least two classes among the training images, found "
                               f"{len(self.labels.unique())}; use --data.init_args.wrong_images none")
        # Tokens of every caption, computed once: (image, caption) -> word indices (all of them).
        self._ids = [[vocab.ids(c)[0] or [1] for c in caps] for caps in records.captions]

    def __len__(self) -> int:
        return len(self.records.labels)

    def subset(self, index: torch.Tensor) -> "TextImageDataset":
        """The images at ``index`` with their captions (a `max_train_images` subset)."""
        r, rows = self.records, index.tolist()
        images = r.images[index] if isinstance(r.images, torch.Tensor) else [r.images[i] for i in rows]
        records = Records(images, [r.boxes[i] for i in rows], r.labels[index], [r.captions[i] for i in rows])
        return TextImageDataset(records, self.vocab, self.image_size, self.max_length, self.seed,
                                self.preprocessing, self.long_captions, self.captions_per_embedding, self.wrong_images)

    def files(self) -> list[str]:
        return [] if isinstance(self.records.images, torch.Tensor) else list(self.records.images)

    def caption_index(self, image: int, epoch: int) -> int:
        """Which caption of ``image`` epoch ``epoch`` shows: a function of (seed, epoch, image) only."""
        count = len(self.records.captions[image])
        return int(np.random.default_rng([self.seed, epoch, image]).integers(count))

    def embedding_caption_indices(self, image: int, epoch: int) -> list[int]:
        """The ``captions_per_embedding`` captions of ``image`` whose embeddings epoch ``epoch``
        averages: distinct, drawn from (seed, epoch, image) only (the TF StackGAN's
        ``np.random.choice(embedding_num, NUM_EMBEDDING, replace=False)``); all of them when the
        image has fewer."""
        count = len(self.records.captions[image])
        rng = np.random.default_rng([self.seed, epoch, image, 4])
        return [int(c) for c in rng.choice(count, min(self.captions_per_embedding, count), replace=False)]

    def wrong_index(self, image: int, epoch: int) -> int:
        """The mismatched image shown with ``image``'s text in ``epoch`` (``wrong_images: other_class``).

        The TF StackGAN's rule (misc/datasets.py ``next_batch``): a training image drawn uniformly;
        if it has the same class, it moves by an offset drawn from [100, 200) (modulo the set size),
        once. The code draws that offset once per batch; here it is drawn per image, from (seed,
        epoch, image) only, so workers and resumed runs agree. As in the code, a class spanning more
        than 100 consecutive images can still give a same-class image after the move.
        """
        n = len(self)
        rng = np.random.default_rng([self.seed, epoch, image, 7])
        wrong, offset = int(rng.integers(n)), int(rng.integers(100, 200))
        if int(self.labels[wrong]) == int(self.labels[image]):
            wrong = (wrong + offset) % n
        return wrong

    def image(self, i: int, epoch: int = 0) -> torch.Tensor:
        images = self.records.images
        if isinstance(images, torch.Tensor):
            return images[i]
        return load_cropped(images[i], self.records.boxes[i], self.image_size, self.preprocessing, (self.seed, epoch, i))

    def caption_ids(self, i: int, c: int, epoch: int) -> list[int]:
        """Word ids of caption ``c`` of image ``i``: at most ``max_length``, a random order-kept
        subset of a longer caption (AttnGAN ``get_caption``), drawn from (seed, epoch, image)."""
        ids = self._ids[i][c]
        if len(ids) <= self.max_length:
            return ids
        if self.long_captions == "first":
            return ids[: self.max_length]
        keep = np.random.default_rng([self.seed, epoch, i, c, 18]).permutation(len(ids))[: self.max_length]
        return [ids[k] for k in sorted(keep)]

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
            ids = self.caption_ids(i, c, epoch)
            tokens[row, : len(ids)] = torch.tensor(ids)
            lengths[row] = len(ids)
            captions.append(self.records.captions[i][c])
        images = [self.image(i, epoch) for i, epoch in pairs]
        empty = torch.empty(0, 3, self.image_size, self.image_size, dtype=torch.uint8)
        batch = {
            "image": torch.stack(images) if images else empty,
            "label": self.labels.index_select(0, torch.tensor([i for i, _ in pairs], dtype=torch.long)),
            "tokens": tokens,
            "lengths": lengths,
            "caption": captions,
            "index": torch.tensor([i for i, _ in pairs], dtype=torch.long),
        }
        if self.captions_per_embedding > 1:
            batch["embedding_tokens"], batch["embedding_lengths"] = self._embedding_captions(pairs)
        if self.wrong_images == "other_class":
            wrong = [self.wrong_index(i, epoch) for i, epoch in pairs]
            batch["wrong_image"] = torch.stack([self.image(j, epoch) for j, (_, epoch) in zip(wrong, pairs)]) if wrong else empty
            batch["wrong_index"] = torch.tensor(wrong, dtype=torch.long)
        return batch

    def _embedding_captions(self, pairs: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, max_length) tokens and (B, K) lengths of the captions averaged per image; an
        image with fewer than K captions has rows of length 0 (left out of its mean)."""
        k = self.captions_per_embedding
        tokens = torch.zeros(len(pairs), k, self.max_length, dtype=torch.long)
        lengths = torch.zeros(len(pairs), k, dtype=torch.long)
        for row, (i, epoch) in enumerate(pairs):
            for slot, c in enumerate(self.embedding_caption_indices(i, epoch)):
                ids = self.caption_ids(i, c, epoch)
                tokens[row, slot, : len(ids)] = torch.tensor(ids)
                lengths[row, slot] = len(ids)
        return tokens, lengths


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
        max_length: words per caption (AttnGAN: 18).
        long_captions: ``subset`` (AttnGAN's random order-kept subset of a longer caption) or ``first``.
        preprocessing: ``attngan`` (aspect-kept Resize(S x 76/64) + RandomCrop(S), AttnGAN/DF-GAN),
            ``stackgan`` (squash to S x 76/64 + RandomCrop(S), the TF StackGAN) or ``squash`` (to S).
        min_word_count: words seen fewer times in the training captions map to ``<unk>``.
        synthetic_size: ``shapes`` only: training images (val and test have a quarter as many).
        random_flip: mirror training images left-right with probability 0.5, on the device,
            reproducibly per (seed, epoch, image) (the public StackGAN/AttnGAN/DF-GAN code flips;
            captions rarely say left or right).
        max_train_images: train on this many images only, stratified by species (see
            `ImageDataModule`); the vocabulary still comes from all training captions.
        bad_files: ``error`` (default) or ``skip`` for unreadable images and empty caption files.
        captions_per_embedding: training batches also carry this many distinct captions per image
            (``embedding_tokens`` (B, K, T), ``embedding_lengths`` (B, K)), drawn per (seed, epoch,
            image), whose sentence embeddings StackGAN averages into the image's text embedding (the
            TF StackGAN's TRAIN.NUM_EMBEDDING 4); 1 (default): one caption. Val and test: one.
        wrong_images: ``other_class``: training batches also carry a mismatched image per image
            (``wrong_image``), drawn per (seed, epoch, image) by the TF StackGAN's rule (a random
            image, moved by 100-199 positions when it has the same class, see
            `TextImageDataset.wrong_index`), which StackGAN's D judges with the real image's text;
            ``none`` (default): StackGAN-Pytorch's pairs, the batch's texts rolled by one. Every
            dataset here has class ids (the species; shapes: colour and shape); a training split
            with a single class is refused.
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
        max_train_images: Optional[int] = None,
        bad_files: BadFiles = "error",
        preprocessing: Preprocessing = "attngan",
        long_captions: Literal["subset", "first"] = "subset",
        captions_per_embedding: int = 1,
        wrong_images: Literal["none", "other_class"] = "none",
    ) -> None:
        if dataset not in DATASETS:
            raise InvalidValue(f"dataset must be one of {DATASETS}, got {dataset!r} (--data.init_args.dataset)")
        for name, value, minimum in [("captions_per_image", captions_per_image, 1), ("max_length", max_length, 1),
                                     ("captions_per_embedding", captions_per_embedding, 1),
                                     ("min_word_count", min_word_count, 1), ("synthetic_size", synthetic_size, 4)]:
            check_int(name, value, minimum)
        if bad_files not in ("error", "skip"):
            raise InvalidValue(f"bad_files must be 'error' or 'skip', got {bad_files!r} (--data.init_args.bad_files)")
        if preprocessing not in ("attngan", "stackgan", "squash"):
            raise InvalidValue(f"preprocessing must be attngan, stackgan or squash, got {preprocessing!r} "
                             "(--data.init_args.preprocessing)")
        if long_captions not in ("subset", "first"):
            raise InvalidValue(f"long_captions must be subset or first, got {long_captions!r} (--data.init_args.long_captions)")
        if wrong_images not in ("none", "other_class"):
            raise InvalidValue(f"wrong_images must be none or other_class, got {wrong_images!r} (--data.init_args.wrong_images)")
        super().__init__(data_dir, batch_size, num_workers, image_size, download, seed, pin_memory,
                         max_train_images=max_train_images, random_flip=random_flip)
        self.dataset, self.dataset_name = dataset, dataset
        self.captions_per_image, self.max_length = captions_per_image, max_length
        self.min_word_count, self.synthetic_size = min_word_count, synthetic_size
        self.bad_files = bad_files
        self.preprocessing, self.long_captions = preprocessing, long_captions
        self.captions_per_embedding, self.wrong_images = captions_per_embedding, wrong_images
        self._layout: Optional[TextImageLayout] = None
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
                raise InvalidValue(f"no word of the {self.dataset} training captions appears min_word_count="
                                 f"{self.min_word_count} times; lower --data.init_args.min_word_count")
            self._vocab = Vocabulary(words)
        return self._vocab

    # -- reading ------------------------------------------------------------------------------
    def records(self, split: str) -> Records:
        """Image sources, boxes, labels and captions of ``split`` (read once)."""
        if split not in SPLITS:
            raise InvalidValue(f"split must be one of {SPLITS}, got {split!r}")
        key = "train" if split == "train" else "test"  # val is the test split, as in StackGAN/AttnGAN
        if key not in self._records:
            self._records[key] = self._read(key)
            if len(self._records[key].labels) == 0:
                raise InvalidValue(f"the {key} split of {self.dataset} is empty under {self.data_dir}")
        return self._records[key]

    def _read(self, split: str) -> Records:
        if self.dataset == "shapes":
            self.layout_found = "synthetic shapes, drawn in memory (no files)"
            size = self.synthetic_size if split == "train" else max(4, self.synthetic_size // 4)
            return make_shapes(size, self.image_size, seed=self.seed * 2 + (split == "test"))
        return read_text_image(self.locate(), split, self.captions_per_image, self.screen_files)

    def lazy_split(self, split: str) -> TextImageDataset:  # type: ignore[override]
        # The caption means and wrong images are training inputs (the TF code tests caption by caption).
        train = split == "train"
        return TextImageDataset(self.records(split), self.vocabulary, self.image_size, self.max_length, self.seed,
                                self.preprocessing, self.long_captions, self.captions_per_embedding if train else 1,
                                self.wrong_images if train else "none")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        wrong_index = batch.pop("wrong_index", None) if isinstance(batch, dict) else None
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        if isinstance(batch, dict) and "wrong_image" in batch and batch["wrong_image"].dtype == torch.uint8:
            # The wrong images get the real ones' treatment: model range, and each its own flip of the epoch.
            batch["wrong_image"] = to_model_range(batch["wrong_image"])
            if self.random_flip and wrong_index is not None and self.trainer is not None and self.trainer.training:
                batch["wrong_image"] = mirror(batch["wrong_image"], self.flip_decisions(self._epoch)[wrong_index.cpu()])
        return batch

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        num_replicas, rank = self._world()
        sampler = EpochCaptionSampler(dataset, num_replicas, rank, seed=self.seed, on_iter=self._on_train_iter)
        self.check_batch_size(len(dataset))
        self._position_sampler(sampler)
        return self._loader(dataset, sampler=sampler, drop_last=True)

    def report_details(self) -> dict[str, str]:
        details = super().report_details()
        details["vocabulary"] = f"{len(self.vocabulary.words):,} words (with <pad> and <unk>; min_word_count={self.min_word_count})"
        details["captions"] = f"up to {self.captions_per_image} per image, {self.max_length} words kept"
        if self.captions_per_embedding > 1:
            details["text embedding"] = f"training: the mean of {self.captions_per_embedding} captions' embeddings per image"
        if self.wrong_images != "none":
            details["wrong images"] = "training: a mismatched image of another class per image (TF StackGAN rule)"
        return details

    def sample_descriptions(self, count: int) -> list[str]:
        records = self._dataset("train").records
        return [f"train[{i}] class {int(records.labels[i])}: {records.captions[i][0]!r}" for i in range(min(count, len(records.labels)))]

    def download_files(self) -> None:
        raise RuntimeError(f"{self.dataset} cannot be downloaded automatically. {self._how_to_get()}")

    # -- locating the files -------------------------------------------------------------------
    @property
    def search_dirs(self) -> list[Path]:
        """The preferred folders for the captions (subfolders of ``data_dir`` are searched after them)."""
        sub = "birds" if self.dataset == "cub" else "flowers"
        return [self.data_dir / sub, self.data_dir]

    def _layout_in(self, directory: Path) -> tuple[Optional[TextImageLayout], str]:
        """The layout rooted at ``directory``, or (None, what is missing there)."""
        names = ("text", "text_c10") if self.dataset == "cub" else ("text_c10", "text")
        captions = next((directory / n for n in names if (directory / n).is_dir()), None)
        if captions is None:
            return None, _NO_CAPTIONS
        pickles = (directory / "train" / "filenames.pickle", directory / "test" / "filenames.pickle")
        if all(p.is_file() for p in pickles):
            split_files, kind = pickles, "pickle"
        else:
            lists = next(((d / "trainvalclasses.txt", d / "testclasses.txt") for d in (directory, captions)
                          if (d / "trainvalclasses.txt").is_file() and (d / "testclasses.txt").is_file()), None)
            if lists is None:
                return None, "a split: train/ and test/filenames.pickle, or trainvalclasses.txt and testclasses.txt"
            split_files, kind = lists, "classes"
        if self.dataset == "cub":
            folders = [directory / "CUB_200_2011", directory, directory.parent / "CUB_200_2011", self.data_dir / "CUB_200_2011"]
            cub = next((d for d in folders if (d / "images").is_dir()), None)
            if cub is None:
                return None, "the images CUB_200_2011/images/<class>/<image>.jpg"
            tables = cub if (cub / "images.txt").is_file() and (cub / "bounding_boxes.txt").is_file() else None
            return TextImageLayout(directory, captions, cub / "images", split_files, kind, tables), ""  # type: ignore[arg-type]
        folders = [directory / "jpg", directory / "images", directory.parent / "jpg", self.data_dir / "jpg"]
        images = next((d for d in folders if d.is_dir()), None)
        if images is None:
            return None, "the images jpg/image_XXXXX.jpg (from 102flowers.tgz)"
        return TextImageLayout(directory, captions, images, split_files, kind), ""  # type: ignore[arg-type]

    def locate(self) -> TextImageLayout:
        """The first complete layout among the candidate folders (see the module docstring)."""
        if self._layout is None:
            missing = ""
            searched = []
            for directory in candidate_dirs(self.data_dir, self.search_dirs, depth=2):
                searched.append(directory)
                layout, problem = self._layout_in(directory)
                if layout is not None:
                    self._layout, self.root_found, self.layout_found = layout, layout.root, layout.describe()
                    break
                if not missing and problem != _NO_CAPTIONS:
                    missing = f"{problem} beside {directory / 'text*'}"  # a folder with captions: what else it lacks
            else:
                what = missing or f"{_NO_CAPTIONS} of <class>/<image>.txt files"
                raise DataNotFoundError(self.dataset, what, searched_dirs(self.search_dirs, searched), self._how_to_get())
        return self._layout

    def _how_to_get(self) -> str:
        if self.dataset == "cub":
            return (
                f"Expected {self.data_dir}/birds/ with CUB_200_2011/ (images/, images.txt, bounding_boxes.txt), text/<class>/<image>.txt "
                "and train|test/filenames.pickle (or Reed et al.'s trainvalclasses.txt / testclasses.txt). Get CUB_200_2011.tgz "
                "from https://www.vision.caltech.edu/datasets/cub_200_2011/ and the captions and filenames.pickle from the "
                "AttnGAN/StackGAN repositories' birds.zip (github.com/taoxugit/AttnGAN, data/birds), then unpack both into "
                f"{self.data_dir}/birds/. The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
            )
        return (
            f"Expected {self.data_dir}/flowers/ with jpg/image_XXXXX.jpg, text_c10/class_XXXXX/image_XXXXX.txt and a split: "
            "train|test/filenames.pickle (StackGAN) or trainvalclasses.txt / testclasses.txt (Reed et al.). Get 102flowers.tgz from "
            "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ and the captions (text_c10) from Reed et al.'s "
            "cvpr2016 data (github.com/reedscot/cvpr2016) or StackGAN's flowers data, then unpack both into "
            f"{self.data_dir}/flowers/. The data root is --data.init_args.data_dir, else ${DATA_ENV_VAR}, else ./data."
        )
