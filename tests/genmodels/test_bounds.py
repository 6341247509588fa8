"""Bounds: every number has a range said in the user's terms; sweeps and YAML are sized before they are built.

Before (issue #27): sweep files with a list or a bare number, ``check-data --data.init_args.image_size
100000``, ``--sample_grid.num_samples 1e9``, ``interpolate --frame-ms 1e12`` and
``--trainer.accumulate_grad_batches 0`` were tracebacks; ``values: []`` ran nothing and exited 0;
a 12-parameter x 10-value grid was built in full before its 10,000-run cap; a billion-laughs YAML
blew up; a duplicate YAML key was accepted.
"""

from __future__ import annotations

import time

import pytest
import yaml

from genmodels.commands import main
from tests.cli.common import EXPERIMENTS

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))


def _refused(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("genmodels: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("text, words", [
    ("- a\n- b\n", "needs a 'parameters' mapping"),
    ("3\n", "needs a 'parameters' mapping"),
    ("parameters:\n  model.init_args.lr:\n    values: []\n", "values must be a non-empty list"),
    ("parameters:\n  model.init_args.lr: 3\n", "must be a mapping"),
    ("parameters:\n  x: {values: [1]}\n  x: {values: [2]}\n", "appears twice"),
    ("parameters:\n  data.class_path:\n    values: [evilmod.Data]\n", "evilmod.Data"),
    ("parameters:\n  trainer.logger.class_path:\n    values: [os.system]\n", "model.class_path and data.class_path only"),
    (BILLION_LAUGHS.replace("a:", "parameters: {}\na:", 1), "aliases"),
])
def test_bad_sweep_files_are_one_line(tmp_path, capsys, text, words):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(text)
    assert words in _refused(capsys, ["sweep", str(sweep), "--dry-run", "--root", str(tmp_path / "r")])


def test_a_huge_grid_is_refused_by_its_size_before_it_is_built(tmp_path, capsys):
    sweep = tmp_path / "grid.yaml"
    sweep.write_text(yaml.safe_dump({"parameters": {f"model.init_args.p{i}": {"values": list(range(10))} for i in range(12)}}))
    start = time.perf_counter()
    message = _refused(capsys, ["sweep", str(sweep), "--dry-run", "--root", str(tmp_path / "r")])
    assert "expands to 1000000000000 runs, over 10000" in message
    assert time.perf_counter() - start < 5  # 10^12 combinations were never made


def test_yaml_aliases_are_bounded_and_duplicate_keys_refused():
    from genmodels.yamlsafe import YAMLError, load_yaml

    start = time.perf_counter()
    with pytest.raises(YAMLError, match="aliases"):
        load_yaml(BILLION_LAUGHS)
    assert time.perf_counter() - start < 2
    with pytest.raises(YAMLError, match="'lr' appears twice"):
        load_yaml("model:\n  lr: 1\n  lr: 2\n")
    assert load_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  x: 2\n") == {"base": {"x": 1}, "other": {"x": 2}}


def test_fit_refuses_a_config_with_a_duplicate_key_or_an_alias_bomb(tmp_path, capsys):
    twice = tmp_path / "twice.yaml"
    twice.write_text("model:\n  init_args:\n    lr_g: 0.1\n    lr_g: 0.2\n")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    base = ["fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), "--trainer.default_root_dir", str(tmp_path / "run")]
    assert "'lr_g' appears twice" in _refused(capsys, [*base, "--config", str(twice)])
    assert "aliases" in _refused(capsys, [*base, "--config", str(bomb)])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, words", [
    (["--trainer.accumulate_grad_batches", "0"], "accumulate_grad_batches must be an integer >= 1"),
    (["--sample_grid.num_samples", "1000000000"], "sample_grid.num_samples must be an integer from 1 to 4096"),
])
def test_fit_numbers_out_of_range_are_one_line(tmp_path, capsys, extra, words):
    run = tmp_path / "run"
    argv = ["fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), "--trainer.default_root_dir", str(run), *extra]
    assert words in _refused(capsys, argv)
    assert not (run / "checkpoints").exists()


def test_check_data_image_size_has_a_range(tmp_path, capsys):
    message = _refused(capsys, ["check-data", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"),
                                "--data.init_args.image_size", "100000"])
    assert "image_size must be an integer from 8 to 4096" in message


def test_interpolate_frame_ms_has_a_range(tmp_path, capsys):
    message = _refused(capsys, ["interpolate", "--ckpt", "x.ckpt", "--frame-ms", "1000000000000", "--out", str(tmp_path / "a.gif")])
    assert "--frame-ms" in message and "from 10 to 655350" in message
