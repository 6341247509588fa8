"""GenerativeEvaluator and the reference cache: one extractor pass for all metrics, keys, files."""

import pytest
import torch
from torch import nn

from datamodules import DigitsDataModule
from genmodels.metrics import GenerativeEvaluator, StatisticsCache, parse_metrics
from genmodels.metrics.evaluator import sample_shares
from genmodels.metrics.reference import ReferenceImages, compute_reference, reference_key
from tests.genmodels.helpers import loader
from tests.genmodels.metrics.fixtures import make_classifier


class ToyModel(nn.Module):
    """A stand-in for a GenerativeModel: sample() draws from its generator only."""

    def __init__(self, low=-1.0, high=1.0, channels=1):
        super().__init__()
        self.low, self.high, self.channels = low, high, channels
        self.calls = 0

    def sample(self, n, *, condition=None, generator=None):
        self.calls += 1
        assert not self.training and not torch.is_grad_enabled()
        u = torch.rand(n, self.channels, 16, 16, generator=generator)
        return self.low + (self.high - self.low) * u


def _reference(classifier, with_features, n=120):
    images = ReferenceImages(DigitsDataModule(image_size=16), "train", n)
    return compute_reference(classifier, images, reference_key(images, classifier, with_features))


def test_one_extractor_pass_per_batch_feeds_every_metric():
    classifier = make_classifier()
    passes = []
    classifier.register_forward_hook(lambda module, args, out: passes.append(len(args[0])))
    evaluator = GenerativeEvaluator(classifier, "pr,fid,kid,is", kid_subset_size=50, is_splits=5)
    assert evaluator.names == ["fid", "kid", "pr", "is"]  # the order of genmodels.metrics.modular
    evaluator.set_reference(_reference(classifier, with_features=True))
    passes.clear()
    model = ToyModel().train()
    state = torch.get_rng_state()
    evaluator.sample_from(model, 80, batch_size=30, generator=torch.Generator().manual_seed(0))
    assert passes == [30, 30, 20] and model.calls == 3 and model.training  # train mode restored
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.warns(UserWarning, match="FID from 80 generated samples of 84-d features: .* rank at most 79 < 84"):
        values = evaluator.compute()
    expected = {"fid_lenet", "is_lenet", "is_lenet_std", "kid_lenet", "kid_lenet_std"} | {"precision_lenet", "recall_lenet"}
    assert set(values) == expected and all(isinstance(v, float) for v in values.values())
    assert values["fid_lenet"] > 0 and 1 <= values["is_lenet"] <= 10 and 0 <= values["precision_lenet"] <= 1
    assert set(evaluator.protocol()["metrics"]) == {"fid", "is", "kid", "pr"}


def test_generated_images_outside_the_range_are_refused_with_the_values_found():
    evaluator = GenerativeEvaluator(make_classifier(), "is", is_splits=2)
    with pytest.raises(ValueError, match=r"images must lie in \[-1, 1\].*found values in \[0\.0\d+, 255\]"):
        evaluator.sample_from(ToyModel(0.0, 255.0), 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="expected images with 1 channels, got 3"):
        evaluator.sample_from(ToyModel(channels=3), 4, generator=torch.Generator().manual_seed(0))


def test_reference_needs_and_shares():
    assert parse_metrics("is") == ["is"] and parse_metrics(["kid", "fid", "kid"]) == ["fid", "kid"]
    assert not GenerativeEvaluator(make_classifier(), "is").needs_reference
    assert not GenerativeEvaluator(make_classifier(), "fid").needs_reference_features
    assert GenerativeEvaluator(make_classifier(), "fid,pr").needs_reference_features
    with pytest.raises(ValueError, match="needs the real features"):
        GenerativeEvaluator(make_classifier(), "kid").set_reference(_reference(make_classifier(), with_features=False))
    assert sample_shares(10, 3) == [4, 3, 3] and sum(sample_shares(50_000, 7)) == 50_000


def test_cache_files_are_keyed_atomic_and_robust(tmp_path):
    classifier = make_classifier()
    cache = StatisticsCache(tmp_path)
    moments = _reference(classifier, with_features=False)
    path = cache.save(moments)
    assert path.name.startswith(f"digits-train-16px-lenet-{classifier.sha256[:8]}-n120-") and path.suffix == ".pt"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    loaded = cache.load(moments.key)
    assert loaded.n == 120 and torch.equal(loaded.cov, moments.cov) and loaded.features is None
    assert cache.load(moments.key, need_features=True) is None  # KID / PR need the features entry

    full = _reference(classifier, with_features=True)
    cache.save(full)
    assert cache.load(full.key, need_features=True).features.shape == (120, 84)
    path.unlink()
    assert cache.load(moments.key).features is not None  # the features entry serves FID too

    # Another extractor file, another number of images, other pixels: other keys.
    other = make_classifier(seed=1)
    other.sha256 = "f" * 64
    images = ReferenceImages(DigitsDataModule(image_size=16), "train", 120)
    key = reference_key(images, classifier, False)
    assert cache.path(reference_key(images, other, False)) != cache.path(key)
    fewer = ReferenceImages(DigitsDataModule(image_size=16), "train", 100)
    assert cache.path(reference_key(fewer, classifier, False)) != cache.path(key)
    other_split = ReferenceImages(DigitsDataModule(image_size=16, val_fraction=0.2), "train", 120)
    assert cache.path(reference_key(other_split, classifier, False)) != cache.path(key)
    same = ReferenceImages(DigitsDataModule(image_size=16, batch_size=7, seed=3), "train", 120)
    assert cache.path(reference_key(same, classifier, False)) == cache.path(key)  # loading settings do not count

    corrupt = cache.path(full.key)
    corrupt.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="ignoring unreadable reference statistics"):
        assert cache.load(full.key, need_features=True) is None
    with pytest.raises(ValueError, match="has only"):
        ReferenceImages(DigitsDataModule(), "train", 10**6)


