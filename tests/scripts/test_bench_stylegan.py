"""scripts/bench_stylegan.py runs at a tiny size and reports sec/kimg."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_stylegan.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_stylegan", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("architecture", ["stylegan", "stylegan2"])
def test_tiny_run_prints_sec_per_kimg(architecture, capsys):
    bench = _load()
    result = bench.main(["--architecture", architecture, "--resolution", "16", "--batch", "4", "--channel-base", "32",
                         "--channel-max", "8", "--iterations", "2", "--warmup", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert result["sec_per_kimg"] == pytest.approx(result["sec_per_iteration"] / 4 * 1000)
    assert result["sec_per_kimg"] > 0 and "sec/kimg" in out and "no official figure at 16x16" in out


def test_official_figures_are_the_published_v100_ones():
    bench = _load()
    assert bench.official(1024) == (154.3, 161.6) and bench.official(256) == (21.6, 24.2) and bench.official(64) is None
