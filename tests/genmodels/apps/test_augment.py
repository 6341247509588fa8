"""``genmodels augment``: generated images carry the labels they were conditioned on; the table's rows."""

import json
from typing import Any, Optional

import pytest
import torch

from datamodules import DigitsDataModule
from genmodels.apps.augment import format_table, generated_dataset, run_augmentation, stratified_subset
from genmodels.apps.export import load_generative_model
from genmodels.apps.generation import generate
from genmodels.commands import main
from genmodels.commands import invoke
from genmodels.metrics.classifier import DomainClassifier, LeNet5, save_classifier
from tests.genmodels.apps.model_files import cgan_ckpt, dcgan_ckpt, one_thread, tiny_dcgan  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")


class LabelPainter:
    """A conditional "generator" that paints class k as a bright row k on noise: its images say
    which label they were asked for, so a pipeline that mixes up images and labels is caught."""

    device = torch.device("cpu")
    image_shape = (1, 16, 16)
    num_classes = 10

    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        labels = torch.as_tensor(condition).long().reshape(-1).expand(n)
        images = torch.rand(n, 1, 16, 16, generator=generator) * 0.5 - 1
        images[torch.arange(n), 0, labels] = 1.0
        return images


def painted_labels(images: torch.Tensor) -> torch.Tensor:
    return images[:, 0, :10].float().mean(2).argmax(1)


def test_generated_images_carry_the_labels_they_were_conditioned_on():
    images, labels = generated_dataset(LabelPainter(), 103, 10, seed=3, batch_size=16)  # 7 batches, the last partial
    assert images.dtype == torch.uint8 and images.shape == (103, 1, 16, 16)
    assert torch.equal(painted_labels(images), labels)
    counts = labels.bincount(minlength=10)
    assert counts.min() >= 10 and counts.max() <= 11  # balanced
    assert not torch.equal(labels, labels.sort().values)  # shuffled, so batches mix classes
    again, again_labels = generated_dataset(LabelPainter(), 103, 10, seed=3, batch_size=16)
    assert torch.equal(images, again) and torch.equal(labels, again_labels)


def test_a_conditional_gan_is_asked_for_each_label(cgan_ckpt):
    model = load_generative_model(cgan_ckpt)
    images, labels = generated_dataset(model, 30, 10, seed=1, batch_size=8)
    expected = generate(model, 30, 1, condition=labels)  # image i from condition labels[i]
    assert torch.equal(images, ((expected + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))


def test_stratified_subset_keeps_a_share_of_every_class():
    labels = torch.arange(10).repeat_interleave(torch.tensor([50, 40, 30, 20, 10, 9, 8, 7, 6, 3]))
    subset = stratified_subset(labels, 0.1, seed=0)
    assert labels[subset].bincount().tolist() == [5, 4, 3, 2, 1, 1, 1, 1, 1, 1]
    assert torch.equal(subset, stratified_subset(labels, 0.1, seed=0))
    assert not torch.equal(subset, stratified_subset(labels, 0.1, seed=1))


def test_the_table_compares_real_only_with_real_plus_generated():
    data = DigitsDataModule(image_size=16)
    result = run_augmentation(LabelPainter(), data, real_fraction=0.1, steps=3, repeats=1, log=lambda _: None)
    train_labels = data._dataset("train").labels
    num_real = sum(max(1, round(0.1 * int(c))) for c in train_labels.bincount())
    rows = {row.name: (row.num_real, row.num_generated) for row in result.rows}
    assert rows == {
        "real only": (num_real, 0),
        "real + generated": (num_real, len(train_labels) - num_real),
        "generated only": (0, len(train_labels) - num_real),
        "all real (ceiling)": (len(train_labels), 0),
    }
    assert all(0.0 <= row.mean <= 1.0 for row in result.rows)
    table = format_table(result)
    assert table.splitlines()[0].split() == ["training", "data", "real", "generated", "test", "accuracy"]
    assert "real + generated vs real only:" in table


def test_unconditional_generators_are_labelled_by_a_classifier(dcgan_ckpt, tmp_path):
    model = tiny_dcgan()
    with pytest.raises(ValueError, match="unconditional, so its images have no labels"):
        generated_dataset(model, 10, 10)
    torch.manual_seed(0)
    labeler = DomainClassifier(LeNet5(1, 10, 32), {"image_size": 32, "channels": 1, "num_classes": 10})
    images, labels = generated_dataset(model, 20, 10, seed=2, labeler=labeler)
    assert torch.equal(labels, labeler.predict(generate(model, 20, 2)))
    save_classifier(labeler, tmp_path / "lenet.pt")
    result = invoke(["augment", "--gen", str(dcgan_ckpt), "--data", "digits", "--labeler", str(tmp_path / "lenet.pt"),
                           "--num-generated", "20", "--steps", "1", "--repeats", "1", "--device", "cpu"])  # fmt: skip
    assert result.protocol["labels"] == "labeler" and result.row("generated only").num_generated == 20


def test_augment_command_prints_the_table(cgan_ckpt, dcgan_ckpt, tmp_path, capsys):
    out = tmp_path / "augment.json"
    main(["augment", "--gen", str(cgan_ckpt), "--data", "digits", "--real-fraction", "0.1", "--steps", "2",
          "--repeats", "1", "--device", "cpu", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "real only" in printed and "real + generated vs real only" in printed
    record = json.loads(out.read_text())
    assert [row["name"] for row in record["rows"]][:2] == ["real only", "real + generated"]
    assert record["protocol"]["labels"] == "conditioned" and record["protocol"]["real_fraction"] == 0.1
    with pytest.raises(SystemExit):
        main(["augment", "--gen", str(dcgan_ckpt), "--data", "digits", "--steps", "1", "--device", "cpu"])
    assert "pass --labeler" in capsys.readouterr().err
