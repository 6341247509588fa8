"""``genmodels anomaly``: score held-out images with an autoencoder or VAE trained on normal classes (`genmodels.apps.anomaly`).

Example::

    genmodels anomaly --ckpt runs/vae/digits_anomaly/checkpoints/last.ckpt --normal 0,1,2,3,4 --out report.json

writes the JSON report (ROC-AUC, PR-AUC, score statistics) and a PNG histogram next to it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import common as c

NAME = "anomaly"
#: genmodels.apps.anomaly.SCORES, spelled here so that `--help` does not import torch (a test keeps them equal).
SCORES = ("auto", "reconstruction", "elbo")
HELP = "anomaly detection with an AE/VAE trained on normal classes: ROC-AUC, PR-AUC, histogram"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=(
        "Score held-out images with an autoencoder or VAE trained on normal classes; report ROC-AUC and PR-AUC "
        "of the other classes (JSON) and a histogram of the scores (PNG)."))
    c.add_ckpt(p, "training checkpoint of a genmodels.AutoEncoder or genmodels.VAE")
    c.option(p, "--normal", required=True, metavar="CLASSES", help="normal classes, e.g. 0,1,2,3,4 or 0-4; all others are anomalous")
    c.add_out(p, "JSON report to write")
    c.option(p, "--score", default="auto", choices=SCORES, help="auto: elbo for a VAE, reconstruction for an AE (default auto)")
    c.option(p, "--split", default="test", choices=("val", "test"), help="held-out split to score (default test)")
    c.add_num_samples(p, 1, "posterior samples per image for the elbo score")
    c.option(p, "--data-dir", default=None, metavar="DIR", help="data root, overriding the one recorded in the checkpoint")
    c.option(p, "--config", default=None, metavar="YAML", help="experiment YAML whose data section replaces the checkpoint's")
    c.add_batch_size(p, 256)
    c.option(p, "--histogram", default=None, metavar="PATH", help="PNG path (default: the report's path with .png)")
    c.add_device(p, "cpu")
    c.add_seed(p, "seed of the posterior samples of the elbo score")
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    from genmodels.apps.anomaly import parse_classes, run_anomaly

    normal = parse_classes(args.normal)
    inputs = [args.ckpt, args.config]
    out = c.check_output(args.out, inputs=inputs, overwrite=args.overwrite, suffixes=(".json",))
    histogram = Path(args.histogram) if args.histogram else out.with_suffix(".png")
    c.check_output(histogram, inputs=inputs, overwrite=args.overwrite, flag="--histogram", suffixes=(".png",))
    model = c.load_checkpoint_model(args.ckpt, "cpu")
    # A batch with its reconstruction and the encoder/decoder activations, per posterior sample.
    c.check_memory(c.image_bytes(model.image_shape, args.batch_size * args.num_samples, 4 * 32),
                   f"--batch-size {args.batch_size} x --num-samples {args.num_samples}", "lower --batch-size or --num-samples",
                   args.max_memory_gb)
    del model
    report = run_anomaly(
        args.ckpt, normal, str(out), args.score, args.split, args.data_dir, args.config,
        args.num_samples, args.batch_size, str(histogram), args.device, args.seed,
    )  # fmt: skip
    print(
        f"{report['score']} score on {report['dataset']} {report['split']}: normal {report['normal_classes']} "
        f"({report['num_normal']}) vs anomalous {report['anomalous_classes']} ({report['num_anomalous']}): "
        f"ROC-AUC {report['roc_auc']:.4f}, PR-AUC {report['pr_auc']:.4f} (chance {report['pr_auc_chance']:.3f})\n"
        f"report: {out}\nhistogram: {report['histogram']}"
    )
    return report
