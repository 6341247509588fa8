"""Anomaly detection with a trained autoencoder or VAE (``genmodels anomaly``, `genmodels.commands.anomaly`).

Train a model on the "normal" classes only (``datamodules.ClassSubsetDataModule``, e.g.
``experiments/vae/digits_anomaly.yaml`` keeps digits 0-4), then score every held-out image of all
classes. A high score means "unlike the training data":

- ``reconstruction``: per-image mean squared error of the reconstruction (AE or VAE);
- ``elbo``: the negative ELBO in nats (VAE only), averaged over ``--num_samples`` posterior samples
  (An & Cho 2015, "Variational autoencoder based anomaly detection using reconstruction
  probability", use the same kind of likelihood score).

The detection of the other classes is summarised by ROC-AUC and PR-AUC (average precision, with the
anomalous classes as the positive class; a random scorer gets the anomaly fraction), written as
JSON together with the score statistics of each group, and a PNG histogram of the two score
distributions is written next to it.

    genmodels anomaly --ckpt runs/vae/digits_anomaly/checkpoints/last.ckpt --normal 0,1,2,3,4 --out report.json

The datamodule is rebuilt from the checkpoint (LightningCLI records its class path and arguments)
with every class kept; ``--config experiment.yaml`` takes the ``data:`` section of a YAML instead,
``--data_dir`` points it at other files. Only allowed datamodules are built (`genmodels.resolve`, names
compared as text before any import),
and the checkpoint is opened with ``weights_only=True`` (`genmodels.checkpoints.load_model`).
Conditional models are refused: scoring them would need the label of the image being judged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from genmodels.atomic import atomic_write, atomic_write_text
from genmodels.checkpoints import load_checkpoint_safely, load_model
from genmodels.protocols import Autoencoder, class_count
from genmodels.errors import InvalidValue, MissingFile

__all__ = ["run_anomaly", "score_images", "detection_metrics", "save_histogram", "build_datamodule"]

SCORES = ("auto", "reconstruction", "elbo")
_SUBSET = "datamodules.ClassSubsetDataModule"


# ---------------------------------------------------------------------------------------------
# Scores and metrics.


@torch.no_grad()
def score_images(model: Any, images: Tensor, score: str, num_samples: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
    """Anomaly scores (n,) of images in [-1, 1]: ``reconstruction`` error or ``elbo`` (negative ELBO)."""
    if score == "reconstruction":
        return model.reconstruction_error(images)
    if score == "elbo":
        return model.negative_elbo(images, num_samples=num_samples, generator=generator)
    raise InvalidValue(f"score must be 'reconstruction' or 'elbo', got {score!r}")


def detection_metrics(scores: np.ndarray, is_anomaly: np.ndarray) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision, anomalies positive) of ``scores``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(is_anomaly, scores)),
        "pr_auc": float(average_precision_score(is_anomaly, scores)),
        "pr_auc_chance": float(is_anomaly.mean()),
    }


def save_histogram(normal: np.ndarray, anomalous: np.ndarray, path: Path, title: str, bins: int = 40) -> Path:
    """PNG of the two score distributions (densities over shared bins), drawn with PIL."""
    width, height, left, bottom, top = 640, 360, 50, 40, 30
    both = np.concatenate([normal, anomalous])
    # The top 0.5% is folded into the last bin, so a few extreme scores do not squash the plot.
    low, high = float(both.min()), float(np.quantile(both, 0.995))
    high = high if high > low else low + 1.0
    edges = np.linspace(low, high, bins + 1)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas, "RGBA")
    densities = [np.histogram(np.clip(v, low, high), edges)[0] / max(1, len(v)) for v in (normal, anomalous)]
    peak = max(float(d.max()) for d in densities) or 1.0
    bar = (width - left - 10) / bins
    for density, colour in zip(densities, ((31, 119, 180, 140), (255, 127, 14, 140))):
        for i, value in enumerate(density):
            x0 = left + i * bar
            draw.rectangle((x0, height - bottom - value / peak * (height - bottom - top), x0 + bar - 1, height - bottom), fill=colour)
    draw.line((left, height - bottom, width - 10, height - bottom), fill=(0, 0, 0))
    draw.text((left, height - bottom + 6), f"{low:.4g}", fill=(0, 0, 0))
    draw.text((width - 80, height - bottom + 6), f"{high:.4g}", fill=(0, 0, 0))
    draw.text((left, 8), title, fill=(0, 0, 0))
    draw.rectangle((width - 170, 8, width - 160, 18), fill=(31, 119, 180))
    draw.text((width - 155, 7), f"normal ({len(normal)})", fill=(0, 0, 0))
    draw.rectangle((width - 170, 22, width - 160, 32), fill=(255, 127, 14))
    draw.text((width - 155, 21), f"anomalous ({len(anomalous)})", fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: canvas.save(f, format="PNG"))
    return path


# ---------------------------------------------------------------------------------------------
# Data.


def build_datamodule(spec: dict[str, Any], data_dir: Optional[str] = None) -> tuple[Any, Optional[list[int]]]:
    """Instantiate ``{"class_path", "init_args"}`` with every class kept; returns it and the classes it had kept.

    Built by `genmodels.resolve.build_datamodule`: every class name (a subset's ``dataset`` too) is
    resolved against the allowlist as text before anything is imported.

    Raises:
        UserError: a class that is not an allowed datamodule, or arguments it rejects.
    """
    from genmodels.resolve import build_datamodule as build, resolve_datamodule

    class_path = resolve_datamodule(spec.get("class_path"), "the recorded datamodule")
    args = {k: v for k, v in dict(spec.get("init_args") or {}).items() if not str(k).startswith("_")}
    trained_classes = None
    if class_path == _SUBSET:
        # The model saw only some classes; anomaly detection tests on all of them.
        trained_classes = args.pop("classes", None)
    if data_dir is not None:
        args["data_dir"] = data_dir
    return build({"class_path": class_path, "init_args": args}), trained_classes


def datamodule_spec(checkpoint: dict[str, Any], config: Optional[str]) -> dict[str, Any]:
    """The datamodule recorded in the checkpoint, or the ``data:`` section of ``config``."""
    if config is not None:
        from genmodels.resolve import data_section

        return data_section(Path(config))
    hparams = checkpoint.get("datamodule_hyper_parameters")
    if not isinstance(hparams, dict) or "_class_path" not in hparams:
        raise InvalidValue(
            "the checkpoint does not record its datamodule (it was not written by `genmodels fit`); "
            "pass --config <experiment.yaml> to take the data section from a config"
        )
    return {"class_path": hparams["_class_path"], "init_args": hparams}


# ---------------------------------------------------------------------------------------------
# The command.


def parse_classes(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (ranges allowed, mixed with commas) -> sorted distinct ints."""
    classes: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            start, _, end = part.partition("-")
            classes.update(range(int(start), int(end or start) + 1))
    except ValueError:
        raise InvalidValue(f"--normal must list class labels like 0,1,2,3,4 or 0-4, got {text!r}") from None
    if not classes:
        raise InvalidValue("--normal is empty: list the normal classes, e.g. --normal 0,1,2,3,4")
    return sorted(classes)


def run_anomaly(
    ckpt: str,
    normal: Sequence[int],
    out: str,
    score: str = "auto",
    split: str = "test",
    data_dir: Optional[str] = None,
    config: Optional[str] = None,
    num_samples: int = 1,
    batch_size: int = 256,
    histogram: Optional[str] = None,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Score the held-out images of every class and write the JSON report and the histogram PNG.

    Returns:
        The report (also written to ``out``).

    Raises:
        FileNotFoundError: missing checkpoint, config or data.
        ValueError: a model that is not an (unconditional) autoencoder, a score it cannot give,
            normal classes outside the data's labels, or no anomalous class left.
    """
    if not Path(ckpt).is_file():
        raise MissingFile(f"checkpoint not found: {ckpt}")
    if split not in ("val", "test"):
        raise InvalidValue(f"split must be 'val' or 'test', got {split!r}")
    if num_samples < 1:
        raise InvalidValue(f"num_samples must be >= 1, got {num_samples}")
    model = load_model(ckpt, map_location=device)
    score = _choose_score(model, score)
    datamodule, trained_classes = build_datamodule(datamodule_spec(load_checkpoint_safely(ckpt), config), data_dir)
    images, labels = datamodule.split_images(split)
    normal = sorted(int(c) for c in normal)
    is_anomaly = _anomaly_mask(labels, normal)
    if trained_classes is not None and sorted(trained_classes) != normal:
        print(f"genmodels anomaly: warning: the model was trained on classes {sorted(trained_classes)}, "
              f"but --normal is {normal}", file=sys.stderr)

    generator = torch.Generator(device=device).manual_seed(seed)
    scores = torch.cat([
        score_images(model, _to_model_range(chunk.to(device)), score, num_samples, generator).cpu()
        for chunk in images.split(batch_size)
    ]).double().numpy()
    anomalous = is_anomaly.numpy()
    report = {
        "checkpoint": str(ckpt),
        "model_class": type(model).__name__,
        "iteration": model.iteration,
        "dataset": datamodule.dataset_name,
        "split": split,
        "score": score,
        "num_samples": num_samples if score == "elbo" else None,
        "normal_classes": normal,
        "anomalous_classes": sorted({int(v) for v in labels[is_anomaly].tolist()}),
        "trained_classes": None if trained_classes is None else sorted(trained_classes),
        "num_normal": int((~is_anomaly).sum()),
        "num_anomalous": int(is_anomaly.sum()),
        **detection_metrics(scores, anomalous),
        "score_normal": _summary(scores[~anomalous]),
        "score_anomalous": _summary(scores[anomalous]),
    }
    out_path = Path(out)
    histogram_path = Path(histogram) if histogram else out_path.with_suffix(".png")
    what = "negative ELBO (nats)" if score == "elbo" else "reconstruction MSE"
    title = f"{what}, higher = more anomalous; ROC-AUC {report['roc_auc']:.3f}, PR-AUC {report['pr_auc']:.3f}"
    report["histogram"] = str(save_histogram(scores[~anomalous], scores[anomalous], histogram_path, title))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, json.dumps(report, indent=2) + "\n")
    return report


def _choose_score(model: Any, score: str) -> str:
    if not isinstance(model, Autoencoder):
        raise InvalidValue(
            f"anomaly detection needs an autoencoder (genmodels.AutoEncoder or genmodels.VAE); the checkpoint holds "
            f"{type(model).__name__}"
        )
    if class_count(model):
        raise InvalidValue("the checkpoint holds a conditional model: its scores would need the (unknown) label of each image")
    # getattr: a VAE adds the ELBO to the Autoencoder protocol; a plain autoencoder has none.
    has_elbo = callable(getattr(model, "negative_elbo", None))
    if score == "auto":
        return "elbo" if has_elbo else "reconstruction"
    if score not in SCORES:
        raise InvalidValue(f"score must be one of {list(SCORES)}, got {score!r}")
    if score == "elbo" and not has_elbo:
        raise InvalidValue(f"score 'elbo' needs a VAE; {type(model).__name__} has no ELBO (use --score reconstruction)")
    return score


def _anomaly_mask(labels: Tensor, normal: list[int]) -> Tensor:
    present = sorted({int(v) for v in labels.tolist()})
    if present == [-1]:
        raise InvalidValue("the dataset has no class labels, so normal and anomalous images cannot be told apart")
    missing = [c for c in normal if c not in present]
    if missing:
        raise InvalidValue(f"normal classes {missing} do not occur in the held-out data (labels present: {present})")
    is_anomaly = ~torch.isin(labels, torch.tensor(normal, dtype=labels.dtype))
    if not is_anomaly.any():
        raise InvalidValue(f"every held-out class ({present}) is listed as normal: nothing is anomalous")
    return is_anomaly


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "std": float(values.std()), "median": float(np.median(values))}


def _to_model_range(images: Tensor) -> Tensor:
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()
