"""Run every fixture generator ``scripts/official/make_fixtures_<repo>.py`` against the authors' checkouts.

Each generator builds small networks with the official classes of one repository, perturbs them,
and stores tensors, kwargs and official outputs for the ``genmodels import-weights`` tests. This
runner finds the generators, gives each its checkout and its own folder, and reports the sizes
against the fixture budget (20 MB in all, tests/fixtures/official).

Usage::

    python scripts/official/make_fixtures.py --out tests/fixtures/official \
        --checkout stylegan2_ada=/tmp/stylegan2-ada-pytorch --checkout biggan_pytorch=/tmp/BigGAN-PyTorch

A generator ``make_fixtures_<repo>.py`` runs as ``python make_fixtures_<repo>.py --checkout PATH
--out OUT/<repo with - for _>`` (stylegan2_ada -> tests/fixtures/official/stylegan2-ada), in its own
process. Generators without a ``--checkout <repo>=PATH`` are listed and skipped (or are an error
with ``--all``). Get a checkout with ``git clone`` of the public repository (or ``git archive`` of a
mirror); the checkouts stay outside this repository and are never committed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGET_MB = 20.0


def generators() -> dict[str, Path]:
    """repo -> generator script, for every make_fixtures_<repo>.py beside this file."""
    return {p.stem[len("make_fixtures_"):]: p for p in sorted(HERE.glob("make_fixtures_*.py"))}


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main(argv: list[str] | None = None) -> int:
    found = generators()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="fixture root (tests/fixtures/official)")
    parser.add_argument("--checkout", action="append", default=[], metavar="REPO=PATH",
                        help=f"a checkout of the authors' repository for one generator; repos: {', '.join(found) or 'none found'}")
    parser.add_argument("--all", action="store_true", help="fail unless every generator was given a checkout")
    args = parser.parse_args(argv)
    checkouts: dict[str, Path] = {}
    for item in args.checkout:
        repo, sep, path = item.partition("=")
        if not sep or repo not in found:
            parser.error(f"--checkout {item!r}: give REPO=PATH with REPO one of {', '.join(found)}")
        if not Path(path).is_dir():
            parser.error(f"--checkout {item!r}: {path} is not a folder")
        checkouts[repo] = Path(path)
    missing = [repo for repo in found if repo not in checkouts]
    if missing and args.all:
        parser.error(f"no --checkout for {', '.join(missing)}")
    failures = []
    for repo, script in found.items():
        if repo not in checkouts:
            print(f"skipped {script.name}: no --checkout {repo}=PATH")
            continue
        out = args.out / repo.replace("_", "-")
        print(f"running {script.name} --checkout {checkouts[repo]} --out {out}", flush=True)
        result = subprocess.run([sys.executable, str(script), "--checkout", str(checkouts[repo]), "--out", str(out)])
        if result.returncode != 0:
            failures.append(script.name)
        print(f"{out}: {folder_size(out) / 1e6:.2f} MB")
    total = folder_size(args.out) / 1e6
    print(f"{args.out}: {total:.2f} MB of the {BUDGET_MB:.0f} MB fixture budget")
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0 if total <= BUDGET_MB else 2


if __name__ == "__main__":
    raise SystemExit(main())
