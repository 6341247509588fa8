"""Writers of tiny datasets in the real on-disk formats, for tests (no network, seconds at most).

MNIST: the four IDX files (optionally gzipped). CIFAR-10: ``data_batch_1..5`` and ``test_batch``
as protocol-2 pickles of dicts with bytes keys and uint8 (N, 3072) data, as in the real archive.
CUB-200-2011 and Oxford-102 with captions, in the StackGAN/AttnGAN layouts (`write_cub`, `write_oxford102`).
Used by the datamodule tests and by the CLI tests that run the experiment YAMLs on fake data.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialises a uint8 array as IDX: magic 0x0000_08_<ndim>, big-endian uint32 sizes, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Writes ``array`` as an IDX file at ``path`` (``path.gz`` when ``gz``); returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def mnist_arrays(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 28x28 uint8 images whose pixels (0,0) and (0,1) are 0 and 255, and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 0
    images[:, 0, 1] = 255
    labels = (np.arange(num) * 7 + seed) % 10
    return images, labels.astype(np.uint8)


def write_mnist(directory: Path, n_train: int = 40, n_test: int = 20, gz: bool = False) -> dict:
    """Writes the four MNIST IDX files into ``directory``; returns ``{"train"|"test": (images, labels)}``."""
    arrays = {"train": mnist_arrays(n_train, seed=1), "test": mnist_arrays(n_test, seed=2)}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = arrays[split]
        write_idx(Path(directory) / images_name, images, gz=gz)
        write_idx(Path(directory) / labels_name, labels, gz=gz)
    return arrays


def cifar10_batch(num: int, seed: int) -> dict:
    """A batch dict as in the real files: bytes keys, uint8 (N, 3072) data, a list of int labels."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(num, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=num)]
    return {b"batch_label": b"fixture", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * num}


