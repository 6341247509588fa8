"""PairedImageDataModule / UnpairedImageDataModule on files in the public pix2pix and CycleGAN layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import PairedImageDataModule, UnpairedImageDataModule
from datamodules.translation import item_seed, jitter_params
from tests.datamodules.conftest import fake_trainer
from tests.datamodules.formats import gradient_pair, write_cyclegan, write_pix2pix


def paired(root, **kwargs):
    options = dict(name="facades", data_dir=str(root), image_size=32, load_size=40, batch_size=2)
    dm = PairedImageDataModule(**{**options, **kwargs})
    dm.trainer = fake_trainer()
    return dm


def epoch_batches(dm, epoch):
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [dm.on_before_batch_transfer(b, 0) for b in loader]


def test_paired_batches_hold_aligned_a_and_b_in_model_range(tmp_path):
    write_pix2pix(tmp_path, counts={"train": 4, "val": 2, "test": 2})
    dm = paired(tmp_path)
    assert dm.image_shape == (3, 32, 32)
    (batch,) = [dm.on_after_batch_transfer(dm._dataset("val").__getitems__([0, 1]), 0)]
    assert set(batch) == {"A", "B", "image"} and batch["A"].shape == (2, 3, 32, 32)
    assert torch.equal(batch["image"], batch["B"])  # the target domain, for shared metrics
    assert batch["A"].min() >= -1 and batch["B"].max() <= 1
    # Val: plain resize of the halves, B = 255 - A survives (JPEG and resampling tolerance).
    assert (batch["A"] + batch["B"]).abs().mean() < 0.02


def test_jitter_and_mirror_are_identical_for_a_and_b(tmp_path):
    write_pix2pix(tmp_path, counts={"train": 4, "val": 1})
    dm = paired(tmp_path, batch_size=1)
    crops = set()
    for epoch in range(3):
        for batch in epoch_batches(dm, epoch):
            a, b = batch["A"].float(), batch["B"].float()
            # B = 255 - A everywhere in the crop: the same offsets and mirror were applied to both.
            # Measured: at most 0.74 levels when aligned, at least 2.8 when B is off by one pixel.
            assert (a + b - 255).abs().mean() < 1.5
            crops.add(batch["A"].numpy().tobytes())
    assert len(crops) > 4  # the jitter does vary between items and epochs


def test_jitter_matches_the_recomputed_crop_offsets(tmp_path):
    write_pix2pix(tmp_path, counts={"train": 1, "val": 1})
    dm = paired(tmp_path, batch_size=1, flip=True)
    (batch,) = epoch_batches(dm, epoch=5)
    left, top, mirror = jitter_params(np.random.default_rng(item_seed(0, 5, 0)), 32, 40, True)
    a, _ = gradient_pair(0)
    expected = Image.open(tmp_path / "facades/train/1.jpg").convert("RGB").crop((0, 0, 64, 64)).resize((40, 40), Image.Resampling.BICUBIC)
    expected = np.asarray(expected.crop((left, top, left + 32, top + 32)))
    expected = expected[:, ::-1] if mirror else expected
    assert np.array_equal(batch["A"][0].permute(1, 2, 0).numpy(), expected)


def test_direction_b_to_a_swaps_the_halves(tmp_path):
    write_pix2pix(tmp_path, counts={"train": 2, "val": 1})
    forward = paired(tmp_path)._dataset("val")[0]
    backward = paired(tmp_path, direction="BtoA")._dataset("val")[0]
    assert torch.equal(forward["A"], backward["B"]) and torch.equal(forward["B"], backward["A"])


def test_training_order_and_augmentation_resume_exactly(tmp_path):
    write_pix2pix(tmp_path, counts={"train": 4, "val": 1})
    reference = epoch_batches(paired(tmp_path, batch_size=1), epoch=1)
    dm = paired(tmp_path, batch_size=1)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    for _, batch in zip(range(2), loader):
        dm.on_before_batch_transfer(batch, 0)
    resumed = paired(tmp_path, batch_size=1)
    resumed.load_state_dict(dm.state_dict())
    rest = epoch_batches(resumed, epoch=1)
    assert len(rest) == 2
    for got, want in zip(rest, reference[2:]):
        assert torch.equal(got["A"], want["A"]) and torch.equal(got["B"], want["B"])


def test_unpaired_gives_each_a_a_reproducible_random_b(tmp_path):
    write_cyclegan(tmp_path, counts={"trainA": 4, "trainB": 3, "testA": 2, "testB": 2})
    dm = UnpairedImageDataModule(name="horse2zebra", data_dir=str(tmp_path), image_size=32, load_size=36, batch_size=1)
    dm.trainer = fake_trainer()
    # Uniform images: A_k has grey 10k, B_j grey 200 - 10j; read the identities back from the pixels.
    def ids(batches):
        return [(round(b["A"].float().mean().item() / 10), round((200 - b["B"].float().mean().item()) / 10)) for b in batches]

    first, again = ids(epoch_batches(dm, 0)), ids(epoch_batches(dm, 0))
    assert first == again and sorted(a for a, _ in first) == [0, 1, 2, 3]  # every A once per epoch
    partners = {b for epoch in range(4) for _, b in ids(epoch_batches(dm, epoch))}
    assert partners <= {0, 1, 2} and len(partners) > 1  # random B from trainB
    test = dm._dataset("test")
    assert len(test) == 2 and test[0]["A"].shape == (3, 32, 32)


def test_images_of_other_sizes_are_resized(tmp_path):
    folder = write_cyclegan(tmp_path, counts={"trainA": 2, "trainB": 2, "testA": 1, "testB": 1})
    Image.new("RGB", (50, 30), (5, 5, 5)).save(folder / "trainB" / "odd.jpg")
    dm = UnpairedImageDataModule(name="horse2zebra", data_dir=str(tmp_path), image_size=16, load_size=16)
    assert dm._dataset("train").__getitems__([(0, 1), (1, 2)])["B"].shape == (2, 3, 16, 16)
    # Paired files of different (2:1) sizes in one split are fine too: each half is resized.
    folder = write_pix2pix(tmp_path, counts={"train": 1, "val": 1})
    Image.new("RGB", (300, 150)).save(folder / "train" / "big.jpg")
    assert paired(tmp_path)._dataset("train").__getitems__([(0, 0), (1, 0)])["A"].shape == (2, 3, 32, 32)


# -- bad inputs ---------------------------------------------------------------------------------


def test_missing_or_empty_folder_names_the_layout_and_the_download_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"facades: the folder train/ not found \(looked in \S*facades/train\).*download_pix2pix.sh facades"):
        paired(tmp_path)._dataset("train")
    (tmp_path / "facades" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"images \(.png.*\) in train/ not found"):
        paired(tmp_path)._dataset("train")
    with pytest.raises(FileNotFoundError, match=r"the folder trainA/ not found.*download_cyclegan.sh horse2zebra"):
        UnpairedImageDataModule(data_dir=str(tmp_path))._dataset("train")


def test_a_paired_file_that_is_not_two_to_one_is_named(tmp_path):
    folder = write_pix2pix(tmp_path, counts={"train": 2, "val": 1})
    Image.new("RGB", (64, 64)).save(folder / "train" / "square.jpg")
    with pytest.raises(ValueError, match=r"square.jpg: a paired image must be twice as wide as high.*64x64"):
        paired(tmp_path)._dataset("train")
    with pytest.warns(UserWarning, match="skipping .*square.jpg"):
        assert len(paired(tmp_path, bad_files="skip")._dataset("train")) == 2


def test_a_non_image_is_named_or_skipped(tmp_path):
    folder = write_cyclegan(tmp_path)
    (folder / "trainA" / "notes.jpg").write_text("not an image")
    dm = UnpairedImageDataModule(data_dir=str(tmp_path), image_size=16)
    with pytest.raises(ValueError, match=r"notes.jpg: not a readable image"):
        dm._dataset("train")
    with pytest.warns(UserWarning, match="notes.jpg"):
        assert len(UnpairedImageDataModule(data_dir=str(tmp_path), image_size=16, bad_files="skip")._dataset("train")) == 4


def test_a_truncated_file_is_named_at_setup_or_skipped(tmp_path):
    folder = write_pix2pix(tmp_path, counts={"train": 2, "val": 1})
    data = (folder / "train" / "2.jpg").read_bytes()
    (folder / "train" / "2.jpg").write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    with pytest.raises(ValueError, match=r"2.jpg: not a readable image, truncated or corrupt"):
        paired(tmp_path)._dataset("train")  # found when the split is listed, not when the batch is decoded
    with pytest.warns(UserWarning, match=r"skipping \S*2.jpg: not a readable image"):
        dm = paired(tmp_path, bad_files="skip")
        assert [Path(p).name for p in dm._dataset("train").paths] == ["1.jpg"]
    assert dm.skipped_files == [str(folder / "train" / "2.jpg")]


def test_bad_options_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="direction"):
        PairedImageDataModule(direction="AtoC")
    with pytest.raises(ValueError, match="load_size"):
        PairedImageDataModule(image_size=64, load_size=32)
    with pytest.raises(ValueError, match="bad_files"):
        UnpairedImageDataModule(bad_files="ignore")
