"""Probe: feed genmodels the kinds of bad input of issue 21 and classify what each one gets.

    PYTHONPATH=. python scripts/probe_bad_inputs.py [--only SUBSTRING] [--keep DIR] [--no-api] [--no-signals]

Cases (131, about 5 minutes on 2 cores): checkpoints given to ``genmodels fit --ckpt_path`` (missing,
empty, truncated, not PyTorch, untrusted pickle, another model, crafted class paths, ...), ``genmodels fit``
arguments and configs, resume cases (``--ckpt_path last`` with ``--checkpoint.dirpath``, fresh
launches over checkpoints, changed options, stale temp files), signals (Ctrl-C, SIGTERM, SIGUSR1,
SIGHUP during a step; SIGTERM and SIGUSR1 while the data sets up), divergence
(learning rate 1e30), and requests to the HTTP API (``genmodels serve --api``, a real server
on 127.0.0.1).

Every case lands in one class:

- ``refused-cleanly``: handled as promised: ``genmodels: error: <one line>`` with exit status 2,
  an HTTP 4xx with a short JSON ``detail``, or (for the cases where the promise is an outcome,
  not a refusal: an option changed on resume, Ctrl-C, a requeue) that outcome, checked on disk;
- ``traceback``: a Python traceback, another exit status, an HTTP 5xx or a dead server;
- ``silent``: accepted without a word although the input was bad or was ignored (this includes
  running code named by a checkpoint);
- ``data-loss``: a checkpoint overwritten, lost, restarted from iteration 0, or written with
  non-finite weights;
- ``hang``: a case that had not ended after its time limit (a FIFO output, an alias bomb, a huge grid);
- ``security``: a module named by a file (config, run config.yaml, sweep, checkpoint) was imported.

Round two (issue 27) adds the ``round2-*`` groups: the import holes, run-directory locking, moved
runs and forks, changed precision / dataset / batch size on resume (also from a copied checkpoint),
checkpoint verification (hash, non-finite, size, keys, a short RNG state), file outputs (a full disk
during fit, simulated as ENOSPC at the checkpoint's fsync), and number bounds.

The CLI cases run in this process (``genmodels.commands.main``), which keeps the probe to minutes; the
signal cases and the API server run as child processes, as users run them. Prints one line per
case and the counts per class; exit status 0 whatever the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import torch  # noqa: E402

CLASSES = ("refused-cleanly", "traceback", "silent", "data-loss", "hang", "security")
EXPERIMENTS = ROOT / "experiments"
TINY = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "2", "--sample_grid.every_n_iterations", "0",
        "--model.init_args.feature_maps", "4", "--model.init_args.latent_dim", "8",
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "64",
        "--checkpoint.every_n_iterations", "2"]


@dataclass
class Result:
    rc: Optional[int]
    out: str
    error: Optional[BaseException] = None


@dataclass
class Case:
    group: str
    name: str
    run: Callable[["Probe"], tuple[str, str]]  # -> (class, detail)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"


def iteration_of(path: Path) -> Optional[int]:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["genmodels"]["iteration"])
    except Exception:
        return None


def finite(path: Path) -> bool:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def one_error_line(out: str) -> Optional[str]:
    lines = [line for line in out.splitlines() if line.startswith("genmodels: error: ")]
    return lines[0] if len(lines) == 1 else None


def classify_refusal(result: Result) -> tuple[str, str]:
    """A case whose promise is: exit 2 with one line."""
    if result.error is not None or "Traceback (most recent call last)" in result.out:
        name = type(result.error).__name__ if result.error is not None else "traceback"
        return "traceback", f"{name}: {str(result.error or '').splitlines()[0][:150] if result.error else ''}"
    line = one_error_line(result.out)
    if result.rc == 2 and line:
        return "refused-cleanly", line[:200]
    if result.rc in (0, None):
        return "silent", "accepted (exit 0)"
    return "traceback", f"exit {result.rc}: {(line or result.out.strip().splitlines()[-1:] or [''])[0][:150]}"


class Probe:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.counter = 0
        self._good: Optional[Path] = None

    # -- running the CLI ------------------------------------------------------------------------
    def fit(self, *args: str, config: str = "dcgan/digits.yaml", tiny: bool = True) -> Result:
        from genmodels.commands import main

        argv = ["fit", "--config", str(EXPERIMENTS / config), *(TINY if tiny else []), *args]
        buffer = io.StringIO()
        rc: Optional[int] = 0
        error = None
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                main(argv)
            except SystemExit as exit_:
                rc = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except BaseException as err:  # noqa: BLE001 - what a user would see as a traceback
                error, rc = err, None
                traceback.print_exc()
        return Result(rc, buffer.getvalue(), error)

    def new_dir(self, name: str) -> Path:
        self.counter += 1
        path = self.work / f"{self.counter:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def good_run(self, name: str = "good", iterations: int = 2, *extra: str) -> Path:
        """A fresh tiny DCGAN run with a finite last.ckpt at ``iterations``."""
        run = self.new_dir(name) / "run"
        result = self.fit("--trainer.default_root_dir", str(run), "--max_iterations", str(iterations), *extra)
        if result.rc != 0:
            raise RuntimeError(f"the baseline run failed: {result.out[-2000:]}")
        return run

    def good_checkpoint(self) -> Path:
        if self._good is None:
            self._good = self.good_run("baseline") / "checkpoints" / "last.ckpt"
        return self._good


# ---------------------------------------------------------------------------------------------
# Checkpoint cases: `genmodels fit --ckpt_path FILE`


def ckpt_case(name: str, make: Callable[[Probe, Path], Path], config: str = "dcgan/digits.yaml",
              marker_text: Optional[str] = None) -> Case:
    def run(probe: Probe) -> tuple[str, str]:
        folder = probe.new_dir(name)
        path = make(probe, folder)
        before = digest(path) if path.is_file() else None
        result = probe.fit("--trainer.default_root_dir", str(folder / "run"), "--max_iterations", "2",
                           "--ckpt_path", str(path), config=config)
        marker = folder / "imported.txt"
        if marker.exists() or (marker_text and marker_text in result.out):
            return "silent", "code named by the checkpoint ran"
        if before is not None and digest(path) != before:
            return "data-loss", "the given checkpoint was modified"
        return classify_refusal(result)

    return Case("checkpoint", name, run)


def _save(obj: Any, path: Path, **kwargs: Any) -> Path:
    torch.save(obj, path, **kwargs)
    return path


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def _crafted(class_path: str, module_body: Optional[str] = None):
    def make(probe: Probe, folder: Path) -> Path:
        if module_body is not None:
            module = f"probe_payload_{probe.counter}"
            (folder / f"{module}.py").write_text(module_body.replace("MARKER", str(folder / "imported.txt")))
            sys.path.insert(0, str(folder))
            path_ = class_path.replace("MODULE", module)
        else:
            path_ = class_path
        checkpoint = torch.load(probe.good_checkpoint(), weights_only=True)
        checkpoint["hyper_parameters"]["_class_path"] = path_
        return _save(checkpoint, folder / "crafted.ckpt")

    return make


def _edited(edit: Callable[[dict], Any]):
    def make(probe: Probe, folder: Path) -> Path:
        checkpoint = torch.load(probe.good_checkpoint(), weights_only=True)
        checkpoint = edit(checkpoint) or checkpoint
        return _save(checkpoint, folder / "edited.ckpt")

    return make


def _truncated(probe: Probe, folder: Path) -> Path:
    data = probe.good_checkpoint().read_bytes()
    (folder / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    return folder / "truncated.ckpt"


def _bytes(data: bytes, name: str = "bad.ckpt"):
    def make(probe: Probe, folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return make


def _gan_checkpoint(probe: Probe, folder: Path) -> Path:
    from genmodels import GAN

    model = GAN(image_shape=(1, 16, 16), latent_dim=8, generator_hidden=(16,), discriminator_hidden=(16,))
    return _save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "genmodels": {"model_class": "genmodels.gans.gan.GAN", "iteration": 3, "torch_rng": [torch.get_rng_state()]}},
                 folder / "gan.ckpt")


CHECKPOINT_CASES = [
    ckpt_case("missing file", lambda p, f: f / "nowhere.ckpt"),
    ckpt_case("a directory", lambda p, f: f),
    ckpt_case("empty file", _bytes(b"")),
    ckpt_case("truncated checkpoint", _truncated),
    ckpt_case("zip header only", _bytes(b"PK\x03\x04 truncated")),
    ckpt_case("text file", _bytes(b"hello, not a checkpoint\n")),
    ckpt_case("YAML file", _bytes((EXPERIMENTS / "dcgan/digits.yaml").read_bytes(), "config.ckpt")),
    ckpt_case("untrusted pickle (os.system)", lambda p, f: _save({"state_dict": {}, "x": _Evil()}, f / "evil.ckpt")),
    ckpt_case("untrusted pickle, protocol 5", lambda p, f: _save({"x": _Evil()}, f / "evil5.ckpt", pickle_protocol=5)),
    ckpt_case("raw pickle file", _bytes(pickle.dumps({"state_dict": {}}))),
    ckpt_case("a tensor, not a dict", lambda p, f: _save(torch.ones(3), f / "tensor.ckpt")),
    ckpt_case("a plain state_dict", lambda p, f: _save({"weight": torch.ones(3)}, f / "state.ckpt")),
    ckpt_case("another model class (GAN into DCGAN)", _gan_checkpoint),
    ckpt_case("_class_path naming a module that runs code", _crafted(
        "MODULE.Model", "from pathlib import Path\nPath('MARKER').write_text('ran')\nclass Model: pass\n")),
    ckpt_case("_class_path this.Zen", _crafted("this.Zen"), marker_text="Beautiful is better than ugly"),
    ckpt_case("_class_path naming another genmodels model", _crafted("genmodels.VAE")),
    ckpt_case("_class_path not a string", _crafted(["genmodels.DCGAN"])),  # type: ignore[arg-type]
    ckpt_case("genmodels.model_class outside genmodels", _edited(
        lambda c: c["genmodels"].update(model_class="os.system"))),
    ckpt_case("state_dict with wrong shapes", _edited(
        lambda c: c["state_dict"].update({k: torch.zeros(1) for k in list(c["state_dict"])[:1]}))),
    ckpt_case("no state_dict", _edited(lambda c: c.pop("state_dict"))),
    ckpt_case("no optimizer states", _edited(lambda c: c.pop("optimizer_states"))),
    ckpt_case("iteration is a string", _edited(lambda c: c["genmodels"].update(iteration="many"))),
    ckpt_case("non-finite weights", _edited(
        lambda c: [v.fill_(float("nan")) for v in c["state_dict"].values() if v.is_floating_point()] and None)),
]


# ---------------------------------------------------------------------------------------------
# `genmodels fit` arguments and configs


def arg_case(name: str, *args: str, config: str = "dcgan/digits.yaml", tiny: bool = True,
             config_text: Optional[str] = None) -> Case:
    def run(probe: Probe) -> tuple[str, str]:
        folder = probe.new_dir(name)
        extra = list(args)
        cfg = config
        if config_text is not None:
            (folder / "config.yaml").write_text(config_text)
            cfg = str(folder / "config.yaml")
        result = probe.fit("--trainer.default_root_dir", str(folder / "run"), *extra, config=cfg, tiny=tiny)
        return classify_refusal(result)

    return Case("fit arguments", name, run)


DIGITS_YAML = (EXPERIMENTS / "dcgan/digits.yaml").read_text()
ARG_CASES = [
    arg_case("unknown model option", "--model.init_args.lerning_rate", "0.1", "--max_iterations", "2"),
    arg_case("unknown top-level key in YAML", config_text=DIGITS_YAML + "\noptimiser: adam\n"),
    arg_case("not an int", "--model.init_args.feature_maps", "many", "--max_iterations", "2"),
    arg_case("image size the model cannot make", "--data.init_args.image_size", "48", "--max_iterations", "2"),
    arg_case("max_iterations 0", "--max_iterations", "0"),
    arg_case("max_iterations negative", "--max_iterations", "-5"),
    arg_case("checkpoint.every_n_iterations negative", "--checkpoint.every_n_iterations", "-1", "--max_iterations", "2"),
    arg_case("checkpoint.keep_last_k -2", "--checkpoint.keep_last_k", "-2", "--max_iterations", "2"),
    arg_case("config file missing", config="no/such/config.yaml", tiny=False),
    arg_case("config file is binary", config_text="\x00\x01\x02 not yaml: [", tiny=False),
    arg_case("config file empty", config_text="", tiny=False),
    arg_case("model class that does not exist", "--model.class_path", "genmodels.Nope", "--max_iterations", "2"),
    arg_case("model class outside genmodels", "--model.class_path", "torch.nn.Linear", "--max_iterations", "2"),
    arg_case("datamodule class that does not exist", "--data.class_path", "datamodules.Nope", "--max_iterations", "2"),
    arg_case("MNIST without its files", "--data.init_args.data_dir", "/nonexistent/mnist", "--max_iterations", "2",
             config="dcgan/mnist.yaml"),
    arg_case("Pix2Pix on the digits datamodule", "--max_iterations", "2", tiny=False, config_text=(
        "model:\n  class_path: genmodels.Pix2Pix\n  init_args: {ngf: 4, ndf: 4}\n"
        "data:\n  class_path: datamodules.DigitsDataModule\n  init_args: {image_size: 32, batch_size: 16}\n"
        "trainer: {accelerator: cpu, enable_progress_bar: false}\n")),
    arg_case("negative learning rate", "--model.init_args.lr_g", "-1", "--max_iterations", "2"),
    arg_case("Adam beta >= 1", "--model.init_args.betas", "[1.5, 0.999]", "--max_iterations", "2"),
    arg_case("precision that does not exist", "--trainer.precision", "17", "--max_iterations", "2"),
    arg_case("accelerator without the hardware", "--trainer.accelerator", "mps", "--max_iterations", "2"),
    arg_case("seed that is not a number", "--seed_everything", "abc", "--max_iterations", "2"),
    arg_case("label_smoothing 2", "--model.init_args.label_smoothing", "2.0", "--max_iterations", "2"),
    arg_case("ema_decay 2", "--model.init_args.ema_decay", "2.0", "--max_iterations", "2"),
    arg_case("n_critic 0", "--model.init_args.n_critic", "0", "--max_iterations", "2"),
    arg_case("learning rate NaN", "--model.init_args.lr_g", "nan", "--max_iterations", "2"),
    arg_case("run directory is a file", "--trainer.default_root_dir", str(ROOT / "README.md"), "--max_iterations", "2"),
    arg_case("ckpt_path best on a fresh run", "--ckpt_path", "best", "--max_iterations", "2"),
]


# ---------------------------------------------------------------------------------------------
# Resume and divergence


def _refused_and_kept(result: Result, files: dict[Path, str]) -> tuple[str, str]:
    changed = [p.name for p, d in files.items() if digest(p) != d]
    if changed:
        return "data-loss", f"changed: {changed}"
    return classify_refusal(result)


def case_dirpath_resume(probe: Probe) -> tuple[str, str]:
    folder = probe.new_dir("dirpath")
    ckpts = folder / "ckpts"
    probe.fit("--trainer.default_root_dir", str(folder / "run"), "--checkpoint.dirpath", str(ckpts), "--max_iterations", "2")
    result = probe.fit("--trainer.default_root_dir", str(folder / "run"), "--checkpoint.dirpath", str(ckpts),
                       "--max_iterations", "3", "--ckpt_path", "last")
    state = torch.load(ckpts / "last.ckpt", weights_only=True)
    steps = {float(s["step"]) for s in state["optimizer_states"][0]["state"].values()}
    if result.rc != 0:
        return classify_refusal(result)
    if steps != {3.0}:
        return "data-loss", f"restarted: optimizer steps {steps} after resuming iteration 2 to 3"
    return "refused-cleanly", "resumed from iteration 2 to 3"


def case_fresh_over_run(probe: Probe) -> tuple[str, str]:
    run = probe.good_run("fresh-over")
    files = {p: digest(p) for p in (run / "checkpoints").glob("*.ckpt")}
    return _refused_and_kept(probe.fit("--trainer.default_root_dir", str(run), "--max_iterations", "2"), files)


def case_fresh_over_dirpath(probe: Probe) -> tuple[str, str]:
    folder = probe.new_dir("fresh-over-dirpath")
    ckpts = folder / "ckpts"
    probe.fit("--trainer.default_root_dir", str(folder / "a"), "--checkpoint.dirpath", str(ckpts), "--max_iterations", "2")
    files = {p: digest(p) for p in ckpts.glob("*.ckpt")}
    result = probe.fit("--trainer.default_root_dir", str(folder / "b"), "--checkpoint.dirpath", str(ckpts), "--max_iterations", "2")
    return _refused_and_kept(result, files)


def resume_change_case(name: str, *args: str, expect: str, check: Optional[Callable[[Path], Optional[str]]] = None) -> Case:
    """``expect``: "refuse" (the change alters the networks) or "apply" (checked by ``check``)."""

    def run(probe: Probe) -> tuple[str, str]:
        run_dir = probe.good_run(name)
        last = run_dir / "checkpoints" / "last.ckpt"
        files = {last: digest(last)}
        result = probe.fit("--trainer.default_root_dir", str(run_dir), "--ckpt_path", "last", "--max_iterations", "3", *args)
        if expect == "refuse":
            return _refused_and_kept(result, files)
        if result.rc != 0:
            return classify_refusal(result)
        problem = check(run_dir) if check else None
        if problem:
            return "silent", problem
        if "genmodels: warning: resuming" not in result.out:
            return "silent", "applied without saying so"
        return "refused-cleanly", "applied, announced and recorded"

    return Case("resume", name, run)


def _hparam(key: str, value: Any) -> Callable[[Path], Optional[str]]:
    def check(run_dir: Path) -> Optional[str]:
        got = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["hyper_parameters"].get(key)
        recorded = (run_dir / "config.resume-1.yaml").read_text() if (run_dir / "config.resume-1.yaml").exists() else ""
        if got != value:
            return f"{key} is {got!r} in the resumed checkpoint, not {value!r}"
        if f"{key}: {value}" not in recorded:
            return f"{key}: {value} not recorded in config.resume-1.yaml"
        return None

    return check


def _lr(value: float) -> Callable[[Path], Optional[str]]:
    def check(run_dir: Path) -> Optional[str]:
        lr = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["optimizer_states"][0]["param_groups"][0]["lr"]
        return None if lr == value else f"G's optimizer still uses lr {lr}, not {value}"

    return check


def case_stale_temp(probe: Probe) -> tuple[str, str]:
    run = probe.good_run("stale-temp")
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    stale = run / "checkpoints" / f".last.ckpt.tmp-{finished.pid}"
    stale.write_bytes(b"PK partial")
    result = probe.fit("--trainer.default_root_dir", str(run), "--ckpt_path", "last", "--max_iterations", "3")
    if result.rc != 0:
        return classify_refusal(result)
    return ("silent", "stale temp file left") if stale.exists() else ("refused-cleanly", "stale temp file removed")


def case_last_without_checkpoint(probe: Probe) -> tuple[str, str]:
    folder = probe.new_dir("last-none")
    result = probe.fit("--trainer.default_root_dir", str(folder / "run"), "--ckpt_path", "last", "--max_iterations", "2")
    if result.rc == 0 and iteration_of(folder / "run/checkpoints/last.ckpt") == 2:
        return "refused-cleanly", "nothing to resume: a new run, said so"
    return classify_refusal(result)


def divergence_case(name: str, resume: bool) -> Case:
    def run(probe: Probe) -> tuple[str, str]:
        if resume:
            run_dir = probe.good_run(name)
            extra = ["--ckpt_path", "last"]
        else:
            run_dir = probe.new_dir(name) / "run"
            extra = []
        last = run_dir / "checkpoints" / "last.ckpt"
        before = digest(last)
        result = probe.fit("--trainer.default_root_dir", str(run_dir), "--max_iterations", "30", *extra,
                           "--model.init_args.lr_g", "1e30", "--model.init_args.lr_d", "1e30")
        for path in run_dir.glob("checkpoints/*.ckpt"):
            if not finite(path):
                return "data-loss", f"{path.name} holds non-finite weights"
        if resume and digest(last) != before:
            return "data-loss", "the last good checkpoint was replaced"
        return classify_refusal(result)

    return Case("divergence", name, run)


def signal_case(name: str, signum: int, expected_rc: int) -> Case:
    def run(probe: Probe) -> tuple[str, str]:
        run_dir = probe.new_dir(name) / "run"
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        env.pop("SLURM_JOB_ID", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "genmodels", "fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY,
             "--checkpoint.every_n_iterations", "0", "--sample_grid.every_n_iterations", "3",
             "--sample_grid.num_samples", "4", "--trainer.default_root_dir", str(run_dir), "--max_iterations", "100000"],
            cwd=run_dir.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 180
        # Training has started once the first sample grid (iteration 3) is written.
        while not list(run_dir.glob("samples/iter_*.png")) and time.time() < deadline and process.poll() is None:
            time.sleep(0.1)
        process.send_signal(signum)
        try:
            out, _ = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            return "traceback", "did not stop"
        if "Traceback (most recent call last)" in out:
            return "traceback", out.strip().splitlines()[-1][:150]
        iteration = iteration_of(run_dir / "checkpoints" / "last.ckpt")
        if iteration is None:
            return "data-loss", f"exit {process.returncode} without last.ckpt"
        if process.returncode != expected_rc:
            return "traceback", f"exit {process.returncode}"
        return "refused-cleanly", f"last.ckpt at iteration {iteration}, exit {process.returncode}"

    return Case("signals", name, run)


RESUME_CASES = [
    Case("resume", "--ckpt_path last with --checkpoint.dirpath", case_dirpath_resume),
    Case("resume", "fresh launch over a run's checkpoints", case_fresh_over_run),
    Case("resume", "fresh launch over checkpoint.dirpath", case_fresh_over_dirpath),
    Case("resume", "--ckpt_path last with nothing to resume", case_last_without_checkpoint),
    Case("resume", "stale .ckpt.tmp-PID of a killed save", case_stale_temp),
    resume_change_case("resume with feature_maps changed", "--model.init_args.feature_maps", "8", expect="refuse"),
    resume_change_case("resume with ema_decay added", "--model.init_args.ema_decay", "0.9", expect="refuse"),
    resume_change_case("resume with another image size", "--data.init_args.image_size", "32", expect="refuse"),
    resume_change_case("resume with latent_dim changed", "--model.init_args.latent_dim", "16", expect="refuse"),
    resume_change_case("resume with label_smoothing changed", "--model.init_args.label_smoothing", "0.1",
                       expect="apply", check=_hparam("label_smoothing", 0.1)),
    resume_change_case("resume with lr_g changed", "--model.init_args.lr_g", "0.0001", expect="apply", check=_lr(0.0001)),
    resume_change_case("resume with another GAN loss", "--model.init_args.loss", "hinge",
                       expect="apply", check=_hparam("loss", "hinge")),
    divergence_case("diverges from the start (lr 1e30)", resume=False),
    divergence_case("diverges after a good checkpoint (lr 1e30)", resume=True),
]
# The signal arrives while the datamodule sets up (after the W&B run may have started, before the first step).
EARLY_SIGNAL = """
import os, signal, sys
from datamodules.digits import DigitsDataModule
original = DigitsDataModule.setup
def setup(self, stage=None):
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return original(self, stage)
DigitsDataModule.setup = setup
from genmodels.commands import main
main(sys.argv[2:])
"""


def early_signal_case(name: str, signum: int) -> Case:
    """Promise: exit 0, no checkpoint (nothing trained), and a line saying it was preempted before the first step."""
    def run(probe: Probe) -> tuple[str, str]:
        run_dir = probe.new_dir(name) / "run"
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        env.pop("SLURM_JOB_ID", None)
        argv = ["fit", "--config", str(EXPERIMENTS / "dcgan/digits.yaml"), *TINY, "--trainer.default_root_dir", str(run_dir),
                "--max_iterations", "4"]
        try:
            done = subprocess.run([sys.executable, "-c", EARLY_SIGNAL, signal.Signals(signum).name, *argv], cwd=run_dir.parent,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            return "hang", "did not stop"
        if "Traceback (most recent call last)" in done.stdout:
            return "traceback", done.stdout.strip().splitlines()[-1][:150]
        if done.returncode != 0:
            return "traceback", f"exit {done.returncode} (killed by the signal)" if done.returncode < 0 or done.returncode > 128 \
                else f"exit {done.returncode}"
        if list(run_dir.glob("checkpoints/*.ckpt")):
            return "silent", "trained and checkpointed although preempted before the first step"
        line = next((l for l in done.stdout.splitlines() if "preempted before the first training step" in l), None)
        return ("refused-cleanly", line[:150]) if line else ("silent", "exit 0 without saying it was preempted")

    return Case("signals", name, run)


SIGNAL_CASES = [
    signal_case("Ctrl-C (SIGINT) during fit", signal.SIGINT, 130),
    signal_case("SIGTERM during fit", signal.SIGTERM, 0),
    signal_case("SIGUSR1 during fit", signal.SIGUSR1, 0),
    signal_case("SIGHUP during fit", signal.SIGHUP, 0),
    early_signal_case("SIGTERM while the data sets up", signal.SIGTERM),
    early_signal_case("SIGUSR1 while the data sets up", signal.SIGUSR1),
]


# ---------------------------------------------------------------------------------------------
# Round two (issue 27): imports named by files, one writer per run, forks, verified checkpoints,
# outputs and bounds. Cases that may hang run as child processes with a time limit.

EVIL = "open(MARKER, 'w').write('imported')\nclass Data:\n    pass\n"


def _cli(probe: Probe, argv: list[str]) -> Result:
    """`genmodels.commands.main(argv)` in this process, output captured (as `Probe.fit`)."""
    from genmodels.commands import main

    buffer = io.StringIO()
    rc: Optional[int] = 0
    error = None
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            main(argv)
        except SystemExit as exit_:
            rc = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException as err:  # noqa: BLE001
            error, rc = err, None
            traceback.print_exc()
    return Result(rc, buffer.getvalue(), error)


def _child(argv: list[str], timeout: float, cwd: Optional[Path] = None) -> Optional[Result]:
    """``python -m genmodels ARGV`` as a child process; None when it had not ended after ``timeout`` s."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "genmodels", *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None
    return Result(process.returncode, out)