def write_cifar10(folder: Path, per_batch: int = 8, n_test: int = 12) -> dict:
    """Writes data_batch_1..5 and test_batch into ``folder`` (a ``cifar-10-batches-py``); returns the dicts."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for seed, name in enumerate(CIFAR10_BATCHES):
        batches[name] = cifar10_batch(n_test if name == "test_batch" else per_batch, seed)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    return batches


# -- fixtures for tests/cli/test_experiments.py: write the files, return the CLI args --------------


def experiment_fixture_mnist(root: Path) -> list[str]:
    write_mnist(root / "MNIST" / "raw", n_train=64, n_test=16)
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


def experiment_fixture_cifar10(root: Path) -> list[str]:
    write_cifar10(root / "cifar-10-batches-py", per_batch=16, n_test=16)
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


# -- CelebA and image folders: JPEG/PNG files in the real layouts -----------------------------------

CELEBA_SIZE = (178, 218)  # (width, height) of the aligned images


def celeba_image(index: int) -> "Image.Image":
    """A 178x218 RGB face stand-in: a uniform centre square whose colour encodes ``index``, and
    red bands in the 20 rows above and below the centred 178x178 square (the default crop cuts them)."""
    from PIL import Image

    width, height = CELEBA_SIZE
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, :] = (10 * (index % 20), 255 - 10 * (index % 20), 128)
    band = (height - width) // 2
    pixels[:band] = pixels[-band:] = (255, 0, 0)
    return Image.fromarray(pixels)


def write_celeba(root: Path, splits: tuple[int, int, int] = (6, 3, 3), nested: bool = True, layout: str = "official",
                 folder_name: str = "celeba") -> dict:
    """Writes a tiny CelebA under ``root/<folder_name>`` (or ``root`` if not ``nested``) in one of its
    public layouts; image i has attribute j set iff ``(i + j) % 3 == 0``.

    ``official`` (the official zip and lists, torchvision's layout): ``img_align_celeba/000001.jpg ...``,
    ``list_attr_celeba.txt`` (count, the 40 names, +-1 rows), ``list_eval_partition.txt``.
    ``kaggle`` (the Kaggle "celeba-dataset" copy): ``img_align_celeba/img_align_celeba/*.jpg``,
    ``list_attr_celeba.csv`` (``image_id,<40 names>``), ``list_eval_partition.csv``
    (``image_id,partition``), plus its bbox/landmark CSVs. ``drive`` (the official Google Drive
    folder): ``Img/img_align_celeba/``, ``Anno/list_attr_celeba.txt``, ``Eval/list_eval_partition.txt``.
    Returns ``{"files": [...], "partition": [...], "attributes": float array (N, 40)}``.
    """
    from datamodules.celeba import CELEBA_ATTRIBUTES

    folder = Path(root) / folder_name if nested else Path(root)
    images = {"official": "img_align_celeba", "kaggle": "img_align_celeba/img_align_celeba", "drive": "Img/img_align_celeba"}[layout]
    (folder / images).mkdir(parents=True, exist_ok=True)
    partition = [code for code, count in enumerate(splits) for _ in range(count)]
    files = [f"{i + 1:06d}.jpg" for i in range(len(partition))]
    attributes = np.array([[(i + j) % 3 == 0 for j in range(40)] for i in range(len(files))], dtype=np.float32)
    for i, name in enumerate(files):
        celeba_image(i).save(folder / images / name, format="JPEG", quality=95)
    if layout == "kaggle":
        rows = [f"{name}," + ",".join("1" if v else "-1" for v in attributes[i]) for i, name in enumerate(files)]
        (folder / "list_attr_celeba.csv").write_text("\n".join(["image_id," + ",".join(CELEBA_ATTRIBUTES), *rows]) + "\n")
        (folder / "list_eval_partition.csv").write_text("image_id,partition\n" + "".join(f"{n},{p}\n" for n, p in zip(files, partition)))
        (folder / "list_bbox_celeba.csv").write_text("image_id,x_1,y_1,width,height\n")
        return {"files": files, "partition": partition, "attributes": attributes}
    anno, evaluation = ("Anno", "Eval") if layout == "drive" else ("", "")
    (folder / anno).mkdir(exist_ok=True)
    (folder / evaluation).mkdir(exist_ok=True)
    rows = [f"{name} " + " ".join("1" if v else "-1" for v in attributes[i]) for i, name in enumerate(files)]
    (folder / anno / "list_attr_celeba.txt").write_text("\n".join([str(len(files)), " ".join(CELEBA_ATTRIBUTES) + " ", *rows]) + "\n")
    (folder / evaluation / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(files, partition)))
    return {"files": files, "partition": partition, "attributes": attributes}


def write_image_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (20, 12)) -> list[Path]:
    """Writes ``classes[name]`` images into ``root/<name>/`` (png, jpg, JPEG, webp in turn); returns the paths.

    Image k of class c is uniformly grey with value ``40 * c_index + k`` (so files are told apart).
    """
    from PIL import Image

    formats = [(".png", "PNG"), (".jpg", "JPEG"), (".JPEG", "JPEG"), (".webp", "WEBP")]
    paths = []
    for c, (name, count) in enumerate(sorted(classes.items())):
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            suffix, fmt = formats[k % len(formats)]
            path = Path(root) / name / f"img{k}{suffix}"
            value = 40 * c + k
            Image.new("RGB", size, (value, value, value)).save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
            paths.append(path)
    return paths


def experiment_fixture_celeba(root: Path) -> list[str]:
    write_celeba(root, splits=(10, 4, 4))
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


# -- image-to-image translation: pix2pix (A|B side by side) and CycleGAN (trainA/trainB) layouts -------


def gradient_pair(index: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) uint8 (size, size, 3): A a steep asymmetric gradient (shifted per ``index``), B = 255 - A."""
    y, x = np.mgrid[0:size, 0:size]
    a = np.stack([(x * 4 + index) % 256, (y * 3 + 2 * index) % 256, (x + y + 40) % 256], axis=-1).astype(np.uint8)
    return a, 255 - a


def write_pix2pix(root: Path, name: str = "facades", counts: dict | None = None, size: int = 64) -> Path:
    """``root/<name>/{train,val,test}/<k>.jpg``, each A|B side by side (`gradient_pair`); returns the folder."""
    from PIL import Image

    counts = counts or {"train": 4, "val": 2, "test": 2}
    folder = Path(root) / name
    for split, count in counts.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            a, b = gradient_pair(k, size)
            Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / split / f"{k + 1}.jpg", quality=95)
    return folder


def write_cyclegan(root: Path, name: str = "horse2zebra", counts: dict | None = None, size: int = 64) -> Path:
    """``root/<name>/{trainA,trainB,testA,testB}/`` of uniform JPEGs: A_k grey 10k, B_k grey 200 - 10k."""
    from PIL import Image

    counts = counts or {"trainA": 4, "trainB": 3, "testA": 2, "testB": 2}
    folder = Path(root) / name
    for part, count in counts.items():
        (folder / part).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            value = 10 * k if part.endswith("A") else 200 - 10 * k
            Image.new("RGB", (size, size), (value, value, value)).save(folder / part / f"{k}_{part[-1]}.jpg", quality=95)
    return folder


def experiment_fixture_maps(root: Path) -> list[str]:
    write_pix2pix(root, "maps", {"train": 8, "val": 4})
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


def experiment_fixture_horse2zebra(root: Path) -> list[str]:
    write_cyclegan(root, "horse2zebra", {"trainA": 8, "trainB": 8, "testA": 4, "testB": 4})
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


def experiment_fixture_edges2shapes(root: Path) -> list[str]:
    from datamodules.synthetic_translation import write_edges2shapes

    write_edges2shapes(root, {"train": 8, "val": 4, "test": 4})
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


def experiment_fixture_red2blue(root: Path) -> list[str]:
    from datamodules.synthetic_translation import write_red2blue

    write_red2blue(root, {"trainA": 8, "trainB": 8, "testA": 4, "testB": 4})
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]
# -- text-to-image: CUB-200-2011 and Oxford-102 in the StackGAN/AttnGAN layouts ----------------------

TEXT_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 60, 220)}
CUB_IMAGE_SIZE = (64, 48)  # (width, height)
CUB_BOX = (20.0, 12.0, 16.0, 16.0)  # x y w h; StackGAN's crop of it is (16, 8, 40, 32)
CUB_CROP = (16, 8, 40, 32)


def _text_colour(index: int) -> str:
    return list(TEXT_COLOURS)[index % len(TEXT_COLOURS)]


def write_cub(root: Path, n_train: int = 6, n_test: int = 3, captions: int = 10, layout: str = "attngan") -> dict:
    """A tiny CUB. Image k is white except the StackGAN crop of its box, which has colour
    ``_text_colour(k)``; every caption of image k names that colour.

    ``attngan``: ``root/birds/{CUB_200_2011/, text/, train|test/filenames.pickle}`` (StackGAN/AttnGAN).
    ``reed``: Reed et al.'s ``root/cvpr2016_cub/{text_c10/<class>/<image>.txt (+ .t7 files),
    allclasses.txt, trainvalclasses.txt, testclasses.txt}`` beside ``root/CUB_200_2011/``; the
    split is by class (class 1 trains, class 2 tests).
    Returns ``{"train": [keys], "test": [keys], "colours": {key: colour}}``."""
    from PIL import Image

    reed = layout == "reed"
    birds = Path(root) / ("cvpr2016_cub" if reed else "birds")
    cub = Path(root) / "CUB_200_2011" if reed else birds / "CUB_200_2011"
    text = birds / ("text_c10" if reed else "text")
    keys, colours, rows, boxes = [], {}, [], []
    for k in range(n_train + n_test):
        cls = f"{k % 2 + 1:03d}.Bird_{k % 2 + 1}"
        key = f"{cls}/Bird_{k:04d}"
        keys.append(key)
        colours[key] = _text_colour(k)
        pixels = np.full((CUB_IMAGE_SIZE[1], CUB_IMAGE_SIZE[0], 3), 255, dtype=np.uint8)
        left, top, right, bottom = CUB_CROP
        pixels[top:bottom, left:right] = TEXT_COLOURS[colours[key]]
        (cub / "images" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(cub / "images" / f"{key}.jpg", format="JPEG", quality=95)
        (text / cls).mkdir(parents=True, exist_ok=True)
        lines = [f"this bird is {colours[key]} number {j}." for j in range(captions)]
        (text / f"{key}.txt").write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
        rows.append(f"{k + 1} {key}.jpg")
        boxes.append(f"{k + 1} " + " ".join(str(v) for v in CUB_BOX))
    (cub / "images.txt").write_text("\n".join(rows) + "\n")
    (cub / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    if reed:
        classes = sorted({key.split("/")[0] for key in keys})
        for name in classes:
            (text / f"{name}.t7").write_bytes(b"\x00torch7 blob")  # Reed's char-CNN-RNN inputs: not captions
        (birds / "allclasses.txt").write_text("\n".join(classes) + "\n")
        (birds / "trainvalclasses.txt").write_text(classes[0] + "\n")
        (birds / "testclasses.txt").write_text(classes[1] + "\n")
        split = {"train": sorted(k for k in keys if k.startswith(classes[0])), "test": sorted(k for k in keys if k.startswith(classes[1]))}
        return {**split, "colours": colours}
    for split, part in (("train", keys[:n_train]), ("test", keys[n_train:])):
        (birds / split).mkdir(parents=True, exist_ok=True)
        (birds / split / "filenames.pickle").write_bytes(pickle.dumps(part, protocol=2))
    return {"train": keys[:n_train], "test": keys[n_train:], "colours": colours}


def write_oxford102(root: Path, train_classes: int = 2, test_classes: int = 1, per_class: int = 3,
                    layout: str = "lists_in_text", folder: str = "flowers", pickle_keys: str = "class") -> dict:
    """A tiny Oxford-102 in ``root/<folder>``: uniformly coloured 40x32 JPEGs in ``jpg/`` (as
    102flowers.tgz unpacks), captions naming their colour in ``text_c10/class_XXXXX/image_XXXXX.txt``.

    The split, by ``layout``: ``lists_in_text`` (``text_c10/{trainval,test}classes.txt``),
    ``reed`` (Reed et al.'s cvpr2016 data: ``{all,trainval,test}classes.txt`` beside ``text_c10/``,
    which also holds ``.t7`` and ``.h5`` files), ``stackgan`` (``train|test/filenames.pickle``, keys
    ``class_XXXXX/image_XXXXX`` or with ``pickle_keys="jpg"`` ``jpg/image_XXXXX``; no class lists),
    ``both`` (Reed's lists and StackGAN's pickles, the pickles holding a different split: the LAST
    train class tests). Returns ``{"train": [stems], "test": [stems], "colours": {stem: colour}}``."""
    from PIL import Image

    flowers = Path(root) / folder
    (flowers / "jpg").mkdir(parents=True, exist_ok=True)
    result: dict = {"train": [], "test": [], "colours": {}}
    number = 0
    for c in range(train_classes + test_classes):
        name = f"class_{c + 1:05d}"
        (flowers / "text_c10" / name).mkdir(parents=True, exist_ok=True)
        for _ in range(per_class):
            number += 1
            stem = f"image_{number:05d}"
            colour = _text_colour(number)
            Image.new("RGB", (40, 32), TEXT_COLOURS[colour]).save(flowers / "jpg" / f"{stem}.jpg", format="JPEG", quality=95)
            captions = [f"a flower with {colour} petals, caption {j}" for j in range(10)]
            (flowers / "text_c10" / name / f"{stem}.txt").write_text("\n".join(captions) + "\n")
            result["train" if c < train_classes else "test"].append(stem)
            result["colours"][stem] = colour
    classes = [f"class_{c + 1:05d}" for c in range(train_classes + test_classes)]
    lists = flowers / "text_c10" if layout == "lists_in_text" else flowers
    if layout in ("lists_in_text", "reed", "both"):
        (lists / "trainvalclasses.txt").write_text("\n".join(classes[:train_classes]) + "\n")
        (lists / "testclasses.txt").write_text("\n".join(classes[train_classes:]) + "\n")
    if layout in ("reed", "both"):
        (lists / "allclasses.txt").write_text("\n".join(classes) + "\n")
        for name in classes:
            (flowers / "text_c10" / f"{name}.t7").write_bytes(b"\x00torch7 blob")
            (flowers / "text_c10" / name / f"{name}.h5").write_bytes(b"\x89HDF")
    if layout in ("stackgan", "both"):
        by_class = {name: sorted(p.stem for p in (flowers / "text_c10" / name).glob("image_*.txt")) for name in classes}
        train_names = classes[: train_classes - 1] if layout == "both" else classes[:train_classes]
        split = {"train": [n for n in classes if n in train_names], "test": [n for n in classes if n not in train_names]}
        for part, names in split.items():
            keys = [f"{'jpg' if pickle_keys == 'jpg' else name}/{stem}" for name in names for stem in by_class[name]]
            (flowers / part).mkdir(exist_ok=True)
            (flowers / part / "filenames.pickle").write_bytes(pickle.dumps(keys, protocol=2))
            result[part] = [stem for name in names for stem in by_class[name]]
    return result


def write_mnist_kaggle(root: Path, n_train: int = 40, n_test: int = 20) -> dict:
    """MNIST as the Kaggle copy unpacks: ``train-images.idx3-ubyte`` (a dot, not a hyphen), each
    file again inside a folder of the hyphenated name, and ``.DS_Store`` debris."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {"train": mnist_arrays(n_train, seed=1), "test": mnist_arrays(n_test, seed=2)}
    for split, names in MNIST_FILES.items():
        for name, array in zip(names, arrays[split]):
            (root / name).mkdir()
            (root / name / name).write_bytes(idx_bytes(array))
            (root / name.replace("-idx", ".idx")).write_bytes(idx_bytes(array))
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return arrays


def experiment_fixture_cub(root: Path) -> list[str]:
    write_cub(root, n_train=16, n_test=8)
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


def experiment_fixture_oxford102(root: Path) -> list[str]:
    write_oxford102(root, train_classes=2, test_classes=1, per_class=8)
    return ["--data.init_args.data_dir", str(root), "--data.init_args.num_workers", "0"]


def experiment_fixture_shapes(root: Path) -> list[str]:
    # Made in memory by the datamodule; only its size is shrunk.
    return ["--data.init_args.synthetic_size", "32", "--data.init_args.num_workers", "0"]
