"""Text-to-image on the synthetic shapes captions: colour-match accuracy and R-precision at a fixed budget.

Trains a DAMSM (``genmodels train-damsm``) at 16 and 32 px, then StackGAN stage I (16 px) and
AttnGAN (32 px) for ``--iterations`` each on one CPU thread, and prints one JSON line per model:
the colour-match accuracy (`genmodels.text.metrics.shape_colour_accuracy`, 4 colours x 50 samples,
chance 0.25) and the R-precision on the 24 distinct validation captions (chance 1/24), measured
with the run's own DAMSM and, when ``--evaluator`` is given, with that fixed DAMSM checkpoint
(so two versions of the code can be compared with one ruler). Run it with PYTHONPATH pointing at
the tree to measure:

    PYTHONPATH=$PWD python scripts/text_to_image_shapes.py --out /tmp/t2i --iterations 600
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

import genmodels
from datamodules.text_image import SHAPE_COLOURS, TextImageDataModule
from genmodels import AttnGAN, StackGAN
from genmodels.commands import main as cli
from genmodels.text.damsm import load_damsm
from genmodels.text.metrics import r_precision, shape_colour_accuracy


def train_damsm(out: Path, image_size: int, seed: int) -> Path:
    path = out / f"damsm{image_size}.ckpt"
    if not path.is_file():
        cli(["train-damsm", "--dataset", "shapes", "--image-size", str(image_size), "--synthetic-size", "512",
             "--epochs", "10", "--batch-size", "32", "--num-workers", "0", "--dim", "32", "--embedding-dim", "16",
             "--width", "16", "--seed", str(seed), "--accelerator", "cpu", "--out", str(path)])
    return path


def fit(model: pl.LightningModule, dm: TextImageDataModule, iterations: int, root: Path) -> float:
    trainer = pl.Trainer(max_steps=2 * iterations, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0, default_root_dir=str(root))
    start = time.time()
    trainer.fit(model, dm)
    return time.time() - start


def measure(name: str, model: pl.LightningModule, dm: TextImageDataModule, damsm: Path, evaluator: Path | None,
            iterations: int, seconds: float) -> dict:
    model.eval()
    captions = [caps[0] for caps in dm.records("val").captions]
    result = {"model": name, "code": str(Path(genmodels.__file__).parent.parent), "iterations": iterations,
              "train_s": round(seconds, 1), "colour_accuracy": shape_colour_accuracy(model, SHAPE_COLOURS, samples_per_colour=50),
              "r_precision_own": r_precision(model, load_damsm(str(damsm)), captions)["r_precision"]}
    if evaluator is not None:
        result["r_precision_evaluator"] = r_precision(model, load_damsm(str(evaluator)), captions)["r_precision"]
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--iterations", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", nargs="+", default=["stackgan", "attngan"])
    p.add_argument("--evaluator16", type=Path, default=None, help="fixed DAMSM (16 px) for StackGAN's R-precision")
    p.add_argument("--evaluator32", type=Path, default=None, help="fixed DAMSM (32 px) for AttnGAN's R-precision")
    args = p.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    tiny = dict(latent_dim=16, condition_dim=16, text_dim=32, word_embedding_dim=16, lr_g=5e-4, lr_d=5e-4)
    if "stackgan" in args.models:
        damsm = train_damsm(args.out, 16, args.seed)
        pl.seed_everything(args.seed)
        dm = TextImageDataModule("shapes", image_size=16, batch_size=32, num_workers=0, synthetic_size=512)
        model = StackGAN((3, 16, 16), dm.vocab, damsm_ckpt=str(damsm), gf_dim=8, df_dim=8, **tiny)
        seconds = fit(model, dm, args.iterations, args.out)
        print(json.dumps(measure("stackgan", model, dm, damsm, args.evaluator16, args.iterations, seconds)), flush=True)
    if "attngan" in args.models:
        damsm = train_damsm(args.out, 32, args.seed)
        pl.seed_everything(args.seed)
        dm = TextImageDataModule("shapes", image_size=32, batch_size=32, num_workers=0, synthetic_size=512)
        model = AttnGAN((3, 32, 32), dm.vocab, damsm_ckpt=str(damsm), ngf=8, df_dim=8, **tiny)
        seconds = fit(model, dm, args.iterations, args.out)
        print(json.dumps(measure("attngan", model, dm, damsm, args.evaluator32, args.iterations, seconds)), flush=True)


if __name__ == "__main__":
    main()
