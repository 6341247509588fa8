"""``genmodels train-damsm``: pretrain the DAMSM text and image encoders (AttnGAN) for text-to-image models.

Examples::

    genmodels train-damsm --dataset cub --data-dir data --epochs 600 --image-size 299 \\
        --backbone inception_v3 --backbone-weights inception_v3_google-0cc3c7bd.pth --out damsm/cub.ckpt
    genmodels train-damsm --dataset shapes --image-size 16 --epochs 3 --out damsm/shapes.ckpt   # CPU, seconds

The checkpoint (weights-only loadable) holds both encoders and the vocabulary; pass it to a GAN as
``--model.init_args.damsm_ckpt``. Use the same ``--min-word-count`` as the GAN's datamodule.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmodels.commands import _text_data
from genmodels.commands import common as c

NAME = "train-damsm"
HELP = "pretrain DAMSM text and image encoders (AttnGAN, DF-GAN) on a text-image dataset"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description="Pretrain DAMSM text and image encoders.")
    _text_data.add_data_arguments(p)
    c.option(p, "--epochs", type=c.positive_int, default=600, help="training epochs (default 600, as AttnGAN on CUB)")
    c.option(p, "--max-steps", type=int, default=-1, help="stop after this many optimizer steps (default -1: no limit)")
    c.option(p, "--dim", type=c.positive_int, default=256, help="joint embedding size (default 256)")
    c.option(p, "--embedding-dim", type=c.positive_int, default=300, help="word embedding size (default 300)")
    c.option(p, "--backbone", choices=("small", "inception_v3"), default="small", help="image encoder (default small)")
    c.option(p, "--backbone-weights", default=None, metavar="PATH", help="inception_v3: local torchvision weights file")
    c.option(p, "--width", type=c.positive_int, default=64, help="small backbone width (default 64)")
    c.option(p, "--lr", type=c.positive_float, default=0.002, help="Adam learning rate (default 0.002)")
    c.option(p, "--lr-decay", type=c.positive_float, default=0.98,
             help="per-epoch factor of the learning rate while above lr / 10 (default 0.98, AttnGAN's; 1: constant)")
    c.option(p, "--one-optimizer", action="store_true",
             help="keep one Adam for the whole run (AttnGAN builds a new Adam every epoch)")
    c.add_seed(p)
    c.option(p, "--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu (default auto)")
    c.add_out(p, "checkpoint to write (.ckpt)")
    c.add_max_memory(p)
    return p


def run(args: argparse.Namespace) -> Path:
    _text_data.check_data_arguments(args)
    out = c.check_output(args.out, inputs=[args.backbone_weights], overwrite=args.overwrite)
    if args.backbone == "inception_v3" and args.backbone_weights is None:
        raise c.UserError("--backbone inception_v3 needs --backbone-weights (a local torchvision inception_v3 state dict; "
                          "nothing is downloaded)")
    if args.backbone_weights is not None and not Path(args.backbone_weights).is_file():
        raise c.UserError(f"--backbone-weights {args.backbone_weights} not found")
    c.check_memory(c.image_bytes((3, args.image_size, args.image_size), args.batch_size, 4 * 64),
                   f"--batch-size {args.batch_size} at --image-size {args.image_size}", "lower --batch-size or --image-size",
                   args.max_memory_gb)
    import pytorch_lightning as pl

    from genmodels.text.damsm import DAMSM

    # AttnGAN pretrain_DAMSM.py: Scale(int(299 * 76 / 64)) = 355, RandomCrop(299), flip (the
    # datamodule's `attngan` preprocessing at --image-size 299, and random_flip).
    datamodule = _text_data.datamodule(args, random_flip=True)
    # `vocabulary` (unlike `vocab`, which is None while the captions are missing) reads the caption
    # files now, so missing data stops here with the files and layout it expects.
    vocab = datamodule.vocabulary.words
    pl.seed_everything(args.seed, verbose=False)
    model = DAMSM(vocab, args.dim, args.embedding_dim, backbone=args.backbone,
                  backbone_weights=args.backbone_weights, width=args.width, lr=args.lr, lr_decay=args.lr_decay,
                  new_optimizer_each_epoch=not args.one_optimizer)
    trainer = pl.Trainer(max_epochs=args.epochs, max_steps=args.max_steps, accelerator=args.accelerator, devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         default_root_dir=str(out.parent), num_sanity_val_steps=0)
    trainer.fit(model, datamodule)
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out, weights_only=True)
    metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()}
    print(f"DAMSM ({len(vocab)} words, backbone {args.backbone}) -> {out}; last losses {metrics}")
    return out
