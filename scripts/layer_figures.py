"""Print the layering figures of issue #28: duplicated pairs and getattr/hasattr probes.

    python scripts/layer_figures.py            # both figures
    python scripts/layer_figures.py --list     # also every probe left, with its line

Pairs come from the `duplicates` tool (when it is installed): a pair counts as "inside" when both of
its places are under genmodels/ or datamodules/, and as non-boilerplate unless the tool marks it so.
Probes are `getattr(...)`/`hasattr(...)` calls found with `ast` (comments and strings do not count),
per 1,000 lines (every line of every .py file) of genmodels/ and datamodules/.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("genmodels", "datamodules")


def probes() -> tuple[list[str], int]:
    found, lines = [], 0
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            lines += len(text.splitlines())
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.id}")
    return sorted(found), lines


def pairs() -> tuple[str, int] | None:
    if shutil.which("duplicates") is None:
        return None
    out = subprocess.run(["duplicates", "--most", "200", "--seconds", "300"], cwd=ROOT, capture_output=True, text=True).stdout
    rows = out.splitlines()
    inside = 0
    for row in rows[1:]:
        fields = row.split()
        if len(fields) < 4 or "boilerplate" in fields:
            continue
        if all(side.split(":")[0].startswith(tuple(p + "/" for p in PACKAGES)) for side in (fields[1], fields[3])):
            inside += 1
    return rows[0] if rows else "", inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every probe")
    args = parser.parse_args()
    found, lines = probes()
    if args.list:
        print("\n".join(found))
    print(f"getattr/hasattr: {len(found)} in {lines} lines = {1000 * len(found) / lines:.2f} per 1,000 lines")
    counted = pairs()
    if counted is None:
        print("duplicates: tool not installed")
    else:
        print(f"duplicates: {counted[0]}")
        print(f"non-boilerplate pairs with both places in genmodels/ or datamodules/: {counted[1]}")


if __name__ == "__main__":
    main()
