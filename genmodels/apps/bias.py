"""Bias probing: which classifier scores move together when one attribute is edited.

A generator trained on data where two attributes co-occur tends to tie them together in its
latent space, so editing one also edits the other (the entanglement InterFaceGAN measures between
attribute boundaries, Shen et al. 2020, arXiv:1907.10786). For each target attribute
t, `probe_bias` edits the same latents toward t with `genmodels.apps.controllable.edit_latents`
and reads every score along the path:

- correlation[t, j]: the Pearson correlation between the scores of t and j over all points of the
  path (every sample at every step). The diagonal is 1. Samples' own variation stays in the
  denominator, so an attribute whose change is small next to how much it varies between samples
  reads near 0 even if that small change is systematic; one the generator ties to t (in its
  samples or along the edit) reads near +-1. NaN where a score does not vary at all.
- change[t, j]: the mean change of score j from the start to the last step (score units:
  log-odds for attributes, log-probabilities for classes); the report ranks "what changes most"
  by its magnitude.

The probe reads the generator through the classifier, so it is only as clean as the classifier:
one whose score for j responds to t's features (trained on data where they co-occur, or simply
leaky) shows a correlation the generator does not have, and the larger the edit, the more it
shows. Use classifiers trained on data where the attributes are balanced, and moderate edits.

Outputs (`write_report`): ``correlation.csv`` (rows: edited target, columns: scores),
``change.csv``, ``top_changes.csv`` (per target, the other attributes by |change|) and
``correlation.png`` (a heatmap). Command line (`genmodels.commands.bias`)::

    genmodels bias --ckpt G --classifier C --out bias/ [--targets Smiling,Male] [--steps 8]

Not implemented: significance tests, and disentangling the generator's own sample correlations
from those its edits add (both show in the correlation).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from genmodels.apps.controllable import Decoder, edit_latents
from genmodels.apps.scores import Scorer
from genmodels.images import save_png

__all__ = ["BiasReport", "probe_bias", "path_correlation", "write_report", "heatmap"]


@dataclass
class BiasReport:
    """Correlations and mean changes of every score while editing each target."""

    names: list[str]  # the K score names (columns)
    targets: list[int]  # the T edited columns (rows)
    correlation: Tensor  # (T, K) float64
    change: Tensor  # (T, K) float64

    @property
    def target_names(self) -> list[str]:
        return [self.names[t] for t in self.targets]

    def top_changes(self, top: int = 5) -> list[tuple[str, str, float, float]]:
        """(target, other, mean change, correlation) rows: per target, the ``top`` others by |change|."""
        rows = []
        for row, t in enumerate(self.targets):
            others = [j for j in range(len(self.names)) if j != t]
            others.sort(key=lambda j: -abs(self.change[row, j].item()))
            for j in others[:top]:
                rows.append((self.names[t], self.names[j], self.change[row, j].item(), self.correlation[row, j].item()))
        return rows


def path_correlation(scores: Tensor, target: int) -> Tensor:
    """Pearson correlation of score ``target`` with every score over all points, (K,) float64.

    Args:
        scores: (steps + 1, n, K) scores along an edit.
        target: the edited column.
    """
    points = scores.flatten(0, 1).double()
    centred = points - points.mean(dim=0)
    std = centred.pow(2).mean(dim=0).sqrt()
    covariance = (centred * centred[:, target : target + 1]).mean(dim=0)
    correlation = covariance / (std * std[target])
    return torch.where(std * std[target] > 0, correlation, torch.full_like(correlation, math.nan))


def probe_bias(
    decode: Decoder,
    scorer: Scorer,
    z: Tensor,
    targets: Optional[Sequence[int]] = None,
    steps: int = 8,
    step_size: float = 0.5,
    penalty: float = 0.0,
) -> BiasReport:
    """Edit ``z`` toward each target (all columns by default) and correlate the scores along the path.

    Args:
        decode: z -> images, differentiable.
        scorer: images -> scores (n, K).
        z: the latents every edit starts from (n, d).
        targets: columns to edit.
        steps, step_size, penalty: as in `edit_latents`.
    """
    num_scores = len(scorer.names)
    targets = list(range(num_scores)) if targets is None else list(targets)
    correlations, changes = [], []
    for t in targets:
        edit = edit_latents(decode, scorer, z, t, steps, step_size, penalty=penalty)
        correlations.append(path_correlation(edit.scores, t))
        changes.append((edit.scores[-1] - edit.scores[0]).double().mean(dim=0))
    return BiasReport(list(scorer.names), targets, torch.stack(correlations).cpu(), torch.stack(changes).cpu())


# ---------------------------------------------------------------------------------------------
# Report files


def _write_matrix(path: Path, matrix: Tensor, rows: Sequence[str], columns: Sequence[str]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["edited", *columns])
        for name, values in zip(rows, matrix.tolist()):
            writer.writerow([name, *(f"{v:.6g}" for v in values)])
    return path


def write_report(report: BiasReport, out_dir: Any, top: int = 5) -> dict[str, Path]:
    """Write the CSV files and the heatmap PNG into ``out_dir``; returns their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "correlation": _write_matrix(out / "correlation.csv", report.correlation, report.target_names, report.names),
        "change": _write_matrix(out / "change.csv", report.change, report.target_names, report.names),
    }
    with open(out / "top_changes.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["edited", "attribute", "mean_change", "correlation"])
        writer.writerows((t, o, f"{c:.6g}", f"{r:.6g}") for t, o, c, r in report.top_changes(top))
    paths["top_changes"] = out / "top_changes.csv"
    paths["heatmap"] = save_png(heatmap(report.correlation, report.target_names, report.names), out / "correlation.png")
    return paths


def _colour(value: float) -> tuple[int, int, int]:
    """Diverging map: -1 blue, 0 white, +1 red; NaN grey."""
    if math.isnan(value):
        return (190, 190, 190)
    v = max(-1.0, min(1.0, value))
    end = (214, 39, 40) if v > 0 else (31, 119, 180)
    return tuple(round(255 + abs(v) * (e - 255)) for e in end)


def heatmap(matrix: Tensor, rows: Sequence[str], columns: Sequence[str], cell: int = 40) -> Tensor:
    """A labelled heatmap of values in [-1, 1] as a uint8 (3, H, W) image (rows: edited targets)."""
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width_of = lambda text: int(measure.textbbox((0, 0), text, font=font)[2])  # noqa: E731
    caption = "edited \\ score"
    left = max(width_of(caption), *(width_of(r) for r in rows)) + 10
    top = max(14, *(width_of(c) for c in columns)) + 10
    image = Image.new("RGB", (left + cell * len(columns) + 4, top + cell * len(rows) + 4), "white")
    draw = ImageDraw.Draw(image)
    draw.text((4, top - 14), caption, fill="black", font=font)  # in the corner left of the column labels
    for i, name in enumerate(rows):
        draw.text((4, top + i * cell + cell // 2 - 5), name, fill="black", font=font)
    for j, name in enumerate(columns):
        label = Image.new("RGB", (width_of(name) + 4, 14), "white")
        ImageDraw.Draw(label).text((2, 1), name, fill="black", font=font)
        rotated = label.rotate(90, expand=True)
        image.paste(rotated, (left + j * cell + cell // 2 - rotated.width // 2, top - rotated.height - 4))
    for i, values in enumerate(matrix.tolist()):
        for j, value in enumerate(values):
            x, y = left + j * cell, top + i * cell
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=_colour(value), outline=(255, 255, 255))
            text = "nan" if math.isnan(value) else f"{value:.2f}"
            draw.text((x + (cell - width_of(text)) // 2, y + cell // 2 - 5), text, fill="black", font=font)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()
