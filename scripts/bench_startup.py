"""Start-up time of the ``genmodels`` command: ``--help``, ``--version`` and every ``CMD --help``.

Runs the console script's entry point (read from each checkout's pyproject.toml) in a fresh
interpreter, best of ``--repeat`` runs, for this checkout and, with ``--baseline DIR``, for another
checkout (e.g. ``/work/main`` or a ``git worktree`` of the previous commit) in the same invocation,
so that the ratio means something on a loaded machine. The target is 1.5 s on an idle 2-core
machine for every command. fit/validate/test print LightningCLI's help, which needs torch and
Lightning to render: it comes from a cache keyed by the sources and libraries
(`genmodels.commands._help_cache`), and the script also prints the first call's time after a
change, when that cache is empty.

    python scripts/bench_startup.py --baseline /work/main
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.5
LIGHTNING_COMMANDS = ("fit", "validate", "test")


def entry_point(checkout: Path) -> tuple[str, str]:
    """``(module, function)`` of the ``genmodels`` console script in ``checkout``'s pyproject.toml."""
    match = re.search(r'^genmodels\s*=\s*"([\w.]+):(\w+)"', (checkout / "pyproject.toml").read_text(), re.M)
    if match is None:
        raise SystemExit(f"{checkout}/pyproject.toml declares no genmodels console script")
    return match.group(1), match.group(2)


def command_words(checkout: Path) -> list[str]:
    """The command words ``genmodels --help`` lists, read from the checkout without importing it."""
    names = re.search(r"COMMANDS: list\[str\] = \[(.*?)\]", (checkout / "genmodels/commands/__init__.py").read_text(), re.S)
    return [n.replace("_", "-") for n in re.findall(r'"(\w+)"', names.group(1))] if names else []


def seconds(checkout: Path, argv: list[str], repeat: int, cache: str = "kept") -> float:
    """Best wall time of ``genmodels *argv`` over ``repeat`` fresh interpreters.

    ``cache``: "kept" times every run against one help cache (filled by an untimed first run);
    "empty" gives each run a new, empty cache folder (a first call after a source or library change).
    """
    module, function = entry_point(checkout)
    code = f"import sys; sys.argv[0] = 'genmodels'; from {module} import {function}; {function}()"
    with tempfile.TemporaryDirectory() as kept:
        env = dict(os.environ, PYTHONPATH=str(checkout), WANDB_MODE="offline", WANDB_SILENT="true", XDG_CACHE_HOME=kept)
        env.pop("COLUMNS", None)
        if cache == "kept":
            subprocess.run([sys.executable, "-c", code, *argv], cwd=checkout, env=env, capture_output=True)
        best = float("inf")
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as empty:
                run_env = dict(env, XDG_CACHE_HOME=empty) if cache == "empty" else env
                start = time.perf_counter()
                result = subprocess.run([sys.executable, "-c", code, *argv], cwd=checkout, env=run_env, capture_output=True)
                elapsed = time.perf_counter() - start
            if result.returncode != 0:
                return float("nan")  # e.g. --version where it is not a command
            best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time in the same run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the best is kept (default 3)")
    parser.add_argument("--commands", nargs="*", default=None, help="command words to time (default: all)")
    args = parser.parse_args()

    words = args.commands if args.commands is not None else command_words(ROOT)
    cases = [["--help"], ["--version"], *([w, "--help"] for w in words)]
    header = f"{'genmodels ...':<28}" + (f"{'baseline s':>12}" if args.baseline else "") + f"{'this s':>10}"
    print(header + ("   ratio" if args.baseline else "") + "   target")
    slowest = 0.0
    for argv in cases:
        now = seconds(ROOT, argv, args.repeat)
        line = f"{' '.join(argv):<28}"
        if args.baseline:
            before = seconds(args.baseline, argv, args.repeat)
            line += f"{before:>12.2f}"
        line += f"{now:>10.2f}"
        if args.baseline:
            line += f"{before / now:>8.1f}x" if now == now and before == before else f"{'-':>9}"
        line += "   ok" if now <= TARGET_S else f"   OVER {TARGET_S} s"
        if argv[0] in LIGHTNING_COMMANDS:
            line += f"   (first call after a source or library change: {seconds(ROOT, argv, args.repeat, cache='empty'):.2f} s)"
        if now == now:
            slowest = max(slowest, now)
        print(line, flush=True)
    print(f"slowest command: {slowest:.2f} s (target {TARGET_S} s on an idle 2-core machine); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
