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
        dm = TextImageDataModule("shapes", image_size=8, synthetic_size=24, batch_size=4, num_workers=0, seed=5,
                                 captions_per_embedding=4, wrong_images="other_class")
        dm.load_state_dict(state)
        return [(b["caption"], torch.cat([b["image"], b["wrong_image"]]), b["embedding_tokens"]) for b in dm.train_dataloader()]

    full = batches({"epoch": 1, "batches_consumed": 0})
    resumed = batches({"epoch": 1, "batches_consumed": 2})
    assert len(full) == 6 and len(resumed) == 4
    for (caps_a, images_a, means_a), (caps_b, images_b, means_b) in zip(full[2:], resumed):
        assert caps_a == caps_b and torch.equal(images_a, images_b) and torch.equal(means_a, means_b)
    other_epoch = batches({"epoch": 2, "batches_consumed": 0})
    assert [c for b in other_epoch for c in b[0]] != [c for b in full for c in b[0]]


def test_cub_preprocessing_is_the_authors_resize_then_random_crop(tmp_path):
    """AttnGAN code/datasets.py get_imgs + DF-GAN code/lib/perpare.py: crop the box
    (r = int(0.75 max(w, h)), clipped), transforms.Resize(int(S * 76 / 64)) keeping the aspect,
    RandomCrop(S). Recomputed with torchvision on a fixed non-square image, at the offsets the
    module drew; the offsets move with the epoch and stay inside the resized image."""
    import numpy as np
    from PIL import Image
    from torchvision import transforms
    from torchvision.transforms import functional as TF

    from datamodules.text_image import crop_offset, load_cropped

    rng = np.random.default_rng(0)
    path = tmp_path / "bird.png"
    Image.fromarray(rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)).save(path)
    box, size = (70.0, 20.0, 40.0, 24.0), 16  # x y w h -> r 30, centre (90, 32): crop (60, 2, 100, 62), 40 x 60
    image = Image.open(path).convert("RGB")
    r = int(max(box[2], box[3]) * 0.75)
    cx, cy = int((2 * box[0] + box[2]) / 2), int((2 * box[1] + box[3]) / 2)
    cropped = image.crop([max(0, cx - r), max(0, cy - r), min(100, cx + r), min(70, cy + r)])
    resized = transforms.Resize(int(size * 76 / 64))(cropped)
    assert min(resized.size) == 19 and resized.size != (19, 19)  # aspect kept: not a square
    offsets = set()
    for epoch in range(6):
        top, left = crop_offset((0, epoch, 3), resized.size[1], resized.size[0], size)
        offsets.add((top, left))
        expected = torch.from_numpy(np.asarray(TF.crop(resized, top, left, size, size))).permute(2, 0, 1)
        ours = load_cropped(str(path), box, size, "attngan", (0, epoch, 3))
        assert torch.equal(ours, expected), epoch
    assert len(offsets) > 1
    # the TF StackGAN squashes to 76/64 S first; `squash` is a plain resize to S
    squashed = cropped.resize((19, 19), Image.Resampling.BILINEAR)
    top, left = crop_offset((0, 0, 3), 19, 19, size)
    expected = torch.from_numpy(np.asarray(TF.crop(squashed, top, left, size, size))).permute(2, 0, 1)
    assert torch.equal(load_cropped(str(path), box, size, "stackgan", (0, 0, 3)), expected)
    plain = torch.from_numpy(np.asarray(cropped.resize((size, size), Image.Resampling.BILINEAR))).permute(2, 0, 1)
    assert torch.equal(load_cropped(str(path), box, size, "squash"), plain)


def test_long_captions_keep_a_random_order_kept_subset(tmp_path):
    """AttnGAN get_caption: a caption longer than WORDS_NUM keeps WORDS_NUM of its words, chosen
    at random (shuffle, take, sort), in their order; redrawn per epoch; shorter ones unchanged."""
    write_cub(tmp_path)
    dm = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0, max_length=3)
    dataset = dm._dataset("train")
    full = dataset._ids[0][0]
    assert len(full) > 3
    drawn = set()
    for epoch in range(8):
        ids = dataset.caption_ids(0, 0, epoch)
        assert len(ids) == 3
        positions, start = [], 0
        for word in ids:  # an order-kept subsequence of the caption
            start = full.index(word, start) + 1
            positions.append(start - 1)
        drawn.add(tuple(ids))
    assert len(drawn) > 1
    first = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0, max_length=3,
                                long_captions="first")._dataset("train")
    assert first.caption_ids(0, 0, 5) == full[:3]
    long_enough = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0)._dataset("train")
    assert long_enough.caption_ids(0, 0, 5) == full


