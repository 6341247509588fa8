"""The LeNet domain classifier: training on digits, weights-only files pinned by hash, predict()."""

import math

import pytest
import torch

from datamodules import DigitsDataModule
from genmodels.checkpoints import CheckpointError
from genmodels.metrics.classifier import LeNet5, load_classifier, save_classifier, train_classifier
from genmodels.metrics.extractors import build_extractor
from tests.genmodels.metrics.fixtures import make_classifier


def test_trains_to_high_accuracy_on_digits_without_touching_the_global_rng(tmp_path, single_thread):
    state = torch.get_rng_state()
    lines = []
    classifier = train_classifier(DigitsDataModule(batch_size=64), epochs=6, log=lines.append)
    assert torch.equal(torch.get_rng_state(), state)
    assert len(lines) == 6 and lines[-1].startswith("epoch 6/6: train loss")
    assert classifier.meta["test_accuracy"] > 0.9  # 180 held-out digits
    assert {k: classifier.meta[k] for k in ("dataset", "image_size", "channels", "num_classes")} == {
        "dataset": "digits", "image_size": 32, "channels": 1, "num_classes": 10,
    }

    digest = save_classifier(classifier, tmp_path / "lenet.pt")
    assert (tmp_path / "lenet.pt.sha256").read_text().split() == [digest, "lenet.pt"]
    plain = torch.load(tmp_path / "lenet.pt", weights_only=True)  # plain tensors and values only
    assert plain["meta"]["test_accuracy"] == classifier.meta["test_accuracy"]

    loaded = load_classifier(tmp_path / "lenet.pt")
    datamodule = DigitsDataModule()
    datamodule.setup("test")
    images = datamodule.test_dataloader().dataset.images
    labels = datamodule.test_dataloader().dataset.labels
    predictions = loaded.predict(images.float() / 127.5 - 1)
    assert predictions.dtype == torch.int64 and predictions.shape == labels.shape
    assert (predictions == labels).double().mean().item() == pytest.approx(classifier.meta["test_accuracy"])
    assert torch.equal(loaded.predict(images), predictions)  # uint8 pixels give the same answer
    assert loaded.sha256 == digest


def test_extractor_features_logits_and_resizing(lenet_file):
    extractor = build_extractor(f"classifier:{lenet_file}")
    assert extractor.name == "lenet" and extractor.num_features == 84 and extractor.num_logits == 10
    small = torch.rand(3, 1, 16, 16) * 2 - 1  # resized to the classifier's 32 px
    out = extractor(small)
    assert out.features.shape == (3, 84) and out.logits.shape == (3, 10)
    with pytest.raises(ValueError, match="expected images with 1 channels, got 3"):
        extractor(torch.zeros(1, 3, 32, 32))
    protocol = extractor.protocol()
    assert protocol["extractor_sha256"] == (lenet_file.parent / "lenet.pt.sha256").read_text().split()[0]
    assert protocol["classifier"]["dataset"] == "digits"


def test_a_modified_or_foreign_file_is_refused(tmp_path, lenet_file):
    copy = tmp_path / "lenet.pt"
    save_classifier(make_classifier(seed=1), copy)
    with pytest.raises(ValueError, match="it is not the pinned file"):
        load_classifier(copy, sha256="0" * 8)
    (tmp_path / "lenet.pt.sha256").write_text("f" * 64 + "  lenet.pt\n")  # file changed since training
    with pytest.raises(ValueError, match="expected f{64}"):
        load_classifier(copy)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ValueError, match="not a classifier written by `genmodels train-classifier`"):
        load_classifier(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="28 or 32"):
        LeNet5(image_size=64)


def test_fit_classifier_is_adam_on_the_given_batches_with_a_cosine_schedule():
    from genmodels.metrics.classifier import fit_classifier

    torch.manual_seed(0)
    inputs = torch.randn(64, 2)
    targets = (inputs[:, 0] > 0).long()  # separable by the first coordinate
    net, reference = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    reference.load_state_dict(net.state_dict())
    lines: list[str] = []
    fit_classifier(net, lambda epoch: [(inputs, targets)], torch.nn.functional.cross_entropy, epochs=3,
                   steps_per_epoch=1, lr=0.1, log=lines.append)
    # The same three steps written out: Adam, lr 0.1 * (1 + cos(pi s / 3)) / 2 at step s.
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.1)
    losses = []
    for step in range(3):
        for group in optimizer.param_groups:
            group["lr"] = 0.1 * 0.5 * (1 + math.cos(math.pi * step / 3))
        loss = torch.nn.functional.cross_entropy(reference(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert torch.allclose(net.weight, reference.weight) and torch.allclose(net.bias, reference.bias)
    assert lines == [f"epoch {e + 1}/3: train loss {losses[e]:.4f}" for e in range(3)]
    assert not net.training
