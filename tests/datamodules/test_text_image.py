"""TextImageDataModule: both public layouts, caption-image pairing, StackGAN's box crop, vocabulary,
per-epoch caption choice, the safe pickle reader, and clear errors."""

import pickle

import pytest
import torch

from datamodules.text_image import TextImageDataModule, read_filenames, stackgan_crop_box
from tests.datamodules.formats import CUB_BOX, CUB_CROP, CUB_IMAGE_SIZE, TEXT_COLOURS, write_cub, write_oxford102


def _mean_colour(image: torch.Tensor) -> str:
    """Nearest fixture colour of an image's mean pixel (uint8 or [-1, 1] float)."""
    pixels = image.float() if image.dtype == torch.uint8 else (image + 1) * 127.5
    mean = pixels.mean(dim=(1, 2))
    return min(TEXT_COLOURS, key=lambda c: (mean - torch.tensor(TEXT_COLOURS[c], dtype=torch.float)).norm())


def _all(datamodule, split):
    dataset = datamodule._dataset(split)
    return dataset.__getitems__(range(len(dataset)))


def test_stackgan_crop_rule():
    # r = int(0.75 * max(w, h)) around the centre, clipped to the image.
    assert stackgan_crop_box(CUB_BOX, *CUB_IMAGE_SIZE) == CUB_CROP
    assert stackgan_crop_box((0, 0, 10, 20), 100, 100) == (0, 0, 20, 25)


def test_cub_layout_pairs_captions_with_images_and_crops_to_the_box(tmp_path):
    files = write_cub(tmp_path, n_train=6, n_test=3)
    dm = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=16, batch_size=2, num_workers=0)
    batch = _all(dm, "train")
    assert batch["image"].shape == (6, 3, 16, 16) and batch["image"].dtype == torch.uint8
    assert batch["tokens"].shape == (6, 18) and batch["lengths"].tolist() == [6] * 6
    assert batch["label"].tolist() == [0, 1, 0, 1, 0, 1]  # "001.Bird_1" -> 0
    for key, image, caption in zip(files["train"], batch["image"], batch["caption"]):
        colour = files["colours"][key]
        assert colour in caption  # the caption belongs to this image
        # The white border outside the crop is gone: every pixel has the box's colour.
        target = torch.tensor(TEXT_COLOURS[colour], dtype=torch.float)[:, None, None]
        assert (image.float() - target).abs().amax() < 60  # JPEG ringing; white would be >= 35 off by 160+
    assert len(_all(dm, "val")["caption"]) == 3  # val = the test split
    images, labels = dm.read_split("test")  # the base contract: uint8 images and int64 labels
    assert images.shape == (3, 3, 16, 16) and labels.dtype == torch.int64


def test_oxford102_layout_uses_the_class_split_files(tmp_path):
    files = write_oxford102(tmp_path, train_classes=2, test_classes=1, per_class=3)
    dm = TextImageDataModule("oxford102", data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=0)
    train, test = _all(dm, "train"), _all(dm, "test")
    assert len(train["caption"]) == 6 and len(test["caption"]) == 3
    assert test["label"].tolist() == [2, 2, 2]
    for stem, image, caption in zip(files["train"], train["image"], train["caption"]):
        assert files["colours"][stem] in caption and _mean_colour(image) == files["colours"][stem]


def test_vocabulary_comes_from_training_captions(tmp_path):
    write_cub(tmp_path)
    dm = TextImageDataModule("cub", data_dir=str(tmp_path), num_workers=0, min_word_count=2)
    vocab = dm.vocab
    assert vocab[:2] == ["<pad>", "<unk>"] and vocab[2:] == sorted(vocab[2:])
    assert {"this", "bird", "is", "red", "number"} <= set(vocab)
    assert all(isinstance(w, str) for w in vocab)
    # tokens decode back to the lowercased words of the caption (punctuation dropped)
    batch = _all(dm, "train")
    words = dm.vocabulary.decode(batch["tokens"][0], int(batch["lengths"][0]))
    assert words == batch["caption"][0].lower().rstrip(".")


def test_caption_choice_depends_on_seed_epoch_and_image_only(tmp_path):
    write_cub(tmp_path, n_train=6, n_test=3)
    dm = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, batch_size=2, num_workers=0, seed=3)
    dataset = dm._dataset("train")
    per_epoch = [[dataset.caption_index(i, e) for i in range(6)] for e in range(4)]
    assert len({tuple(p) for p in per_epoch}) > 1  # a new caption draw each epoch
    again = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0, seed=3)._dataset("train")
    assert per_epoch == [[again.caption_index(i, e) for i in range(6)] for e in range(4)]
    # The training sampler encodes the epoch in the index the dataset receives.
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(2)
    batch = next(iter(loader))
    epoch2 = {c for c in batch["caption"]}
    expected = {dataset.records.captions[i][per_epoch[2][i]] for i in range(6)}
    assert epoch2 <= expected


def test_max_length_truncates(tmp_path):
    write_cub(tmp_path)
    dm = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0, max_length=3)
    batch = _all(dm, "train")
    assert batch["tokens"].shape[1] == 3 and batch["lengths"].max() == 3


def test_shapes_captions_name_the_colour_and_shape():
    dm = TextImageDataModule("shapes", image_size=16, synthetic_size=24, num_workers=0)
    batch = _all(dm, "train")
    assert batch["image"].shape == (24, 3, 16, 16)
    for image, caption in zip(batch["image"], batch["caption"]):
        pixels = image.float().flatten(1)
        foreground = pixels[:, pixels.sum(0) > 60].mean(1)
        colour = min(("red", "green", "blue", "yellow"), key=lambda c: c not in caption)
        from datamodules.text_image import SHAPE_COLOURS

        assert (foreground - torch.tensor(SHAPE_COLOURS[colour], dtype=torch.float)).abs().amax() < 30


def test_missing_files_say_where_and_how(tmp_path):
    dm = TextImageDataModule("cub", data_dir=str(tmp_path / "nothing"), num_workers=0)
    assert dm.vocab is None  # the config can be built before the data is there...
    with pytest.raises(FileNotFoundError, match="CUB_200_2011.*caltech"):
        dm.setup("fit")  # ...but nothing trains without it
    with pytest.raises(ValueError, match="dataset must be one of"):
        TextImageDataModule("coco")


def test_filenames_pickle_is_read_without_running_code(tmp_path):
    good = tmp_path / "good.pickle"
    good.write_bytes(pickle.dumps(["001.A/a_1", b"002.B/b_2"], protocol=2))
    assert read_filenames(good) == ["001.A/a_1", "002.B/b_2"]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "bad.pickle"
    bad.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(ValueError, match="refusing to unpickle builtins.print"):
        read_filenames(bad)


def test_mid_epoch_resume_gives_the_same_images_and_captions():
    def batches(state):
        dm = TextImageDataModule("shapes", image_size=8, synthetic_size=24, batch_size=4, num_workers=0, seed=5)
        dm.load_state_dict(state)
        return [(b["caption"], b["image"]) for b in dm.train_dataloader()]

    full = batches({"epoch": 1, "batches_consumed": 0})
    resumed = batches({"epoch": 1, "batches_consumed": 2})
    assert len(full) == 6 and len(resumed) == 4
    for (caps_a, images_a), (caps_b, images_b) in zip(full[2:], resumed):
        assert caps_a == caps_b and torch.equal(images_a, images_b)
    other_epoch = batches({"epoch": 2, "batches_consumed": 0})
    assert [c for b in other_epoch for c in b[0]] != [c for b in full for c in b[0]]
