"""scripts/quality_digits.py prints one table row per family, with the judge's reading of real digits."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quality_digits.py"


def _load():
    spec = importlib.util.spec_from_file_location("quality_digits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # trains the 5-epoch judge (about 10 CPU seconds)
def test_table_row_per_family_and_real_digits_score_low(tmp_path, capsys):
    script = _load()
    rows = script.main(["--families", "independent_pixels", "--iterations", "3", "--samples", "200",
                        "--judge", str(tmp_path / "lenet.pt"), "--grid-dir", str(tmp_path)])
    out = capsys.readouterr().out
    (row,) = rows
    assert row["iterations"] == 3 and 0 < row["bits_per_dim"] < 8.0 and 1 <= row["classes"] <= 10
    assert "| independent_pixels | 3 |" in out and (tmp_path / "independent_pixels-3.png").is_file()
    # Held-out real digits against the training digits: a low distance and every class.
    real = float(out.split("fid_lenet ")[1].split(",")[0])
    assert real < 15 and "10 classes" in out
    # The saved judge is reused: same hash, no retraining.
    assert script.Judge.train(path=tmp_path / "lenet.pt").classifier.sha256 == script.Judge.train(path=tmp_path / "lenet.pt").classifier.sha256


def test_unknown_family_is_refused():
    with pytest.raises(SystemExit):
        _load().main(["--families", "nosuchfamily"])
