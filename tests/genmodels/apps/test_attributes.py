"""The multi-label attribute classifier: learns independent attributes, files round-trip pinned by hash."""

import pytest
import torch

from genmodels.apps.attributes import (
    AttributeClassifier,
    load_attribute_classifier,
    save_attribute_classifier,
    train_attribute_classifier,
)
from tests.genmodels.apps.control_helpers import digit_classifier_file, single_thread
from tests.genmodels.apps.quadrants import trained


@pytest.fixture
def attribute_classifier():
    return trained().classifier


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def test_learns_every_attribute(attribute_classifier):
    quadrants = trained().data
    accuracy = attribute_classifier.meta["test_accuracy"]
    assert list(accuracy) == ["top_left", "bottom_right", "top_right"]
    assert min(accuracy.values()) > 0.9
    images, attributes = quadrants.test_set.tensors
    assert (attribute_classifier.predict(images) == attributes).float().mean() > 0.9
    assert attribute_classifier.image_shape == (1, 16, 16)


def test_file_round_trip_is_pinned_by_hash(attribute_classifier, tmp_path):
    path = tmp_path / "attributes.pt"
    digest = save_attribute_classifier(attribute_classifier, path)
    assert (tmp_path / "attributes.pt.sha256").read_text().split()[0] == digest
    loaded = load_attribute_classifier(path)
    images = torch.rand(3, 1, 16, 16) * 2 - 1
    assert torch.equal(loaded(images), attribute_classifier(images))
    assert loaded.sha256 == digest and not any(p.requires_grad for p in loaded.parameters())
    with pytest.raises(ValueError, match="expected 0000"):
        load_attribute_classifier(path, sha256="0000")


def test_refuses_other_files_and_data_without_attributes(tmp_path):
    with pytest.raises(ValueError, match="is not an attribute classifier"):
        load_attribute_classifier(digit_classifier_file(tmp_path / "lenet.pt"))

    class NoAttributes:
        image_shape = (1, 16, 16)

    with pytest.raises(ValueError, match="NoAttributes has no attributes"):
        train_attribute_classifier(NoAttributes())


def test_forward_is_differentiable_in_the_images(attribute_classifier):
    images = torch.zeros(2, 1, 16, 16, requires_grad=True)
    attribute_classifier(images)[:, 0].sum().backward()
    assert images.grad.abs().sum() > 0
    assert isinstance(attribute_classifier, AttributeClassifier)