def test_caption_means_draw_distinct_captions_per_seed_epoch_and_image(tmp_path):
    """captions_per_embedding (TF StackGAN NUM_EMBEDDING): K distinct captions of the image itself,
    redrawn per epoch, the same in a fresh datamodule (resume), training only."""
    write_cub(tmp_path, n_train=6, n_test=3)
    make = lambda: TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, batch_size=2,  # noqa: E731
                                       num_workers=0, seed=3, captions_per_embedding=4)
    dm = make()
    dataset = dm._dataset("train")
    batch = dataset.__getitems__([2 * len(dataset) + i for i in range(6)])  # epoch 2
    assert batch["embedding_tokens"].shape == (6, 4, 18) and batch["embedding_lengths"].shape == (6, 4)
    for i in range(6):
        decoded = [dm.vocabulary.decode(t, int(n)) for t, n in zip(batch["embedding_tokens"][i], batch["embedding_lengths"][i])]
        own = [c.lower().rstrip(".") for c in dataset.records.captions[i]]
        assert len(set(decoded)) == 4 and all(d in own for d in decoded)
    draws = [[tuple(dataset.embedding_caption_indices(i, e)) for i in range(6)] for e in range(3)]
    assert len({tuple(d) for d in draws}) == 3
    assert draws == [[tuple(make()._dataset("train").embedding_caption_indices(i, e)) for i in range(6)] for e in range(3)]
    assert "embedding_tokens" not in _all(dm, "val")
    few = TextImageDataModule("cub", data_dir=str(tmp_path), image_size=8, num_workers=0, captions_per_image=2,
                              captions_per_embedding=4)._dataset("train").__getitems__([0])
    assert few["embedding_lengths"][0].gt(0).tolist() == [True, True, False, False]


def _labelled(labels):
    from datamodules.text_image import Records, TextImageDataset
    from genmodels.text.vocabulary import Vocabulary

    n = len(labels)
    records = Records((torch.arange(n) % 256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4).clone(), [None] * n,
                      torch.tensor(labels), [["a caption"]] * n)
    return TextImageDataset(records, Vocabulary(["<pad>", "<unk>", "a", "caption"]), 4, 18, seed=1, wrong_images="other_class")


def test_wrong_images_follow_the_tf_stackgan_rule():
    """TF misc/datasets.py next_batch: a uniform draw, moved by an offset in [100, 200) when it has
    the real image's class. Classes in runs shorter than 100 images (CUB's order) always give another
    class; the draw is a function of (seed, epoch, image) only; one class is refused."""
    labels = [c for c in range(10) for _ in range(30)]  # 10 classes of 30 consecutive images
    dataset = _labelled(labels)
    wrong = [[dataset.wrong_index(i, e) for i in range(300)] for e in range(2)]
    assert all(labels[w] != labels[i] for e in range(2) for i, w in enumerate(wrong[e]))
    assert wrong[0] != wrong[1] and len(set(wrong[0])) > 150  # redrawn per epoch, spread over the set
    assert wrong == [[_labelled(labels).wrong_index(i, e) for i in range(300)] for e in range(2)]
    # The batch carries the drawn images (image k is filled with the value k).
    batch = dataset.__getitems__(range(0, 300, 7))
    drawn = [dataset.wrong_index(i, 0) for i in range(0, 300, 7)]
    assert batch["wrong_index"].tolist() == drawn
    assert batch["wrong_image"][:, 0, 0, 0].tolist() == [w % 256 for w in drawn]
    with pytest.raises(ValueError, match="at least two classes"):
        _labelled([0, 0, 0])


def test_wrong_images_are_flipped_and_scaled_like_the_real_ones():
    dm = TextImageDataModule("shapes", image_size=8, synthetic_size=16, batch_size=4, num_workers=0, seed=2,
                             random_flip=True, wrong_images="other_class")
    batch = next(iter(dm.train_dataloader()))
    flips = dm.flip_decisions(0)
    raw = batch["wrong_image"].clone()
    index = batch["wrong_index"].clone()

    class Training:
        training = True

    dm.trainer = Training()
    out = dm.on_after_batch_transfer(batch, 0)
    expected = torch.where(flips[index][:, None, None, None], raw.flip(-1), raw).float() / 127.5 - 1
    torch.testing.assert_close(out["wrong_image"], expected)
    assert "wrong_index" not in out
    with pytest.raises(ValueError, match="wrong_images"):
        TextImageDataModule("shapes", wrong_images="any")