def _evil_folder(probe: Probe, name: str) -> tuple[Path, Path]:
    folder = probe.new_dir(name)
    marker = folder / "imported.txt"
    (folder / "evilmod.py").write_text(EVIL.replace("MARKER", repr(str(marker))))
    return folder, marker


def security_case(name: str, make_argv: Callable[[Path], list[str]]) -> Case:
    """A command run from a folder holding evilmod.py (``python -m genmodels`` puts the cwd on sys.path)."""
    def run(probe: Probe) -> tuple[str, str]:
        folder, marker = _evil_folder(probe, name)
        result = _child(make_argv(folder), timeout=600, cwd=folder)
        if marker.exists():
            return "security", "evilmod.py was imported"
        if result is None:
            return "hang", "no end after 600 s"
        return classify_refusal(result)

    return Case("round2-imports", name, run)


def _subset_config(folder: Path, dataset: str = "evilmod.Data", class_path: str = "datamodules.subset.ClassSubsetDataModule") -> Path:
    import yaml

    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"data": {"class_path": class_path, "init_args": {"dataset": dataset, "classes": [0, 1]}}}))
    return path


def _sweep_file(folder: Path, text: str) -> Path:
    (folder / "sweep.yaml").write_text(text)
    return folder / "sweep.yaml"


