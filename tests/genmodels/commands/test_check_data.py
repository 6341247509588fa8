"""``genmodels check-data``: the dataset of a real experiment config is found and reported without
training; a missing copy exits 2 with one line naming what is missing, where it looked and how to
get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from genmodels.commands import main
from tests.datamodules.formats import write_celeba, write_mnist, write_oxford102

REPO = Path(__file__).resolve().parents[3]


def check_data(*argv: str) -> int:
    try:
        main(["check-data", *argv])
    except SystemExit as exit_:
        return int(exit_.code)
    return 0


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("GENMODELS_DATA", raising=False)


def test_complete_celeba_kaggle_copy_is_reported(tmp_path, capsys):
    write_celeba(tmp_path, splits=(5, 2, 3), layout="kaggle", folder_name="celeba-dataset")
    config = REPO / "experiments" / "stylegan" / "celeba.yaml"
    assert check_data("--config", str(config), "--data.init_args.data_dir", str(tmp_path)) == 0
    out = capsys.readouterr().out.splitlines()
    assert "dataset:    CelebA" in out
    assert "layout:     Kaggle copy (img_align_celeba/img_align_celeba/, .csv lists)" in out
    assert f"root:       {tmp_path / 'celeba-dataset'}" in out
    assert "images:     train 5, val 2, test 3" in out
    assert "image size: 3x128x128 (channels x height x width, after preprocessing)" in out  # the YAML's image_size
    assert sum(line.startswith("sample:     00000") for line in out) == 3
    assert out[-1] == "complete: every split was found and read"


def test_text_image_report_has_vocabulary_and_captions(tmp_path, capsys):
    write_oxford102(tmp_path, train_classes=2, test_classes=1, per_class=2, layout="stackgan")
    config = REPO / "experiments" / "stackgan" / "oxford102.yaml"  # its model needs a DAMSM checkpoint: not built
    assert check_data("--config", str(config), "--data.init_args.data_dir", str(tmp_path),
                      "--data.init_args.max_train_images", "2") == 0
    out = capsys.readouterr().out
    assert "images:     train 2, val 2, test 2" in out and "classes:    102" in out
    assert "subset:     max_train_images=2: 2 of 4 training images (seed 0, class-stratified)" in out
    # <pad>, <unk>, "a flower with <colour> petals, caption <0..9>" with the 3 colours of all 4 training images
    assert "vocabulary: 20 words" in out
    assert out.count("sample:     train[") == 3 - 1 and "a flower with" in out  # two images kept: two samples


def test_missing_copy_exits_2_with_one_line_saying_what_where_and_how(tmp_path, capsys):
    config = REPO / "experiments" / "stylegan" / "celeba.yaml"
    assert check_data("--config", str(config), "--data.init_args.data_dir", str(tmp_path / "nowhere")) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and captured.out == ""
    assert err.startswith("genmodels: error: CelebA: img_align_celeba/ with list_attr_celeba.txt and list_eval_partition.txt")
    assert f"looked in {tmp_path / 'nowhere' / 'celeba'}" in err
    assert "img_align_celeba.zip" in err and "drive.google.com" in err


def test_bad_file_and_bad_config_exit_2(tmp_path, capsys):
    write_mnist(tmp_path / "MNIST" / "raw", n_train=8, n_test=4)
    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1])
    config = REPO / "experiments" / "dcgan" / "mnist.yaml"
    assert check_data("--config", str(config), "--data.init_args.data_dir", str(tmp_path)) == 2
    assert f"genmodels: error: {labels}: truncated" in capsys.readouterr().err
    assert check_data("--config", str(config), "--data.init_args.max_train_images", "0") == 2
    assert "max_train_images" in capsys.readouterr().err
    assert check_data("--config", str(config), "--model.init_args.lr", "1") == 2
    assert "only takes --data.* overrides" in capsys.readouterr().err
    assert check_data("--config", str(tmp_path / "missing.yaml")) == 2
