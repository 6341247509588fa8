"""Class-label and attribute conditions: canonical forms, encodings, draws and errors."""

import pytest
import torch

from genmodels.conditioning import Attributes, ClassLabels, ConditionError, make_condition


def test_class_labels_accept_int_sequence_and_tensor():
    labels = ClassLabels(4)
    assert labels.check(3, 2).tolist() == [3, 3]
    assert labels.check(torch.tensor(1), 3).tolist() == [1, 1, 1]
    assert labels.check([0, 2, 3], 3).dtype == torch.int64
    assert labels.encode(torch.tensor([2, 0])).tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("bad, match", [
    (4, "class 4 is out of range: this model has classes 0..3"),
    (torch.tensor([0, -1]), "class -1 is out of range"),
    (torch.tensor([0.0, 1.0]), r"2 integer labels \(shape \(2,\)\), got torch.float32"),
    (torch.tensor([[0, 1]]), r"got torch.int64 of shape \(1, 2\)"),
    ([0, 1, 2], r"got torch.int64 of shape \(3,\)"),
    (True, "must be integer labels"),
    ("two", "cannot read 'two' as a condition"),
])
def test_class_labels_reject_bad_conditions(bad, match):
    with pytest.raises(ConditionError, match=match):
        ClassLabels(4).check(bad, 2)


def test_class_draws_are_uniform_and_reproducible():
    labels = ClassLabels(5)
    a = labels.draw(5000, torch.Generator().manual_seed(0))
    assert torch.equal(a, labels.draw(5000, torch.Generator().manual_seed(0)))
    assert torch.bincount(a, minlength=5).min() > 900  # 1000 expected per class


def test_attributes_accept_matrix_vector_and_mapping():
    attributes = Attributes(["smile", "glasses", "hat"])
    assert attributes.check(torch.ones(2, 3), 2).shape == (2, 3)
    assert attributes.check(torch.tensor([1, 0, 1]), 2).tolist() == [[1, 0, 1], [1, 0, 1]]
    assert attributes.check({"hat": 1.0}, 1).tolist() == [[0.0, 0.0, 1.0]]
    assert attributes.index("glasses") == 1
    assert torch.equal(attributes.encode(torch.eye(3)), torch.eye(3))


@pytest.mark.parametrize("bad, match", [
    (torch.ones(2, 4), r"shape \(2, 3\) or \(3,\) \(attributes \['smile', 'glasses', 'hat'\]\), got torch.float32 of shape \(2, 4\)"),
    (torch.ones(3, 3), r"of shape \(3, 3\)"),
    ({"beard": 1.0}, "unknown attribute 'beard'; this model's attributes are"),
    (torch.tensor([1.0, float("nan"), 0.0]), "finite"),
])
def test_attributes_reject_bad_conditions(bad, match):
    with pytest.raises(ConditionError, match=match):
        Attributes(["smile", "glasses", "hat"]).check(bad, 2)


def test_datamodule_checks_name_the_fix():
    class Data:
        num_classes, attribute_names = 10, ["a", "b"]

    ClassLabels(10).check_datamodule(Data())
    Attributes(["a", "b"]).check_datamodule(Data())
    with pytest.raises(ConditionError, match="num_classes=5 but Data has 10 classes; set --model.init_args.num_classes 10"):
        ClassLabels(5).check_datamodule(Data())
    with pytest.raises(ConditionError, match=r"differ from Data's attributes \['a', 'b'\]"):
        Attributes(["b", "a"]).check_datamodule(Data())


def test_make_condition_chooses_one_kind():
    assert isinstance(make_condition(10), ClassLabels)
    assert isinstance(make_condition(0, ["a"]), Attributes)
    with pytest.raises(ConditionError, match="not both; set num_classes: 0"):
        make_condition(10, ["a"])
    with pytest.raises(ConditionError, match="num_classes must be >= 2"):
        make_condition(0)
    with pytest.raises(ConditionError, match="batch has no 'label'"):
        make_condition(3).from_batch({"image": torch.zeros(1)})
