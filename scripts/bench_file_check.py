"""Setup cost of the bad-file check (`datamodules.image_folder.image_file_problem`) per 1,000 JPEGs.

Writes ``--count`` JPEGs at CelebA's aligned size (178 x 218, quality 95, smooth content so the
files are about the size of real faces) into ``--folder`` (kept for reruns), then times, best of
``--repeats`` passes over the files (page cache warm after the first):

1. the default check every split gets at setup (signature and last bytes, no decoding);
2. ``full_decode`` (what ``genmodels check-data --decode`` does);
3. decode + crop + resize to 64 px, what training does per image, for scale.

    python scripts/bench_file_check.py [--folder /tmp/jpegs] [--count 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.image_folder import image_file_problem, load_image


def write_jpegs(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{i + 1:06d}.jpg"
        if not path.exists():
            small = rng.integers(0, 256, (28, 23, 3), dtype=np.uint8)
            Image.fromarray(small).resize((178, 218), Image.Resampling.BICUBIC).save(path, quality=95)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/genmodels_bench_jpegs"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    paths = write_jpegs(args.folder, args.count)
    print(f"{len(paths)} JPEGs, {sum(p.stat().st_size for p in paths) / len(paths) / 1024:.1f} KB each on average")
    passes = {
        "setup check (signature + end bytes)": lambda p: image_file_problem(p),
        "full decode (check-data --decode)": lambda p: image_file_problem(p, full_decode=True),
        "decode + crop + resize to 64 (training)": lambda p: load_image(p, 64, 3, 178),
    }
    for name, check in passes.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for path in paths:
                check(path)
            times.append(time.perf_counter() - start)
        per_1000 = min(times) * 1000 / len(paths)
        print(f"{name}: {per_1000:.3f} s per 1,000 files (best of {args.repeats}: {', '.join(f'{t:.3f}' for t in times)} s)")


if __name__ == "__main__":
    main()
