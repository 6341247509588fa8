"""The `fit` walk: which project files and functions `genmodels fit` passes through to its first checkpoint.

    python scripts/fit_walk.py [--config experiments/dcgan/digits.yaml] [--list] [--functions]

Runs the console script's entry point (read from pyproject.toml's ``[project.scripts]``) in-process
on the config for 2 iterations (a checkpoint at iteration 2) in a temporary run directory, with a
`sys.setprofile` hook that records every call into a file of genmodels/ or datamodules/ until the
first ``*.ckpt`` is written. Module and class bodies run by an import are not calls and are not
counted (so what was imported before the walk started does not matter). It prints:

- files: project files with at least one function called;
- functions: distinct project functions called;
- probes: distinct ``getattr``/``hasattr`` call sites executed in project code;
- back-calls: distinct (caller file, callee file) pairs where a project file calls back into a
  project file that is already further down the call stack (a lower layer reaching up into the one
  that called it); those that call a function the caller holds in an argument (a writer handed to
  ``atomic_write``) are counted apart, as "handed in": the lower layer does not name the upper one.
"""

from __future__ import annotations

import argparse
import builtins
import inspect
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tuple(str(ROOT / package) + os.sep for package in ("genmodels", "datamodules"))


class Walk:
    def __init__(self, checkpoint_dir: Path) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.functions: set[tuple[str, str]] = set()
        self.probes: set[tuple[str, int]] = set()
        self.back_calls: set[tuple[str, str]] = set()
        self.direct: set[tuple[str, str]] = set()  # back-calls with at least one call of a function not handed in
        self.done = False

    @property
    def handed(self) -> set[tuple[str, str]]:
        """Back-calls whose every call is of a function the caller was handed."""
        return self.back_calls - self.direct

    @staticmethod
    def handed_in(frame) -> bool:
        """Whether the called function is one its caller holds in an argument (a writer passed to a helper)."""
        caller = frame.f_back
        for value in caller.f_locals.values() if caller is not None else ():
            function = getattr(value, "__func__", value)
            if getattr(function, "__code__", None) is frame.f_code:
                return True
        return False

    def project_file(self, frame) -> str | None:
        name = frame.f_code.co_filename
        return os.path.relpath(name, ROOT) if name.startswith(PROJECT) else None

    def stack_files(self, frame) -> list[str]:
        files = []
        while frame is not None:
            rel = self.project_file(frame)
            if rel is not None:
                files.append(rel)
            frame = frame.f_back
        return files

    def __call__(self, frame, event, arg) -> None:
        if self.done:
            return
        if event == "call":
            rel = self.project_file(frame)
            if rel is None or not frame.f_code.co_flags & inspect.CO_OPTIMIZED:  # a module or class body
                return
            self.functions.add((rel, frame.f_code.co_qualname if hasattr(frame.f_code, "co_qualname") else frame.f_code.co_name))
            files = self.stack_files(frame.f_back)
            if files and files[0] != rel and rel in files[1:]:
                self.back_calls.add((files[0], rel))
                if not self.handed_in(frame):
                    self.direct.add((files[0], rel))
        elif event == "c_call" and arg in (builtins.getattr, builtins.hasattr):
            rel = self.project_file(frame)
            if rel is not None:
                self.probes.add((rel, frame.f_lineno))
        if event == "return" and self.project_file(frame) and any(self.checkpoint_dir.rglob("*.ckpt")):
            self.done = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="experiments/dcgan/digits.yaml")
    parser.add_argument("--list", action="store_true", help="list the files, probes and back-calls")
    parser.add_argument("--functions", action="store_true", help="list every function called, by file")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    import torch

    torch.set_num_threads(1)
    import importlib
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["genmodels"]
    module, _, name = target.partition(":")
    console_script = getattr(importlib.import_module(module), name)  # what the `genmodels` console script runs

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        walk = Walk(run_dir)
        argv = ["fit", "--config", str(ROOT / args.config), "--trainer.default_root_dir", str(run_dir),
                "--max_iterations", "2", "--checkpoint.every_n_iterations", "2", "--sample_grid.every_n_iterations", "2",
                "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]
        sys.setprofile(walk)
        try:
            console_script(argv)
        except SystemExit as stop:
            if stop.code:
                raise
        finally:
            sys.setprofile(None)
    files = sorted({f for f, _ in walk.functions})
    if args.list:
        print("files:", *files, sep="\n  ")
        print("probes:", *(f"{f}:{line}" for f, line in sorted(walk.probes)), sep="\n  ")
        print("back-calls:", *(f"{a} -> {b}" + (" (handed in)" if (a, b) in walk.handed else "") for a, b in sorted(walk.back_calls)),
              sep="\n  ")
    if args.functions:
        print("functions:", *(f"{f}: {name}" for f, name in sorted(walk.functions)), sep="\n  ")
    print(f"fit walk ({args.config}, to the first checkpoint): {len(files)} files, {len(walk.functions)} functions, "
          f"{len(walk.probes)} probes, {len(walk.back_calls)} back-calls ({len(walk.handed)} of them call a function handed in)")


if __name__ == "__main__":
    main()
