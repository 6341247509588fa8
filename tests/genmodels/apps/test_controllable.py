"""Controllable generation: the target score rises step by step; the penalty holds the others."""

import csv
import re

import pytest
import torch
from PIL import Image

from genmodels import DCGAN, ConditionalGAN
from genmodels.apps.controllable import edit_latents
from genmodels.commands import invoke
from tests.genmodels.apps.control_helpers import digit_classifier_file, save_model_checkpoint, single_thread
from tests.genmodels.apps.quadrants import trained

TOP_LEFT, BOTTOM_RIGHT, TOP_RIGHT = 0, 1, 2


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture
def scorer():
    return trained().scorer


@pytest.fixture
def linear_generator():
    return trained().generator


@pytest.fixture
def latents():
    return torch.randn(64, 8, generator=torch.Generator().manual_seed(0))


def test_raising_a_target_is_monotonic(linear_generator, scorer, latents):
    edit = edit_latents(linear_generator, scorer, latents, TOP_LEFT, steps=5, step_size=0.5)
    mean = edit.target_scores.mean(dim=1)
    assert (mean.diff() > 0).all(), mean
    assert scorer.probabilities(edit.scores)[-1, :, TOP_LEFT].mean() > scorer.probabilities(edit.scores)[0, :, TOP_LEFT].mean() + 0.2
    assert edit.latents.shape == (6, 64, 8) and edit.images.shape == (6, 64, 1, 16, 16)
    # The first step moves every z by exactly step_size; later ones follow the gradient's size.
    lengths = (edit.latents[1:] - edit.latents[:-1]).norm(dim=2)
    assert torch.allclose(lengths[0], torch.full((64,), 0.5), atol=1e-5) and (lengths > 0).all()


def test_lowering_a_target_is_monotonic(linear_generator, scorer, latents):
    edit = edit_latents(linear_generator, scorer, latents, TOP_RIGHT, steps=4, step_size=0.5, lower=True)
    assert (edit.target_scores.mean(dim=1).diff() < 0).all()


def test_penalty_keeps_the_other_attributes(linear_generator, scorer, latents):
    # bottom_right copies top_left in 90% of the generator's data, so the generator ties them
    # together: a plain edit of top_left raises bottom_right too; the penalty holds it (and top_right).
    free = edit_latents(linear_generator, scorer, latents, TOP_LEFT, steps=5, step_size=0.5)
    held = edit_latents(linear_generator, scorer, latents, TOP_LEFT, steps=5, step_size=0.5, penalty=1.0)
    free_change, held_change = (free.scores[-1] - free.scores[0]).mean(0), (held.scores[-1] - held.scores[0]).mean(0)
    assert free_change[BOTTOM_RIGHT] > 0.5 * free_change[TOP_LEFT]
    assert held.others_change()[-1] < 0.2 * free.others_change()[-1]
    assert held_change[TOP_LEFT] > 0.3 * free_change[TOP_LEFT]
    assert (held.target_scores.mean(dim=1).diff() > 0).all()  # the target still rises at every step


def test_bad_edit_arguments_are_refused(linear_generator, scorer, latents):
    with pytest.raises(ValueError, match="need steps >= 1"):
        edit_latents(linear_generator, scorer, latents, 0, steps=0)


@pytest.fixture
def cgan_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ConditionalGAN(image_shape=(1, 16, 16), num_classes=10, latent_dim=8, feature_maps=4)
    return save_model_checkpoint(model, tmp_path / "cgan.ckpt")


def test_control_command_writes_one_column_per_step(cgan_checkpoint, tmp_path, capsys):
    classifier = digit_classifier_file(tmp_path / "lenet.pt", data_size=16)
    out = tmp_path / "out/grid.png"
    edit = invoke(["control", "--ckpt", str(cgan_checkpoint), "--classifier", str(classifier), "--target", "3",
                         "--steps", "4", "--num-samples", "3", "--condition", "7", "--out", str(out)])
    assert Image.open(out).size == (5 * 18 + 2, 3 * 18 + 2)  # 5 columns (start + 4 steps), 3 rows
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]
    assert [float(r["3"]) for r in rows] == pytest.approx(edit.target_scores.mean(1).tolist(), rel=1e-5)
    assert "target '3': mean probability" in capsys.readouterr().out


def test_control_works_on_unconditional_latent_gans(tmp_path):
    model = DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4)
    ckpt = save_model_checkpoint(model, tmp_path / "dcgan.ckpt")
    classifier = digit_classifier_file(tmp_path / "lenet.pt", data_size=16)
    edit = invoke(["control", "--ckpt", str(ckpt), "--classifier", str(classifier), "--target", "0", "--steps", "2",
                         "--num-samples", "2", "--out", str(tmp_path / "grid.png")])
    assert edit.scores.shape == (3, 2, 10)


@pytest.mark.parametrize("extra, message", [
    (["--target", "10"], "class 10 is out of range: the classifier has classes 0..9"),
    (["--target", "smiling"], "unknown class 'smiling'"),
    (["--target", "1", "--condition", "12"], "class 12 is out of range: this model has classes 0..9"),
    (["--target", "1", "--condition", "seven"], "--condition must be a class index 0..9"),
    (["--target", "1", "--wrong-size"], r"trained on \(1, 28, 28\) images but the generator of .* makes \(1, 16, 16\)"),
])
def test_control_command_errors_are_clear(cgan_checkpoint, tmp_path, capsys, extra, message):
    size = 28 if "--wrong-size" in extra else 16
    classifier = digit_classifier_file(tmp_path / "lenet.pt", data_size=size)
    args = [a for a in extra if a != "--wrong-size"]
    with pytest.raises(SystemExit) as exit_info:
        invoke(["control", "--ckpt", str(cgan_checkpoint), "--classifier", str(classifier), "--steps", "1", *args,
                      "--out", str(tmp_path / "grid.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels: error: ")
    assert re.search(message, err), err