class FolderSplit:
    """Stands in for a split decoded from files batch by batch (CelebA, image folders)."""

    def __init__(self, names):
        self.paths, self.reads = names, []

    def __len__(self):
        return len(self.paths)

    def __getitems__(self, indices):
        self.reads.append(list(indices))
        return {"image": torch.tensor(list(indices), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 8, 8)}


class FolderDataModule:  # a `genmodels.protocols.ImageSplits` whose split is decoded from files
    dataset_name = "folder"
    image_shape = (1, 8, 8)
    num_classes = 0

    def __init__(self, names, image_size=8, batch_size=4):
        self.hparams = {"data_dir": "/data", "image_size": image_size, "batch_size": batch_size}
        self.split = FolderSplit(names)

    def split_dataset(self, split):
        return self.split

    def split_images(self, split, limit=None):
        raise AssertionError("the reference streams the files; it never reads the whole split")


def test_reference_images_from_files_are_streamed_and_fingerprinted_without_a_full_read():
    names = [f"img{i:03d}.png" for i in range(10)]
    datamodule = FolderDataModule(names)
    images = ReferenceImages(datamodule, "train")
    fingerprint = images.fingerprint()
    assert images.resolution() == [1, 8, 8] and datamodule.split.reads == [[0]]  # one image decoded
    shards = [[b[:, 0, 0, 0].tolist() for b in images.batches(3, rank, 2)] for rank in (0, 1)]
    assert shards == [[[0, 1, 2], [3, 4]], [[5, 6, 7], [8, 9]]]  # contiguous shards, in order
    assert ReferenceImages(FolderDataModule(names, batch_size=64), "train").fingerprint() == fingerprint
    assert ReferenceImages(FolderDataModule(names, image_size=16), "train").fingerprint() != fingerprint
    assert ReferenceImages(FolderDataModule(names[:-1] + ["new.png"]), "train").fingerprint() != fingerprint


def test_reference_images_of_other_datamodules_come_from_their_loader_without_touching_the_rng():
    class LoaderOnly:
        def val_dataloader(self):
            return loader(12, (1, 16, 16), batch_size=4)

    state = torch.get_rng_state()
    images = ReferenceImages(LoaderOnly(), "val", 10)
    assert torch.equal(torch.get_rng_state(), state)  # DataLoader iterators draw a seed; not from ours
    expected = ((loader(12, (1, 16, 16), 4).dataset.images[:10] + 1) * 127.5).round().to(torch.uint8)
    assert len(images) == 10 and torch.equal(images.images(0, 10), expected)
    assert images.dataset_name == "LoaderOnly"


def test_a_new_metric_is_one_class_the_evaluator_asks_what_it_needs():
    from torchmetrics.utilities.data import dim_zero_cat

    from genmodels.metrics.modular import METRIC_CLASSES, EvaluationMetric

    def mean_distance(real_mean: torch.Tensor, features: torch.Tensor) -> torch.Tensor:  # the functional core
        return (features.double().mean(0) - real_mean).norm()

    class MeanDistance(EvaluationMetric, register=False):
        key, takes, reference = "md", "features", "moments"

        def __init__(self, num_features: int) -> None:
            super().__init__()
            self.num_features = num_features
            self.add_state("features", [], dist_reduce_fx="cat")

        @classmethod
        def for_evaluation(cls, extractor, **options):
            return cls(extractor.num_features)

        def set_reference(self, mean, cov, n):
            self.real_mean = mean

        def update(self, features):
            self.features.append(features)

        def compute(self):
            return mean_distance(self.real_mean, dim_zero_cat(self.features))

        def settings(self):
            return {"distance": "L2 between feature means"}

    classifier = make_classifier()
    reference = _reference(classifier, with_features=False)
    evaluator = GenerativeEvaluator(classifier, ["is", MeanDistance], is_splits=2)
    assert evaluator.names == ["is", "md"] and "md" not in METRIC_CLASSES
    assert evaluator.needs_reference and not evaluator.needs_reference_features  # asked of the metric
    evaluator.set_reference(reference)
    with torch.no_grad():
        images = ToyModel().eval().sample(40, generator=torch.Generator().manual_seed(0))
        evaluator.update(images)
        features = classifier(images).features
    values = evaluator.compute()
    expected = (features.double().mean(0) - reference.mean).norm().item()
    assert set(values) == {"is_lenet", "is_lenet_std", "md_lenet"}
    assert values["md_lenet"] == pytest.approx(expected, rel=1e-6)
    assert evaluator.protocol()["metrics"]["md"] == {"distance": "L2 between feature means"}
