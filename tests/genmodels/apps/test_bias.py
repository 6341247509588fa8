"""Bias probing: a correlation built into the data shows up, an independence shows none; files are written."""

import csv
import math

import pytest
import torch
from PIL import Image

from genmodels import ConditionalGAN
from genmodels.apps.bias import heatmap, path_correlation, probe_bias, write_report
from genmodels.commands import invoke
from tests.genmodels.apps.control_helpers import digit_classifier_file, save_model_checkpoint, single_thread
from tests.genmodels.apps.quadrants import trained

TOP_LEFT, BOTTOM_RIGHT, TOP_RIGHT = 0, 1, 2


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def test_path_correlation_values():
    target = torch.arange(6.0)
    scores = torch.stack([target, 2 * target + 1, -target, torch.ones(6), torch.tensor([1.0, -1, 1, -1, 1, -1])], 1)
    correlation = path_correlation(scores.view(3, 2, 5), target=0)
    assert correlation[:3].tolist() == pytest.approx([1.0, 1.0, -1.0])
    assert math.isnan(correlation[3])  # a constant score has no correlation
    assert correlation[4].item() == pytest.approx(-0.29277, abs=1e-4)


@pytest.fixture(scope="module")
def report():
    pieces = trained()
    z = torch.randn(256, 8, generator=torch.Generator().manual_seed(1))
    with single_thread():  # module-scoped: set up before the function-scoped thread fixture
        return probe_bias(pieces.generator, pieces.linear_scorer, z, steps=3, step_size=0.5)


def test_probe_finds_the_built_in_correlation_and_no_other(report):
    assert report.target_names == ["top_left", "bottom_right", "top_right"]
    assert torch.allclose(report.correlation.diagonal(), torch.ones(3, dtype=torch.float64))
    # bottom_right copies top_left in 90% of the data: editing either moves the other.
    assert report.correlation[TOP_LEFT, BOTTOM_RIGHT] > 0.7 and report.correlation[BOTTOM_RIGHT, TOP_LEFT] > 0.7
    assert report.change[TOP_LEFT, BOTTOM_RIGHT] > 0.5 * report.change[TOP_LEFT, TOP_LEFT]
    # top_right is independent of both.
    for a, b in [(TOP_LEFT, TOP_RIGHT), (TOP_RIGHT, TOP_LEFT), (TOP_RIGHT, BOTTOM_RIGHT)]:
        assert abs(report.correlation[a, b]) < 0.25, (a, b, report.correlation)
    assert report.top_changes(1)[0][:2] == ("top_left", "bottom_right")


def test_report_files_round_trip(report, tmp_path):
    paths = write_report(report, tmp_path / "bias")
    rows = list(csv.reader(open(paths["correlation"])))
    assert rows[0] == ["edited", "top_left", "bottom_right", "top_right"]
    values = torch.tensor([[float(v) for v in row[1:]] for row in rows[1:]], dtype=torch.float64)
    assert torch.allclose(values, report.correlation, atol=1e-5)
    assert [float(row[i + 1]) for i, row in enumerate(rows[1:])] == [1.0, 1.0, 1.0]
    assert len(list(csv.reader(open(paths["top_changes"])))) == 1 + 3 * 2
    image = Image.open(paths["heatmap"])
    assert image.format == "PNG" and image.mode == "RGB"


def test_heatmap_colours_follow_the_values():
    image = heatmap(torch.tensor([[1.0, -1.0, float("nan")]]), ["edited"], ["a", "b", "c"], cell=40)
    width = image.shape[2]
    left = width - 4 - 3 * 40
    row = image[:, -4 - 20, :]  # through the middle of the single row
    red, blue, grey = (row[:, left + 40 * k + 3].tolist() for k in range(3))
    assert red == [214, 39, 40] and blue == [31, 119, 180] and grey == [190, 190, 190]


def test_bias_command_writes_the_report(tmp_path, capsys):
    torch.manual_seed(0)
    model = ConditionalGAN(image_shape=(1, 16, 16), num_classes=10, latent_dim=8, feature_maps=4)
    ckpt = save_model_checkpoint(model, tmp_path / "cgan.ckpt")
    classifier = digit_classifier_file(tmp_path / "lenet.pt", data_size=16)
    report = invoke(["bias", "--ckpt", str(ckpt), "--classifier", str(classifier), "--targets", "1,7", "--steps", "2",
                        "--num-samples", "4", "--out", str(tmp_path / "bias")])
    assert report.targets == [1, 7] and report.correlation.shape == (2, 10)
    assert {p.name for p in (tmp_path / "bias").iterdir()} == {"correlation.csv", "change.csv", "top_changes.csv", "correlation.png"}
    assert "correlation matrix:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        invoke(["bias", "--ckpt", str(ckpt), "--classifier", str(classifier), "--targets", "1,eleven", "--out", str(tmp_path)])
    assert "unknown class 'eleven'" in capsys.readouterr().err
