"""What ``genmodels compare RUN_DIR...`` (`genmodels.commands.compare`) shows: a table and a plot of several runs, from local files only.

Reads each run directory's W&B run files (offline or synced) or CSV logs through
`genmodels.runs`, prints one row per run (last iteration, last losses, best value of every
``val/fid_*`` metric and the iteration it was reached), and draws the chosen metrics against
``iteration`` into a PNG. Works on compute nodes and laptops without the W&B service.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from PIL import Image, ImageDraw


__all__ = ["summarize", "plot_curves", "format_value", "scalar_keys", "api_history", "nice_ticks"]

#: W&B's bookkeeping keys, which its runs table hides too.
_HIDDEN = ("_step", "_runtime", "_timestamp", "_wandb", "iteration", "epoch", "trainer/global_step")

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _series(rows: list[dict], key: str) -> list[tuple[float, float]]:
    points = {}
    for row in rows:
        value, iteration = row.get(key), row.get("iteration")
        if isinstance(value, (int, float)) and isinstance(iteration, (int, float)) and math.isfinite(value):
            points[float(iteration)] = float(value)  # a resumed run may log an iteration twice: keep the last
    return sorted(points.items())


def scalar_keys(rows: list[dict]) -> list[str]:
    """Every key logged with a number (what W&B's runs table lists), bookkeeping keys left out."""
    keys = {k for row in rows for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return sorted(k for k in keys if not k.startswith(_HIDDEN))


def api_history(path: str, api: Optional[object] = None) -> list[dict]:
    """The logged rows of the W&B run ``entity/project/run_id``, through the public API.

    ``api`` is a ``wandb.Api`` (made here when None; needs credentials).
    """
    if api is None:
        import wandb

        api = wandb.Api()
    run = api.run(path)
    return [dict(row) for row in run.scan_history()]


def summarize(run_dir: Path, rows: list[dict], keys: Optional[list[str]] = None) -> dict:
    """W&B's runs-table row: the last iteration, the last value of every key (or of ``keys``), and
    the best (lowest) of each FID-like metric with the iteration it was reached."""
    summary: dict = {"run": str(run_dir), "iteration": max((r.get("iteration", 0) for r in rows), default=0)}
    for key in keys if keys is not None else scalar_keys(rows):
        series = _series(rows, key)
        summary[key] = series[-1][1] if series else None
    keys = sorted({k for row in rows for k in row})
    for key in [k for k in keys if k.startswith(("val/fid", "val/kid"))]:
        series = _series(rows, key)
        if series:
            best = min(series, key=lambda p: p[1])
            summary[f"{key} best"] = best[1]
            summary[f"{key} best@iteration"] = int(best[0])
    return summary


def plot_curves(runs: dict[str, list[dict]], keys: list[str], out: Path, size: tuple[int, int] = (720, 300)) -> Path:
    """One panel per key, one line per run, against iteration (PIL only: no plotting dependency)."""
    width, height = size
    canvas = Image.new("RGB", (width, height * len(keys) + 24 * len(runs)), "white")
    draw = ImageDraw.Draw(canvas)
    for panel, key in enumerate(keys):
        _panel(draw, runs, key, (0, panel * height, width, height))
    for i, name in enumerate(runs):  # legend
        y = height * len(keys) + 24 * i + 6
        draw.line([(10, y + 6), (40, y + 6)], fill=COLOURS[i % len(COLOURS)], width=3)
        draw.text((48, y), name, fill="black")
    from genmodels.atomic import atomic_write

    atomic_write(out, lambda f: canvas.save(f, format=Image.registered_extensions().get(out.suffix.lower(), "PNG")))
    return out


def _panel(draw: ImageDraw.ImageDraw, runs: dict[str, list[dict]], key: str, box: tuple[int, int, int, int]) -> None:
    x0, y0, width, height = box
    left, right, top, bottom = x0 + 60, x0 + width - 20, y0 + 24, y0 + height - 30
    series = {name: _series(rows, key) for name, rows in runs.items()}
    points = [p for s in series.values() for p in s]
    draw.text((left, y0 + 4), key, fill="black")
    draw.rectangle([left, top, right, bottom], outline="#888888")
    if not points:
        draw.text((left + 10, top + 10), "not logged", fill="#888888")
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x_lo, x_hi = x_ticks[0], x_ticks[-1]
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    for value in x_ticks:  # ticks and labels on both axes, and the x-axis named
        x = left + (value - x_lo) / (x_hi - x_lo) * (right - left)
        draw.line([(x, bottom), (x, bottom + 4)], fill="black")
        draw.line([(x, top), (x, bottom)], fill="#eeeeee")
        draw.text((x - 10, bottom + 6), f"{value:g}", fill="black")
    for value in y_ticks:
        y = bottom - (value - y_lo) / (y_hi - y_lo) * (bottom - top)
        draw.line([(left - 4, y), (left, y)], fill="black")
        draw.line([(left, y), (right, y)], fill="#eeeeee")
        draw.text((x0 + 4, y - 6), f"{value:.3g}", fill="black")
    draw.text((right - 50, y0 + 4), "iteration", fill="#555555")
    for i, s in enumerate(series.values()):
        xy = [(left + (x - x_lo) / (x_hi - x_lo) * (right - left), bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)) for x, y in s]
        if len(xy) > 1:
            draw.line(xy, fill=COLOURS[i % len(COLOURS)], width=2)
        elif xy:
            draw.ellipse([xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2], fill=COLOURS[i % len(COLOURS)])


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 2.5 or 5 times a power of ten apart) covering [lo, hi]."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = [first]
    while ticks[-1] < hi - 1e-12 * step:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def format_value(value: Optional[float]) -> str:
    """A table cell: 4 significant digits, '-' for a missing value."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
