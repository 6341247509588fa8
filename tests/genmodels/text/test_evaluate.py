"""IS and FID of a text-to-image checkpoint through the shared metrics (``genmodels evaluate``), with a
domain classifier trained on the shapes set: images are drawn for validation captions (the caption bank)."""

import json
import warnings

import yaml

from genmodels.commands import main
from tests.cli.common import EXPERIMENTS, TINY, tiny_args
from tests.genmodels.gans.text_helpers import one_thread  # noqa: F401 (autouse fixture)


def test_evaluate_a_stackgan_on_validation_captions(tmp_path):
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"data": {"class_path": "datamodules.TextImageDataModule", "init_args": {
        "dataset": "shapes", "image_size": 16, "synthetic_size": 64, "batch_size": 16, "num_workers": 0}}}))
    tiny = tiny_args("stackgan/shapes.yaml")
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train-classifier", "--data", str(data), "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "lenet.pt")])
        main(["fit", "--config", str(EXPERIMENTS / "stackgan/shapes.yaml"), "--trainer.default_root_dir", str(run), *TINY,
              *tiny, "--data.init_args.synthetic_size", "64", "--data.init_args.batch_size", "8", "--max_iterations", "2",
              "--trainer.logger", "false"])
        main(["evaluate", "--ckpt", str(run / "checkpoints/last.ckpt"), "--metrics", "fid,is", "--extractor",
              f"classifier:{tmp_path / 'lenet.pt'}", "--num-samples", "32", "--num-real", "16", "--split", "val",
              "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "eval.json")])
    record = json.loads((tmp_path / "eval.json").read_text())
    assert set(record["values"]) >= {"fid_lenet", "is_lenet"}
    assert record["values"]["fid_lenet"] > 0 and record["values"]["is_lenet"] >= 1.0
