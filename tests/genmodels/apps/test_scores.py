"""Scorers: differentiable class/attribute scores, names, fitting checks, classifier files, class accuracy."""

import types

import pytest
import torch
from torch import nn

from genmodels.apps.scores import Scorer, class_accuracy, class_scorer, load_scorer
from genmodels.apps.attributes import save_attribute_classifier
from genmodels.checkpoints import CheckpointError
from genmodels.conditioning import ConditionError
from genmodels.metrics.classifier import load_classifier
from tests.genmodels.apps.control_helpers import digit_classifier_file, single_thread
from tests.genmodels.apps.quadrants import trained


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def linear_scorer(kind):
    torch.manual_seed(0)
    return Scorer(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), ["a", "b", "c"], kind, (1, 2, 2))


def test_class_scores_are_log_probabilities_and_attribute_scores_logits():
    images = torch.rand(5, 1, 2, 2)
    classes, attributes = linear_scorer("class"), linear_scorer("attribute")
    logits = attributes.logits(images)
    assert torch.allclose(classes(images), logits.log_softmax(1))
    assert torch.allclose(classes.probabilities(classes(images)).sum(1), torch.ones(5))
    assert torch.equal(attributes(images), logits)
    assert torch.allclose(attributes.probabilities(attributes(images)), torch.sigmoid(logits))


def test_gradients_reach_the_images_not_the_classifier():
    scorer = linear_scorer("attribute")
    images = torch.rand(2, 1, 2, 2, requires_grad=True)
    scorer(images)[:, 0].sum().backward()
    assert images.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in scorer.parameters())


def test_targets_by_name_or_class_index():
    assert linear_scorer("class").index("c") == 2
    assert linear_scorer("class").index("1") == 1 and linear_scorer("class").index(0) == 0
    with pytest.raises(ConditionError, match=r"class 3 is out of range: the classifier has classes 0..2"):
        linear_scorer("class").index(3)
    with pytest.raises(ConditionError, match=r"unknown attribute 'd'; the classifier's attributes are \['a', 'b', 'c'\]"):
        linear_scorer("attribute").index("d")
    with pytest.raises(ConditionError, match="unknown attribute '1'"):
        linear_scorer("attribute").index("1")  # attributes are named, never numbered


def test_check_fits_names_both_shapes():
    linear_scorer("class").check_fits((1, 2, 2))
    with pytest.raises(ValueError, match=r"trained on \(1, 2, 2\) images but the generator makes \(3, 2, 2\) images"):
        linear_scorer("class").check_fits((3, 2, 2))


def test_class_scorer_matches_the_classifier_on_pixel_grid_images(tmp_path):
    classifier = load_classifier(digit_classifier_file(tmp_path / "lenet.pt", data_size=16))
    scorer = class_scorer(classifier)
    images = torch.randint(0, 256, (4, 1, 16, 16), generator=torch.Generator().manual_seed(0)) / 127.5 - 1
    # The classifier rounds to uint8 and resizes to 32 px; on exact pixel values only the resize remains.
    assert torch.allclose(scorer(images), classifier(images).logits.log_softmax(1), atol=1e-5)
    assert scorer.image_shape == (1, 16, 16) and scorer.names == [str(k) for k in range(10)]
    assert scorer.source.startswith("(sha256 ")


def test_load_scorer_reads_both_kinds_and_refuses_others(tmp_path):
    attribute_classifier = trained().classifier
    assert load_scorer(digit_classifier_file(tmp_path / "lenet.pt")).kind == "class"
    save_attribute_classifier(attribute_classifier, tmp_path / "attributes.pt")
    scorer = load_scorer(tmp_path / "attributes.pt")
    assert scorer.kind == "attribute" and scorer.names == ["top_left", "bottom_right", "top_right"]
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a classifier file"):
        load_scorer(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_scorer(tmp_path / "missing.pt")


class _LabelPainter(nn.Module):
    """A "conditional model" that paints label k as the pixel value; predict() reads it back."""

    num_classes, image_shape, device = 3, (1, 16, 16), torch.device("cpu")

    def sample(self, n, *, condition=None, generator=None):
        return (condition.float() - 1)[:, None, None, None].expand(n, 1, 16, 16)


def _reader(num_classes=3, size=16):
    meta = {"num_classes": num_classes, "image_size": 32, "channels": 1, "data_image_size": size}
    return types.SimpleNamespace(meta=meta, net=None, sha256="", predict=lambda x: (x[:, 0, 0, 0] + 1).round().long())


def test_class_accuracy_counts_samples_of_the_requested_class():
    accuracy, per_class = class_accuracy(_LabelPainter(), _reader(), samples_per_class=5, batch_size=4)
    assert accuracy == 1.0 and per_class.tolist() == [1.0, 1.0, 1.0]


def test_class_accuracy_refuses_a_classifier_with_other_classes_or_shapes():
    with pytest.raises(ValueError, match="the classifier has 10 classes but the model is conditioned on 3"):
        class_accuracy(_LabelPainter(), _reader(num_classes=10))
    with pytest.raises(ValueError, match=r"trained on \(1, 28, 28\) images but the model makes \(1, 16, 16\)"):
        class_accuracy(_LabelPainter(), _reader(size=28))
