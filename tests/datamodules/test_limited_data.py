"""``max_train_images`` (a seeded, class-stratified subset) and ``random_flip`` (a mirror fixed by
(seed, epoch, image)), shared by every datamodule through the base class: the subset is the same
in two launches, on every rank and after a resume; a resumed run sees the same mirrored images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from datamodules import CelebADataModule, MNISTDataModule, PairedImageDataModule, TextImageDataModule, UnpairedImageDataModule
from datamodules.base import ImageDataModule, flip_decisions, subset_indices
from genmodels.errors import UserError
from tests.datamodules.conftest import fake_trainer
from tests.datamodules.formats import write_celeba, write_cyclegan, write_mnist, write_pix2pix

REPO = Path(__file__).resolve().parents[2]


class MarkedDataModule(ImageDataModule):
    """Image i is black but for pixel (0, 0) = i and pixel (0, 7) = 255: a mirrored image shows
    255 at (0, 0) and i at (0, 7), so a batch tells which images it holds and which were mirrored."""

    dataset_name = "marked"
    _channels = 1
    _num_classes = 4

    def read_split(self, split):
        n = 60 if split == "train" else 8
        images = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
        images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
        images[:, 0, 0, 7] = 255
        return images, torch.arange(n) % 4


def decode(batch) -> list[tuple[int, bool]]:
    """(image index, mirrored) of each image of a float batch."""
    row = ((batch["image"][:, 0, 0] + 1) * 127.5).round().long()
    return [(int(r[7]), True) if int(r[0]) == 255 else (int(r[0]), False) for r in row]


# -- the subset ------------------------------------------------------------------------------------


def test_subset_is_class_stratified_with_largest_remainders():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    index = subset_indices(labels, 15, seed=3)
    # quotas 7.5, 4.5, 3.0 -> 7, 4, 3 and one left over: the tie between classes 0 and 1 goes to 0.
    assert torch.bincount(labels[index]).tolist() == [8, 4, 3]
    assert index.tolist() == sorted(set(index.tolist()))
    assert torch.equal(index, subset_indices(labels, 15, seed=3))
    assert not torch.equal(index, subset_indices(labels, 15, seed=4))
    assert subset_indices(labels, 500, seed=0).tolist() == list(range(100))  # more than there are: all
    unlabelled = subset_indices(torch.full((10,), -1), 4, seed=0)
    assert len(unlabelled) == 4 and len(set(unlabelled.tolist())) == 4


_LAUNCH = """
import json, sys
from datamodules import MNISTDataModule
dm = MNISTDataModule(data_dir=sys.argv[1], image_size=28, max_train_images=10, seed=5)
train = dm._dataset("train")
print(json.dumps({"labels": train.labels.tolist(), "checksum": int(train.images.long().sum())}))
"""


@pytest.mark.slow  # a second Python process importing torch and Lightning: ~5 s idle, more on a loaded machine
def test_mnist_subset_is_the_same_in_two_launches_and_stratified(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", n_train=40, n_test=8)
    other_launch = subprocess.run([sys.executable, "-c", _LAUNCH, str(tmp_path)], capture_output=True, text=True,
                                  check=True, cwd=REPO)  # its own interpreter, global RNGs and hash seed
    here = MNISTDataModule(data_dir=str(tmp_path), image_size=28, max_train_images=10, seed=5)._dataset("train")
    runs = [json.loads(other_launch.stdout), {"labels": here.labels.tolist(), "checksum": int(here.images.long().sum())}]
    assert runs[0] == runs[1]
    assert sorted(runs[0]["labels"]) == list(range(10))  # 4 of each digit in the fixture: one each
    other = MNISTDataModule(data_dir=str(tmp_path), image_size=28, max_train_images=10, seed=6)._dataset("train")
    assert int(other.images.long().sum()) != runs[0]["checksum"]  # the seed chooses the subset
    assert len(MNISTDataModule(data_dir=str(tmp_path), image_size=28)._dataset("val")) == 8  # eval splits untouched


def test_subset_is_the_same_on_every_rank_which_then_share_it():
    seen = []
    for rank in (0, 1):
        dm = MarkedDataModule(batch_size=2, image_size=8, max_train_images=12)
        dm.trainer = fake_trainer(world_size=2, global_rank=rank)
        loader = dm.train_dataloader()
        seen.append({i for batch in loader for i, _ in decode(dm.on_after_batch_transfer(batch, 0))})
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 12
    kept = subset_indices(torch.arange(60) % 4, 12, seed=0).tolist()
    assert seen[0] | seen[1] == set(kept)


def test_lazy_datamodules_subset_their_files(tmp_path):
    write_celeba(tmp_path, splits=(10, 2, 2))
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, max_train_images=4, seed=1)
    names = [Path(p).name for p in dm._dataset("train").paths]
    expected = subset_indices(torch.full((10,), -1), 4, seed=1).tolist()
    assert names == [f"{i + 1:06d}.jpg" for i in expected]
    assert dm._dataset("train").attributes.shape == (4, 40) and len(dm._dataset("val")) == 2

    write_pix2pix(tmp_path, "facades", {"train": 6, "val": 1})
    assert len(PairedImageDataModule(data_dir=str(tmp_path), max_train_images=3, image_size=16)._dataset("train")) == 3
    write_cyclegan(tmp_path, "horse2zebra", {"trainA": 5, "trainB": 4, "testA": 1, "testB": 1})
    unpaired = UnpairedImageDataModule(data_dir=str(tmp_path), max_train_images=2, image_size=16)._dataset("train")
    assert (len(unpaired.paths_a), len(unpaired.paths_b)) == (2, 2)

    text = TextImageDataModule("shapes", synthetic_size=48, image_size=8, max_train_images=12, num_workers=0)
    assert torch.bincount(text._dataset("train").labels).tolist() == [1] * 12  # stratified over 12 (colour, shape)
    assert len(text.vocab) > 10  # vocabulary from all training captions


# -- the mirror ------------------------------------------------------------------------------------


def test_flip_only_in_training_and_fixed_by_seed_epoch_and_index():
    dm = MarkedDataModule(batch_size=60, image_size=8, random_flip=True, seed=2)
    dm.trainer = fake_trainer(training=True)
    batch = dm._dataset("train").__getitems__(list(range(60)))
    seen = decode(dm.on_after_batch_transfer(batch, 0))
    assert [i for i, _ in seen] == list(range(60))
    mirrored = [m for _, m in seen]
    assert mirrored == flip_decisions(2, 0, 60).tolist() and 15 < sum(mirrored) < 45
    assert "index" not in dm.on_after_batch_transfer(batch, 0)  # the model never sees it
    dm._epoch = 1
    assert [m for _, m in decode(dm.on_after_batch_transfer(batch, 0))] == flip_decisions(2, 1, 60).tolist() != mirrored
    dm.trainer = fake_trainer(training=False)
    assert not any(m for _, m in decode(dm.on_after_batch_transfer(batch, 0)))
    plain = MarkedDataModule(batch_size=60, image_size=8)
    plain.trainer = fake_trainer(training=True)
    assert not any(m for _, m in decode(plain.on_after_batch_transfer(batch, 0)))


# -- end to end: resume mid-epoch with a subset and mirrors ----------------------------------------


class Recorder(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[tuple[int, bool]]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(decode(batch))
        return (self.weight - batch["image"].mean()) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(root, max_epochs=3, ckpt_path=None, callbacks=(), **kwargs):
    model = Recorder()
    dm = MarkedDataModule(batch_size=4, image_size=8, max_train_images=20, random_flip=True, seed=7)
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=list(callbacks), num_sanity_val_steps=0,
                         limit_val_batches=0, enable_checkpointing=bool(callbacks), default_root_dir=root, **kwargs)
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model.seen


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch ended")
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resumed_run_sees_the_same_subset_and_mirrors_as_an_uninterrupted_one(tmp_path):
    reference = _fit(tmp_path / "ref")
    assert len(reference) == 15  # 20 images, batch 4, 3 epochs
    kept = set(subset_indices(torch.arange(60) % 4, 20, seed=7).tolist())
    assert {i for batch in reference for i, _ in batch} == kept
    assert any(m for batch in reference for _, m in batch) and not all(m for batch in reference for _, m in batch)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="stop", every_n_train_steps=7)
    first = _fit(tmp_path / "run", max_steps=7, callbacks=[checkpoint])
    second = _fit(tmp_path / "run", ckpt_path=tmp_path / "ckpt" / "stop.ckpt")
    assert first + second == reference


# -- a batch larger than the training set ------------------------------------------------------------


def test_batch_larger_than_the_training_set_is_one_line_error_at_setup(tmp_path):
    dm = MarkedDataModule(batch_size=16, image_size=8, max_train_images=10)
    with pytest.raises(UserError, match=r"^batch_size=16 is larger than the 10 training images of marked.*max_train_images$"):
        dm.setup("fit")
    write_pix2pix(tmp_path, "facades", {"train": 3, "val": 1})
    with pytest.raises(UserError, match=r"batch_size=4 is larger than the 3 training images of facades"):
        PairedImageDataModule(data_dir=str(tmp_path), batch_size=4, image_size=16).setup("fit")
    sharded = MarkedDataModule(batch_size=8, image_size=8, max_train_images=20)
    sharded.trainer = fake_trainer(world_size=4)
    with pytest.raises(UserError, match=r"20 training images of marked \(5 per rank on 4 ranks\)"):
        sharded.setup("fit")
