"""``genmodels train-attributes`` run end to end on a tiny CelebA (shares its run with train-classifier: commands/_classifier.py)."""

import torch
import yaml

from genmodels.apps.attributes import load_attribute_classifier
from genmodels.commands import invoke
from genmodels.metrics.extractors import file_sha256
from tests.datamodules.formats import write_celeba


def test_writes_a_pinned_classifier_named_after_the_dataset(tmp_path, capsys, monkeypatch):
    torch.set_num_threads(1)
    write_celeba(tmp_path / "data", splits=(8, 4, 4))
    config = tmp_path / "celeba.yaml"
    config.write_text(yaml.safe_dump({"data": {"class_path": "datamodules.CelebADataModule", "init_args": {
        "data_dir": str(tmp_path / "data"), "image_size": 16, "batch_size": 4, "num_workers": 0}}}))
    monkeypatch.chdir(tmp_path)
    digest = invoke(["train-attributes", "--data", str(config), "--epochs", "1", "--device", "cpu"])
    out = tmp_path / "attributes-CelebA.pt"  # the default --out: <prefix>-<dataset name>.pt
    printed = capsys.readouterr().out
    assert digest == file_sha256(out) and (tmp_path / "attributes-CelebA.pt.sha256").read_text().startswith(digest)
    assert f"classifier written to {out.name}\nsha256 {digest}" in printed
    assert "mean test accuracy" in printed and "over 40 attributes" in printed
    classifier = load_attribute_classifier(out)  # checks the sidecar
    assert len(classifier.attribute_names) == 40 and 0 <= classifier.meta["mean_test_accuracy"] <= 1