def case_lock_relaunch(probe: Probe) -> tuple[str, str]:
    run = probe.new_dir("lock") / "run"
    holder_code = ("import fcntl, os, socket, sys, time\nrun = sys.argv[1]\nos.makedirs(run, exist_ok=True)\n"
                   "fd = os.open(os.path.join(run, '.genmodels.lock'), os.O_RDWR | os.O_CREAT)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
                   "os.write(fd, f'host={socket.gethostname()}\\npid={os.getpid()}\\n'.encode())\nprint('ready', flush=True)\n"
                   "time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", holder_code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()
        result = probe.fit("--trainer.default_root_dir", str(run), "--max_iterations", "2")
    finally:
        holder.kill()
        holder.wait()
    if (run / "checkpoints").exists():
        return "data-loss", "a second writer trained into a run that another process holds"
    kind, detail = classify_refusal(result)
    return (kind if f"PID {holder.pid}" in detail or kind != "refused-cleanly" else "silent"), detail


def case_moved_run(probe: Probe) -> tuple[str, str]:
    import shutil

    run = probe.good_run("moved", 2, "--checkpoint.every_n_iterations", "2")
    moved = run.parent / "moved-run"
    shutil.move(str(run), str(moved))
    result = probe.fit("--trainer.default_root_dir", str(moved), "--ckpt_path", "last", "--max_iterations", "4")
    if result.rc != 0:
        return classify_refusal(result)
    names = sorted(p.name for p in (moved / "checkpoints").iterdir())
    if any(n.startswith("last-v") for n in names) or iteration_of(moved / "checkpoints" / "last.ckpt") != 4:
        return "data-loss", f"last.ckpt is not the newest after a move: {names}"
    return "refused-cleanly", "resumed into last.ckpt (iteration 4)"


def case_fork(probe: Probe) -> tuple[str, str]:
    run = probe.good_run("fork", 4, "--checkpoint.every_n_iterations", "2")
    last = run / "checkpoints" / "last.ckpt"
    before = digest(last)
    result = probe.fit("--trainer.default_root_dir", str(run), "--ckpt_path", str(run / "checkpoints" / "iter_00000002.ckpt"),
                       "--max_iterations", "3")
    if digest(last) != before:
        return "data-loss", "resuming iter_2 overwrote the later last.ckpt"
    return classify_refusal(result)


def case_changed_batch(probe: Probe) -> tuple[str, str]:
    run = probe.good_run("batch", 2)
    result = probe.fit("--trainer.default_root_dir", str(run), "--ckpt_path", "last", "--max_iterations", "3",
                       "--data.init_args.batch_size", "32")
    if result.rc != 0:
        return classify_refusal(result)
    if "genmodels: warning:" in result.out and "batch_size" in result.out:
        return "refused-cleanly", "announced: " + next(l for l in result.out.splitlines() if "batch_size" in l)[:150]
    return "silent", "batch size changed on resume without a word"


def resume_setting_case(name: str, *args: str, key: str, into_new_dir: bool = False) -> Case:
    """Resume with a changed setting: the promise is one warning line naming ``key`` (or a one-line refusal)."""
    def run(probe: Probe) -> tuple[str, str]:
        import shutil

        run_dir = probe.good_run("setting", 2)
        target, ckpt = run_dir, "last"
        if into_new_dir:  # a copy of the checkpoint alone, resumed into another run directory
            ckpt = str(shutil.copy(run_dir / "checkpoints" / "last.ckpt", run_dir.parent / "copied.ckpt"))
            target = run_dir.parent / "elsewhere"
        result = probe.fit("--trainer.default_root_dir", str(target), "--ckpt_path", ckpt, "--max_iterations", "3", *args)
        if result.rc != 0:
            return classify_refusal(result)
        lines = [line for line in result.out.splitlines() if line.startswith("genmodels: warning:") and key in line]
        if len(lines) == 1:
            return "refused-cleanly", "announced: " + lines[0][:150]
        return "silent", f"{key} changed on resume with {len(lines)} warning lines"

    return Case("round2-rundir", name, run)


def case_disk_full_in_fit(probe: Probe) -> tuple[str, str]:
    """ENOSPC reported when the checkpoint is flushed (as delayed allocation, NFS and quotas report it)."""
    import errno

    run = probe.good_run("diskfull", 2)
    folder = run / "checkpoints"
    before = {p.name: digest(p) for p in folder.iterdir()}
    real_fsync = os.fsync

    def full_fsync(fd: int) -> None:
        if ".ckpt.tmp-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    os.fsync = full_fsync
    try:
        result = probe.fit("--trainer.default_root_dir", str(run), "--ckpt_path", "last", "--max_iterations", "4")
    finally:
        os.fsync = real_fsync
    after = {p.name: digest(p) for p in folder.iterdir()}
    if any(after.get(name) != value for name, value in before.items()):
        return "data-loss", "a checkpoint that was there before the full disk changed or went"
    if set(after) != set(before):
        return "silent", f"files left behind: {sorted(set(after) - set(before))}"
    return classify_refusal(result)


def _short_rng(checkpoint: dict) -> None:
    checkpoint["genmodels"]["torch_rng"] = [state[:100] for state in checkpoint["genmodels"]["torch_rng"]]


def _short_numpy_rng(checkpoint: dict) -> None:
    numpy_state = checkpoint["genmodels"]["host_rng"]["numpy"]
    numpy_state["keys"] = numpy_state["keys"][:10]


def _round2(case: Case) -> Case:
    case.group = "round2-checkpoint"
    return case


def _ckpt_edit(name: str, edit: Callable[[dict], Any], command: str = "sample") -> Case:
    def run(probe: Probe) -> tuple[str, str]:
        folder = probe.new_dir(name)
        checkpoint = torch.load(probe.good_checkpoint(), weights_only=True)
        edit(checkpoint)
        path = _save(checkpoint, folder / "edited.ckpt")
        out = folder / "out.png"
        argv = {"sample": ["sample", "--ckpt", str(path), "--num-samples", "4", "--out", str(out), "--device", "cpu"],
                "export": ["export", "--ckpt", str(path), "--out", str(folder / "e.pt")]}[command]
        result = _cli(probe, argv)
        return classify_refusal(result)

    return Case("round2-checkpoint", f"{command}: {name}", run)


def _first_weight(checkpoint: dict) -> str:
    return next(k for k, v in checkpoint["state_dict"].items() if v.is_floating_point() and v.dim() > 1)


def _flip(checkpoint: dict) -> None:
    checkpoint["state_dict"][_first_weight(checkpoint)].view(-1).view(torch.int32)[0] ^= 1 << 20


def _nan(checkpoint: dict) -> None:
    checkpoint["state_dict"][_first_weight(checkpoint)].view(-1)[0] = float("nan")
    checkpoint["genmodels"].pop("weights_sha256", None)  # as a file from before hashes: the finiteness check alone


def cli_case(group: str, name: str, make_argv: Callable[[Path], list[str]], accept: Optional[str] = None,
             child_timeout: Optional[float] = None) -> Case:
    """A command that must be refused with one line (``accept``: text in the output that also keeps the promise)."""
    def run(probe: Probe) -> tuple[str, str]:
        folder = probe.new_dir(name.split()[0].rstrip(":"))
        # "GOOD" stands for a trained checkpoint, so the case is refused for its own reason.
        argv = [str(probe.good_checkpoint()) if a == "GOOD" else a for a in make_argv(folder)]
        if child_timeout is not None:
            result = _child(argv, child_timeout, cwd=folder)
            if result is None:
                return "hang", f"no end after {child_timeout:g} s"
        else:
            result = _cli(probe, argv)
        if accept and accept in result.out and result.error is None:
            return "refused-cleanly", accept
        return classify_refusal(result)

    return Case(group, name, run)


def _image_folder_with_bomb(folder: Path) -> Path:
    import struct
    import zlib

    from PIL import Image

    (folder / "data" / "a").mkdir(parents=True)
    for k in range(3):
        Image.new("RGB", (16, 16), (k * 40, 10, 10)).save(folder / "data" / "a" / f"{k}.png")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    (folder / "data" / "a" / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    config = folder / "folder.yaml"
    config.write_text(f"data:\n  class_path: datamodules.ImageFolderDataModule\n  init_args:\n    data_dir: {folder / 'data'}\n"
                      "    image_size: 16\n    bad_files: error\n")
    return config


def _symlinked_classes(folder: Path) -> list[str]:
    from PIL import Image

    for name, root in (("a", folder / "data"), ("b", folder / "elsewhere")):
        (root / name).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (16, 16), (k * 40, 10, 10)).save(root / name / f"{k}.png")
    (folder / "data" / "b_link").symlink_to(folder / "elsewhere" / "b", target_is_directory=True)
    config = folder / "folder.yaml"
    config.write_text(f"data:\n  class_path: datamodules.ImageFolderDataModule\n  init_args:\n    data_dir: {folder / 'data'}\n"
                      "    image_size: 16\n    val_fraction: 0.0\n")
    return ["check-data", "--config", str(config)]


def case_symlinked_class(probe: Probe) -> tuple[str, str]:
    folder = probe.new_dir("symlink")
    result = _cli(probe, _symlinked_classes(folder))
    if result.rc != 0:
        return classify_refusal(result)
    return ("refused-cleanly", "4 images found, the linked class included") if "train 4," in result.out \
        else ("silent", "complete, but the symlinked class folder was dropped")


def case_translate_collision(probe: Probe) -> tuple[str, str]:
    from PIL import Image

    folder = probe.new_dir("collision")
    (folder / "in").mkdir()
    Image.new("RGB", (16, 16), "red").save(folder / "in" / "photo.jpg")
    Image.new("RGB", (16, 16), "blue").save(folder / "in" / "photo.png")
    result = _cli(probe, ["translate", "--ckpt", str(folder / "none.ckpt"), "--input", str(folder / "in"), "--out", str(folder / "out")])
    kind, detail = classify_refusal(result)
    if kind == "refused-cleanly" and "photo.jpg" not in detail:
        return "data-loss", "not refused for the name collision (" + detail[:100] + ")"
    return kind, detail


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
GRID_12x10 = "parameters:\n" + "".join(f"  model.init_args.p{i}:\n    values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" for i in range(12))
DIGITS = str(EXPERIMENTS / "dcgan/digits.yaml")

ROUND2_CASES = [
    security_case("check-data: run config naming a subset of evilmod.Data", lambda f: ["check-data", "--config", str(_subset_config(f))]),
    security_case("check-data: --data.init_args.dataset evilmod.Data",
                  lambda f: ["check-data", "--config", str(_subset_config(f, "datamodules.DigitsDataModule")),
                             "--data.init_args.dataset", "evilmod.Data"]),
    security_case("train-classifier: --data config naming evilmod.Data via the subset",
                  lambda f: ["train-classifier", "--data", str(_subset_config(f)), "--out", str(f / "c.pt")]),
    security_case("sweep: data.class_path evilmod.Data", lambda f: [
        "sweep", str(_sweep_file(f, "parameters:\n  data.class_path:\n    values: [evilmod.Data]\n")), "--dry-run"]),
    Case("round2-rundir", "relaunch while another process holds the run", case_lock_relaunch),
    Case("round2-rundir", "moved run directory, --ckpt_path last", case_moved_run),
    Case("round2-rundir", "resume from an earlier iter_* without --fork", case_fork),
    Case("round2-rundir", "resume with a changed batch size", case_changed_batch),
    resume_setting_case("resume with a changed precision", "--trainer.precision", "bf16-mixed", key="trainer.precision"),
    resume_setting_case("resume with a changed dataset (a class subset)", "--data", "datamodules.ClassSubsetDataModule",
                        "--data.init_args.dataset", "DigitsDataModule", "--data.init_args.classes", "[0, 1]",
                        "--data.init_args.image_size", "16", key="data.class_path"),
    resume_setting_case("a copied checkpoint resumed elsewhere, changed precision", "--trainer.precision", "bf16-mixed",
                        key="trainer.precision", into_new_dir=True),
    resume_setting_case("a copied checkpoint resumed elsewhere, changed batch size", "--data.init_args.batch_size", "32",
                        key="data.init_args.batch_size", into_new_dir=True),
    _round2(ckpt_case("fit --ckpt_path: a short torch RNG state", _edited(_short_rng))),
    _round2(ckpt_case("fit --ckpt_path: a short NumPy RNG state", _edited(_short_numpy_rng))),
    Case("round2-files", "fit: disk full (ENOSPC) saving a checkpoint", case_disk_full_in_fit),
    _ckpt_edit("bit-flipped weight", _flip),
    _ckpt_edit("NaN weight", _nan),
    _ckpt_edit("NaN weight", _nan, command="export"),
    _ckpt_edit("feature_maps 200000 in the hyperparameters", lambda c: c["hyper_parameters"].__setitem__("feature_maps", 200000)),
    _ckpt_edit("a weight missing", lambda c: c["state_dict"].pop(_first_weight(c))),
    _ckpt_edit("an unexpected weight", lambda c: c["state_dict"].__setitem__("generator.extra", torch.zeros(2))),
    _ckpt_edit("an unknown hyperparameter", lambda c: c["hyper_parameters"].__setitem__("not_an_option", 1)),
    _ckpt_edit("an unknown model class", lambda c: c["genmodels"].__setitem__("model_class", "genmodels.NoSuchGAN")),
    cli_case("round2-files", "check-data: 30000x30000 PNG header (bad_files: error)", lambda f: ["check-data", "--config", str(_image_folder_with_bomb(f))]),
    Case("round2-files", "check-data: symlinked class folder", case_symlinked_class),
    Case("round2-files", "translate: photo.jpg and photo.png", case_translate_collision),
    cli_case("round2-files", "sample: --out is a FIFO", lambda f: (os.mkfifo(f / "p.png"), ["sample", "--ckpt", "GOOD",
             "--out", str(f / "p.png"), "--overwrite"])[1], child_timeout=120),
    cli_case("round2-files", "sample: --out ''", lambda f: ["sample", "--ckpt", "GOOD", "--out", ""]),
    cli_case("round2-bounds", "sample: --max-memory-gb inf", lambda f: ["sample", "--ckpt", "GOOD", "--max-memory-gb", "inf",
             "--out", str(f / "g.png")]),
    cli_case("round2-bounds", "check-data: image_size 100000", lambda f: ["check-data", "--config", DIGITS, "--data.init_args.image_size", "100000"]),
    cli_case("round2-bounds", "fit: --sample_grid.num_samples 1e9", lambda f: ["fit", "--config", DIGITS, "--trainer.default_root_dir",
             str(f / "run"), "--sample_grid.num_samples", "1000000000"]),
    cli_case("round2-bounds", "fit: --trainer.accumulate_grad_batches 0", lambda f: ["fit", "--config", DIGITS,
             "--trainer.default_root_dir", str(f / "run"), "--trainer.accumulate_grad_batches", "0"]),
    cli_case("round2-bounds", "interpolate: --frame-ms 1e12", lambda f: ["interpolate", "--ckpt", "GOOD",
             "--frame-ms", "1000000000000", "--out", str(f / "a.gif")]),
    cli_case("round2-bounds", "fit: a duplicate YAML key", lambda f: (
        (f / "dup.yaml").write_text("model:\n  init_args:\n    lr_g: 0.1\n    lr_g: 0.2\n"),
        ["fit", "--config", DIGITS, "--config", str(f / "dup.yaml"), "--trainer.default_root_dir", str(f / "run")])[1]),
    cli_case("round2-bounds", "fit: billion-laughs YAML", lambda f: (
        (f / "bomb.yaml").write_text(BILLION_LAUGHS),
        ["fit", "--config", DIGITS, "--config", str(f / "bomb.yaml"), "--trainer.default_root_dir", str(f / "run")])[1],
        child_timeout=300),
    cli_case("round2-bounds", "sweep: a list", lambda f: ["sweep", str(_sweep_file(f, "- a\n- b\n")), "--dry-run"]),
    cli_case("round2-bounds", "sweep: a bare number", lambda f: ["sweep", str(_sweep_file(f, "3\n")), "--dry-run"]),
    cli_case("round2-bounds", "sweep: values: []", lambda f: ["sweep", str(_sweep_file(
        f, "parameters:\n  model.init_args.lr:\n    values: []\n")), "--dry-run"]),
    cli_case("round2-bounds", "sweep: a 12 x 10 grid", lambda f: ["sweep", str(_sweep_file(f, GRID_12x10)), "--dry-run"],
             child_timeout=300),
]


# ---------------------------------------------------------------------------------------------
# The HTTP API


def _raw_request(port: int, head: bytes, chunks: int = 0, chunk: int = 65536, body: bytes = b"") -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    response = b""
    try:
        sock.sendall(head + body)
        piece = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
        for _ in range(chunks):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(piece)
        else:
            if chunks:
                sock.sendall(b"0\r\n\r\n")
        sock.settimeout(60)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            response += data
            if b"\r\n\r\n" in response:
                header, _, rest = response.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return response


def api_case(name: str, method: str = "POST", path: str = "/generate", body: Any = None, raw: Optional[bytes] = None,
             headers: Optional[dict] = None, chunked_mib: int = 0) -> Case:
    def run(probe: Probe) -> tuple[str, str]:
        port = probe.api_port
        if chunked_mib:
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n").encode()
            response = _raw_request(port, head, chunks=chunked_mib * 16)
        else:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
            extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            if "Content-Length" not in (headers or {}):
                extra += f"Content-Length: {len(data)}\r\n"
            head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n".encode()
            response = _raw_request(port, head, body=data if "Content-Length" not in (headers or {}) else b"")
        if probe.api_server.poll() is not None:
            return "traceback", "the server died"
        if not response:
            return "traceback", "no response"
        status = int(response.split(b" ", 2)[1])
        payload = response.partition(b"\r\n\r\n")[2]
        if 400 <= status < 500:
            if len(payload) > 4096:
                return "silent", f"HTTP {status} with a {len(payload)}-byte body (echo?)"
            return "refused-cleanly", f"HTTP {status}: {payload[:120].decode(errors='replace')}"
        if status >= 500:
            return "traceback", f"HTTP {status}"
        return "silent", f"HTTP {status}"

    return Case("api", name, run)


API_CASES = [
    api_case("truncation NaN", raw=b'{"truncation": NaN}'),
    api_case("truncation Infinity", raw=b'{"truncation": Infinity}'),
    api_case("truncation -Infinity on /interpolate", path="/interpolate", raw=b'{"truncation": -Infinity}'),
    api_case("chunked 16 MiB body", chunked_mib=16),
    api_case("Content-Length 300 MB", headers={"Content-Length": "300000000"}),
    api_case("Content-Length not a number", headers={"Content-Length": "lots"}),
    api_case("malformed JSON", raw=b'{"n": 4,'),
    api_case("n = 10000", body={"n": 10000}),
    api_case("n is a string", body={"n": "many"}),
    api_case("seed negative", body={"seed": -1}),
    api_case("seed 2**64", body={"seed": 2**64}),
    api_case("seed 1.5", body={"seed": 1.5}),
    api_case("unknown field", body={"colour": "red"}),
    api_case("condition on an unconditional model", body={"condition": 3}),
    api_case("format gif", body={"format": "gif"}),
    api_case("body is a JSON list", body=[1, 2, 3]),
    api_case("body is null", raw=b"null"),
    api_case("60 KB string in a field (echo?)", body={"n": "x" * 60000}),
    api_case("deeply nested JSON under 64 KiB", raw=b"[" * 30000 + b"]" * 30000),
    api_case("interpolate 32 steps x 64 paths", path="/interpolate", body={"steps": 32, "n": 64}),
    api_case("GET /generate", method="GET", raw=b""),
    api_case("unknown path", path="/nowhere", body={}),
]


def start_api(probe: Probe) -> None:
    from scripts_load_test import free_port, wait_healthy  # type: ignore[import-not-found]

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    probe.api_server = subprocess.Popen(
        [sys.executable, "-m", "genmodels", "serve", "--api", "--ckpt", str(probe.good_checkpoint()), "--port", str(port),
         "--device", "cpu", "--log-level", "critical"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_healthy(f"http://127.0.0.1:{port}", timeout=180, server=probe.api_server)
    probe.api_port = port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run only the cases whose group or name contains this")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temp folder)")
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--no-signals", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    import importlib

    sys.modules["scripts_load_test"] = importlib.import_module("load_test_api")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="genmodels-probe-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # anything a case writes relative to the cwd stays in the work folder
    import logging

    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # Lightning's info lines bypass the capture
    probe = Probe(work)
    cases = CHECKPOINT_CASES + ARG_CASES + RESUME_CASES + ROUND2_CASES + ([] if args.no_signals else SIGNAL_CASES)
    cases += [] if args.no_api else API_CASES
    if args.only:
        cases = [c for c in cases if args.only.lower() in f"{c.group} {c.name}".lower()]
    counts = dict.fromkeys(CLASSES, 0)
    started_api = False
    try:
        for case in cases:
            if case.group == "api" and not started_api:
                start_api(probe)
                started_api = True
            start = time.time()
            try:
                kind, detail = case.run(probe)
            except Exception as err:  # noqa: BLE001 - a probe failure is reported, not fatal
                kind, detail = "traceback", f"probe: {type(err).__name__}: {err}"[:200]
            counts[kind] += 1
            print(f"{kind:16s} {case.group:14s} {case.name:48s} {time.time() - start:5.1f}s  {detail}", flush=True)
    finally:
        if started_api:
            probe.api_server.terminate()
            probe.api_server.wait(timeout=30)
    print()
    print(f"{len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if not args.keep:
        print(f"(work folder {work})")


if __name__ == "__main__":
    main()
