"""``genmodels train-damsm`` and ``genmodels r-precision``.

Examples::

    genmodels train-damsm --dataset cub --data-dir data --epochs 600 --image-size 299 \\
        --backbone inception_v3 --backbone-weights inception_v3_google-0cc3c7bd.pth --out damsm/cub.ckpt
    genmodels train-damsm --dataset shapes --image-size 16 --epochs 3 --out damsm/shapes.ckpt   # CPU, seconds
    genmodels r-precision --ckpt runs/dfgan/cub/checkpoints/last.ckpt --damsm damsm/cub.ckpt --dataset cub

``train-damsm`` fits `genmodels.text.damsm.DAMSM` (text and image encoders, DAMSM loss) on the
training split of a `TextImageDataModule` and writes a weights-only-loadable checkpoint holding
both encoders and the vocabulary; pass it to a GAN as ``--model.init_args.damsm_ckpt``. Use the
same ``--min-word-count`` as the GAN's datamodule (the vocabularies must match; this is checked).
``r-precision`` generates one image per validation caption (one caption per image) and reports
top-1 retrieval among the true and 99 mismatched captions (`genmodels.text.metrics`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from genmodels.apps.commands import default_device, exit_on_value_error

__all__ = ["train_damsm_main", "r_precision_main"]


def _data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=("cub", "oxford102", "shapes"), required=True)
    p.add_argument("--data-dir", default=None, help="data root (default $GENMODELS_DATA, else ./data)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--min-word-count", type=int, default=1)
    p.add_argument("--max-length", type=int, default=18)
    p.add_argument("--synthetic-size", type=int, default=1024, help="shapes only: training images")
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--num-workers", type=int, default=4)


def _datamodule(args: argparse.Namespace):
    from datamodules.text_image import TextImageDataModule

    return TextImageDataModule(args.dataset, args.data_dir, args.batch_size, args.num_workers, args.image_size,
                               max_length=args.max_length, min_word_count=args.min_word_count,
                               synthetic_size=args.synthetic_size)


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels train-damsm", description="Pretrain DAMSM text and image encoders.")
    _data_arguments(p)
    p.add_argument("--epochs", type=int, default=600, help="AttnGAN trains DAMSM 600 epochs on CUB")
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--embedding-dim", type=int, default=300)
    p.add_argument("--backbone", choices=("small", "inception_v3"), default="small")
    p.add_argument("--backbone-weights", default=None, help="inception_v3: local torchvision weights file")
    p.add_argument("--width", type=int, default=64, help="small backbone width")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--out", required=True, help="checkpoint to write (.ckpt)")
    return p


@exit_on_value_error("genmodels train-damsm")
def train_damsm_main(argv: list[str]) -> Path:
    """Fit DAMSM and save its checkpoint to ``--out``."""
    import pytorch_lightning as pl

    from genmodels.text.damsm import DAMSM

    args = _train_parser().parse_args(argv)
    if args.backbone == "inception_v3" and args.backbone_weights is None:
        raise ValueError("--backbone inception_v3 needs --backbone-weights (a local torchvision inception_v3 state dict; "
                         "nothing is downloaded)")
    pl.seed_everything(args.seed)
    datamodule = _datamodule(args)
    model = DAMSM(datamodule.vocab, args.dim, args.embedding_dim, backbone=args.backbone,
                  backbone_weights=args.backbone_weights, width=args.width, lr=args.lr)
    out = Path(args.out)
    trainer = pl.Trainer(max_epochs=args.epochs, max_steps=args.max_steps, accelerator=args.accelerator, devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         default_root_dir=str(out.parent), num_sanity_val_steps=0)
    trainer.fit(model, datamodule)
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out, weights_only=True)
    metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()}
    print(f"DAMSM ({len(datamodule.vocab)} words, backbone {args.backbone}) -> {out}; last losses {metrics}")
    return out


def _r_precision_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels r-precision", description="R-precision of a text-to-image checkpoint.")
    p.add_argument("--ckpt", required=True, help="text-to-image training checkpoint")
    p.add_argument("--damsm", required=True, help="DAMSM checkpoint (genmodels train-damsm) of the same data")
    _data_arguments(p)
    p.add_argument("--n", type=int, default=None, help="captions used (default: one per validation image)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=default_device())
    return p


@exit_on_value_error("genmodels r-precision")
def r_precision_main(argv: list[str]) -> dict[str, float]:
    from genmodels.apps.export import load_generative_model
    from genmodels.text.damsm import load_damsm
    from genmodels.text.metrics import r_precision

    args = _r_precision_parser().parse_args(argv)
    model = load_generative_model(args.ckpt, args.device)
    damsm = load_damsm(args.damsm, args.device)
    records = _datamodule(args).records("val")
    captions = [caps[0] for caps in records.captions][: args.n]
    with torch.no_grad():
        result = r_precision(model, damsm, captions, seed=args.seed)
    print(f"R-precision {result['r_precision']:.4f} (top-1 among {int(result['candidates'])} captions, "
          f"{int(result['n'])} generated images, chance {1 / result['candidates']:.4f})")
    return result
