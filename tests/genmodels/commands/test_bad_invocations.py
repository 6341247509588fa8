"""Every command refuses bad invocations the same way: exit status 2, exactly one stderr line
``genmodels: error: ...`` (no traceback), nothing on stdout and nothing written.

The table holds at least three bad invocations per registered command: a missing, wrong-type or
out-of-range argument, a checkpoint of the wrong model (or a missing/unreadable one), an output
that cannot be written or is an input, and requests over the memory limit. Placeholders:
{dcgan}/{cgan} tiny checkpoints, {text} a file that is not a checkpoint, {images} a folder with one
16x16 PNG, {missing} a path that does not exist, {unwritable} a path under a regular file, {root}
the folder of those inputs, {work} an empty folder that must stay empty, {exp} experiments/.
Most run in-process through `genmodels.commands.main`; `test_console_script_*` go through the real
``genmodels`` executable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from genmodels.commands import main
from genmodels.commands import COMMANDS, command_names
from tests.cli.common import EXPERIMENTS, ROOT

DIGITS = str(EXPERIMENTS / "dcgan/digits.yaml")
SWEEP = str(EXPERIMENTS / "sweeps/wgan_gp_digits_grid.yaml")
HUGE = "1000000000"

CASES: list[tuple[str, list[str], str]] = [
    # fit / validate / test (LightningCLI)
    ("fit", ["--config", "{root}/nowhere.yaml"], "File does not exist"),
    ("fit", ["--config", DIGITS, "--model.init_args.lerning_rate", "0.1", "--trainer.default_root_dir", "{work}/run"], "lerning_rate"),
    ("fit", ["--config", DIGITS, "--max_iterations", "many", "--trainer.default_root_dir", "{work}/run"], "max_iterations"),
    ("validate", ["--config", "{root}/nowhere.yaml"], "File does not exist"),
    ("validate", ["--config", DIGITS, "--ckpt_path", "{missing}", "--trainer.default_root_dir", "{work}/run"], "checkpoint not found"),
    ("validate", ["--no-such-option"], "unrecognized arguments"),
    ("test", ["--config", "{root}/nowhere.yaml"], "File does not exist"),
    ("test", ["--config", DIGITS, "--ckpt_path", "{text}", "--trainer.default_root_dir", "{work}/run"], "not a PyTorch checkpoint"),
    ("test", ["--no-such-option"], "unrecognized arguments"),
    # sample
    ("sample", ["--ckpt", "{dcgan}"], "required: --out"),
    ("sample", ["--ckpt", "{dcgan}", "--num-samples", "many", "--out", "{work}/g.png"], "invalid positive integer value"),
    ("sample", ["--ckpt", "{dcgan}", "--num-samples", HUGE, "--out", "{work}/g.png"], "--max-memory-gb"),
    ("sample", ["--ckpt", "{dcgan}", "--out", "{unwritable}/g.png"], "cannot be written"),
    ("sample", ["--ckpt", "{text}", "--out", "{work}/g.png"], "not a PyTorch checkpoint"),
    ("sample", ["--ckpt", "{missing}", "--out", "{work}/g.png"], "checkpoint not found"),
    ("sample", ["--ckpt", "{dcgan}", "--out", "{work}/g.jpg"], "must be a .png file or a directory"),
    # interpolate
    ("interpolate", ["--ckpt", "{dcgan}", "--steps", "1", "--out", "{work}/i.gif"], "--steps must be >= 2"),
    ("interpolate", ["--ckpt", "{dcgan}", "--out", "{work}/i.mp4"], "must end in .gif or .png"),
    ("interpolate", ["--ckpt", "{dcgan}", "--seeds", "0", "--out", "{work}/i.gif"], "expected 2 arguments"),
    ("interpolate", ["--ckpt", "{dcgan}", "--steps", HUGE, "--out", "{work}/i.gif"], "--max-memory-gb"),
    ("interpolate", ["--ckpt", "{dcgan}", "--out", "{unwritable}/i.gif"], "cannot be written"),
    # export
    ("export", ["--ckpt", "{dcgan}", "--out", "{dcgan}"], "also an input"),
    ("export", ["--ckpt", "{dcgan}", "--out", "{text}"], "already exists; pass --overwrite"),
    ("export", ["--ckpt", "{dcgan}", "--format", "onnx", "--out", "{work}/g.pt"], "invalid choice: 'onnx'"),
    ("export", ["--ckpt", "{dcgan}", "--out", "{unwritable}/g.pt"], "cannot be written"),
    # import-weights
    ("import-weights", ["stylegan2-ada", "{dcgan}", "--out", "{work}/w.pt"], "torch.save (zip) file, not an NVlabs network pickle"),
    ("import-weights", ["stylegan2-ada", "{text}", "--out", "{work}/w.pt"], "not a readable network pickle"),
    ("import-weights", ["stylegan2-ada", "{missing}", "--out", "{work}/w.pt"], "is not a file"),
    ("import-weights", ["stylegan3", "{text}", "--out", "{work}/w.pt"], "invalid choice: 'stylegan3'"),
    ("import-weights", ["stylegan2-ada", "{dcgan}", "--out", "{dcgan}"], "also an input"),
    ("import-weights", ["stylegan2-ada", "{text}", "--out", "{unwritable}/w.pt"], "cannot be written"),
    # evaluate
    ("evaluate", ["--ckpt", "{dcgan}", "--num-samples", "1"], "--num-samples must be >= 2"),
    ("evaluate", ["--ckpt", "{dcgan}", "--metrics", "kid", "--num-samples", HUGE], "--max-memory-gb"),
    ("evaluate", ["--ckpt", "{dcgan}", "--out", "{unwritable}/r.json"], "cannot be written"),
    ("evaluate", ["--ckpt", "{missing}", "--metrics", "is", "--extractor", "classifier:{text}"], "checkpoint not found"),
    ("evaluate", ["--ckpt", "{dcgan}", "--out", "{work}/r.csv"], "must end in .json"),
    # train-classifier
    ("train-classifier", ["--epochs", "1"], "required: --data"),
    ("train-classifier", ["--data", DIGITS, "--epochs", "0"], "must be >= 1"),
    ("train-classifier", ["--data", "{root}/nowhere.yaml"], "config file not found"),
    ("train-classifier", ["--data", DIGITS, "--out", "{unwritable}/lenet.pt"], "cannot be written"),
    # prefetch-weights
    ("prefetch-weights", ["--out", "{images}/a.png"], "is a file"),
    ("prefetch-weights", ["--sha256"], "expected one argument"),
    ("prefetch-weights", ["--out", "{unwritable}/weights"], "cannot be written"),
    # style-mix
    ("style-mix", ["--ckpt", "{dcgan}", "--out", "{work}/m.png"], "DCGAN"),
    ("style-mix", ["--ckpt", "{dcgan}", "--styles", "all", "--out", "{work}/m.png"], "invalid choice: 'all'"),
    ("style-mix", ["--ckpt", "{dcgan}", "--out", "{work}/m.jpg"], "must end in .png"),
    ("style-mix", ["--ckpt", "{dcgan}", "--rows", "-1", "--out", "{work}/m.png"], "seed must be in"),
    # truncation-grid
    ("truncation-grid", ["--ckpt", "{dcgan}", "--out", "{work}/t.png"], "DCGAN"),
    ("truncation-grid", ["--ckpt", "{dcgan}", "--psi", "half", "--out", "{work}/t.png"], "invalid float value"),
    ("truncation-grid", ["--ckpt", "{dcgan}", "--out", "{unwritable}/t.png"], "cannot be written"),
    # ppl
    ("ppl", ["--ckpt", "{dcgan}", "--num-samples", "0"], "must be >= 1"),
    ("ppl", ["--ckpt", "{dcgan}", "--space", "q"], "invalid choice: 'q'"),
    ("ppl", ["--ckpt", "{dcgan}", "--noise", "random"], "invalid choice: 'random'"),
    ("ppl", ["--ckpt", "{dcgan}", "--out", "{unwritable}/p.json"], "cannot be written"),
    ("ppl", ["--ckpt", "{dcgan}", "--batch-size", HUGE], "--max-memory-gb"),
    # translate
    ("translate", ["--ckpt", "{dcgan}", "--input", "{images}", "--out", "{work}/t"], "needs an image-to-image model"),
    ("translate", ["--ckpt", "{dcgan}", "--input", "{images}", "--out", "{images}"], "inside the input folder"),
    ("translate", ["--ckpt", "{dcgan}", "--input", "{images}", "--out", "{work}/t", "--resize", "100000"], "--max-memory-gb"),
    ("translate", ["--ckpt", "{dcgan}", "--input", "{root}/nowhere", "--out", "{work}/t"], "is not a folder"),
    # anomaly
    ("anomaly", ["--ckpt", "{dcgan}", "--normal", "0-4", "--out", "{work}/r.json"], "DCGAN"),
    ("anomaly", ["--ckpt", "{dcgan}", "--normal", "zero", "--out", "{work}/r.json"], "--normal must list class labels"),
    ("anomaly", ["--ckpt", "{dcgan}", "--normal", "0-4", "--out", "{work}/r.txt"], "must end in .json"),
    ("anomaly", ["--ckpt", "{dcgan}", "--out", "{work}/r.json"], "required: --normal"),
    # control
    ("control", ["--ckpt", "{cgan}", "--classifier", "{text}", "--out", "{work}/c.png"], "required: --target"),
    ("control", ["--ckpt", "{cgan}", "--classifier", "{text}", "--target", "3", "--steps", "0", "--out", "{work}/c.png"], "must be >= 1"),
    ("control", ["--ckpt", "{cgan}", "--classifier", "{text}", "--target", "3", "--out", "{unwritable}/c.png"], "cannot be written"),
    ("control", ["--ckpt", "{cgan}", "--classifier", "{text}", "--target", "3", "--penalty", "-1", "--out", "{work}/c.png"], "must be >= 0"),
    ("control", ["--ckpt", "{cgan}", "--classifier", "{text}", "--target", "3", "--num-samples", HUGE, "--out", "{work}/c.png"], "--max-memory-gb"),
    # bias
    ("bias", ["--ckpt", "{cgan}", "--classifier", "{text}", "--top", "0", "--out", "{work}/b"], "must be >= 1"),
    ("bias", ["--ckpt", "{cgan}", "--classifier", "{text}", "--out", "{images}/a.png"], "is a file"),
    ("bias", ["--ckpt", "{missing}", "--classifier", "{text}", "--out", "{work}/b"], "checkpoint not found"),
    # class-accuracy
    ("class-accuracy", ["--ckpt", "{dcgan}", "--classifier", "{text}"], "not class-conditional"),
    ("class-accuracy", ["--ckpt", "{cgan}", "--classifier", "{text}", "--samples-per-class", "0"], "must be >= 1"),
    ("class-accuracy", ["--ckpt", "{cgan}"], "required: --classifier"),
    ("class-accuracy", ["--ckpt", "{cgan}", "--classifier", "{text}", "--samples-per-class", "1000000000000"], "--max-memory-gb"),
    # train-attributes
    ("train-attributes", ["--epochs", "1"], "required: --data"),
    ("train-attributes", ["--data", DIGITS, "--epochs", "-3"], "must be >= 1"),
    ("train-attributes", ["--data", "{root}/nowhere.yaml"], "config file not found"),
    # augment
    ("augment", ["--ckpt", "{cgan}", "--data", "digits", "--real-fraction", "2"], "must be in (0, 1]"),
    ("augment", ["--ckpt", "{cgan}", "--data", "digits", "--out", "{unwritable}/a.json"], "cannot be written"),
    ("augment", ["--ckpt", "{cgan}"], "required: --data"),
    ("augment", ["--gen", "{cgan}", "--data", "digits", "--num-generated", "1000000000000"], "--max-memory-gb"),
    # train-damsm
    ("train-damsm", ["--dataset", "coco", "--out", "{work}/d.ckpt"], "invalid choice: 'coco'"),
    ("train-damsm", ["--dataset", "shapes", "--out", "{unwritable}/d.ckpt"], "cannot be written"),
    ("train-damsm", ["--dataset", "shapes", "--image-size", "100000", "--out", "{work}/d.ckpt"], "--image-size 100000 is over"),
    ("train-damsm", ["--dataset", "cub", "--data-dir", "{root}/nowhere", "--out", "{work}/d.ckpt"], "is not a folder"),
    ("train-damsm", ["--dataset", "cub", "--data-dir", "{root}", "--out", "{work}/d.ckpt"], "files not found (looked in"),
    # r-precision
    ("r-precision", ["--ckpt", "{dcgan}", "--damsm", "{text}", "--dataset", "shapes"], "not a text-to-image model"),
    ("r-precision", ["--ckpt", "{dcgan}", "--dataset", "shapes"], "required: --damsm"),
    ("r-precision", ["--ckpt", "{dcgan}", "--damsm", "{text}", "--dataset", "shapes", "--num-samples", "0"], "must be >= 1"),
    # serve
    ("serve", ["--ckpt", "{dcgan}", "--port", "70000"], "must be in [1, 65535]"),
    ("serve", ["--ckpt", "{missing}"], "checkpoint not found"),
    ("serve", ["--ckpt", "{dcgan}", "--threads", "0"], "must be >= 1"),
    ("serve", ["--ckpt", "{dcgan}", "--log-level", "loud"], "invalid choice: 'loud'"),
    # check-data
    ("check-data", [], "required: --config"),
    ("check-data", ["--config", "{root}/nowhere.yaml"], "nowhere.yaml"),
    ("check-data", ["--config", str(EXPERIMENTS / "dcgan/mnist.yaml"), "--data.init_args.data_dir", "{missing}"], "MNIST"),
    # compare
    ("compare", [], "required: RUN"),
    ("compare", ["{root}/no-run"], "is not a run directory"),
    ("compare", ["{root}", "--out", "{unwritable}/c.png"], "cannot be written"),
    ("compare", ["{root}", "--out", "{text}"], "must end in .png"),
    # sync
    ("sync", [], "required: RUN_DIR"),
    ("sync", ["{root}/no-run"], "is not a run directory"),
    ("sync", ["{text}"], "is not a run directory"),
    ("sync", ["{root}", "--dry-run"], "holds no offline runs"),
    # sweep
    ("sweep", ["{root}/nowhere.yaml"], "sweep file not found"),
    ("sweep", [SWEEP, "--count", "0"], "must be >= 1"),
    ("sweep", [SWEEP, "--slurm-array", "{unwritable}/array.sh"], "cannot be written"),
    ("sweep", [SWEEP, "--count", "100000"], "over 10000 runs"),
]


def _argv(command: str, template: list[str], files, work: Path) -> list[str]:
    names = dict(vars(files), work=work, exp=EXPERIMENTS)
    return [command, *(part.format(**names) for part in template)]


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def test_every_command_has_at_least_three_bad_invocations():
    counts = Counter(command for command, _, _ in CASES)
    assert set(counts) == set(command_names()) and len(COMMANDS) >= 24
    assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize("command, template, message", CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_bad_invocation_is_one_line_exit_2_and_writes_nothing(command, template, message, files, tmp_path, capsys, monkeypatch, one_thread):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # default outputs (control.png, bias/, compare.png) would land here
    inputs = _listing(files.root)
    with pytest.raises(SystemExit) as exit_info:
        main(_argv(command, template, files, work))
    captured = capsys.readouterr()
    assert exit_info.value.code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("genmodels: error: ") and "Traceback" not in captured.err
    assert message in lines[0], lines[0]
    assert _listing(work) == {}
    assert _listing(files.root) == inputs


def _console(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), WANDB_MODE="offline", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    executable = Path(sys.executable).with_name("genmodels")
    return subprocess.run([str(executable), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning: ~20 s each on a loaded 2-core CPU
@pytest.mark.parametrize("args, message", [
    (["predict", "--config", DIGITS], "invalid choice: 'predict'"),
    (["sample", "--ckpt", "{dcgan}", "--num-samples", HUGE, "--out", "g.png"], "--max-memory-gb"),
    (["class-accuracy", "--ckpt", "{dcgan}", "--classifier", "{text}"], "not class-conditional"),
])
def test_console_script_reports_one_line_and_exit_2(args, message, files, tmp_path):
    result = _console(*(a.format(**vars(files)) for a in args), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("genmodels: error: ") and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_only_user_errors_are_one_line_a_library_bug_keeps_its_traceback(monkeypatch, capsys):
    from genmodels.commands import USER_ERRORS, compare
    from genmodels.errors import InvalidValue, UserError

    assert USER_ERRORS == (UserError,)

    def rejects_input(args):
        raise InvalidValue("--runs needs two runs")

    monkeypatch.setattr(compare, "run", rejects_input)
    with pytest.raises(SystemExit) as stop:
        main(["compare", "a", "b"])
    assert stop.value.code == 2 and capsys.readouterr().err == "genmodels: error: --runs needs two runs\n"

    def has_a_bug(args):
        raise ValueError("shapes (3,) and (4,) do not broadcast")  # not a UserError: a bug in the library

    monkeypatch.setattr(compare, "run", has_a_bug)
    with pytest.raises(ValueError, match="do not broadcast"):
        main(["compare", "a", "b"])
    assert capsys.readouterr().err == ""
