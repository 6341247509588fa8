"""StyleGAN2 + ADA on the digits: ADA's p on a small subset against the full training set.

Trains `experiments/stylegan2/digits.yaml`'s model (default separate lazy regularization) with
``augment: ada`` twice from the same seed, on ``--subset`` training images (``max_train_images``)
and on all of them, and prints ADA's p and r_t every ``--every`` iterations:

    python scripts/ada_digits.py [--iterations 1000] [--subset 200] [--every 100] [--ada-kimg 100]
                                 [--channel-max 64] [--d-channel-max 64] [--seed 0]

``--channel-max`` narrows every layer of both networks (the config's 64 otherwise), and
``--d-channel-max`` sets D's alone: a narrow G with the config's D is cheap on a CPU and leaves D
the capacity to overfit 200 images; nothing else of the config changes.

ADA (Karras et al. 2020, arXiv:2006.06676) raises p when D's sign on real images, r_t, exceeds 0.6:
D overfits a small set, so p should rise there and stay near 0 on the full set.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

from datamodules import DigitsDataModule
from genmodels import StyleGAN2
from genmodels.callbacks import StopAtIteration
from genmodels.gans.stylegan import StyleGAN2Discriminator

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "stylegan2" / "digits.yaml"


class _Trace(pl.Callback):
    def __init__(self, every: int, name: str) -> None:
        self.every, self.name, self.rows, self.window = every, name, [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.in_update:
            return
        pipe = pl_module.augment_pipe
        self.window.append(float(pipe.p))
        if pl_module.iteration % self.every == 0:
            # p oscillates around its balance from one adjustment to the next: its mean over the
            # window says more than the value at one iteration.
            mean_p, self.window = sum(self.window) / len(self.window), []
            self.rows.append((pl_module.iteration, float(pipe.p), float(pipe.rt)))
            print(f"  {self.name}: iteration {pl_module.iteration} p {float(pipe.p):.4f} r_t {float(pipe.rt):.3f} "
                  f"mean p over the last {self.every} iterations {mean_p:.4f}", flush=True)


def run(subset: int | None, args) -> list[tuple[int, float, float]]:
    config = yaml.safe_load(CONFIG.read_text())
    pl.seed_everything(args.seed, verbose=False)
    init_args = dict(config["model"]["init_args"], channel_max=args.channel_max or config["model"]["init_args"]["channel_max"])
    model = StyleGAN2(image_shape=(1, 16, 16), augment="ada", ada_kimg=args.ada_kimg, **init_args)
    if args.d_channel_max:
        model.discriminator = StyleGAN2Discriminator(16, 1, init_args["channel_base"], args.d_channel_max)
    data = DigitsDataModule(**config["data"]["init_args"], max_train_images=subset)
    trace = _Trace(args.every, f"{subset} images" if subset else "full set")
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
                         callbacks=[trace, StopAtIteration(args.iterations)])
    trainer.fit(model, data)
    return trace.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--subset", type=int, default=200)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--ada-kimg", type=float, default=100.0, help="images (thousands) for p to move by 1 (official: 500)")
    parser.add_argument("--channel-max", type=int, default=None, help="width of every layer (the config's: 64)")
    parser.add_argument("--d-channel-max", type=int, default=None, help="width of D's layers (--channel-max's otherwise)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--which", default="both", choices=("both", "subset", "full"), help="run both trainings, or one")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    runs = {}
    if args.which in ("both", "subset"):
        runs[f"{args.subset} images"] = run(args.subset, args)
    if args.which in ("both", "full"):
        runs["full set"] = run(None, args)
    print(f"{'iteration':>9} " + " ".join(f"{name + ' p':>16} {'r_t':>6}" for name in runs))
    for rows in zip(*runs.values()):
        print(f"{rows[0][0]:>9} " + " ".join(f"{p:>16.4f} {rt:>6.3f}" for _, p, rt in rows))


if __name__ == "__main__":
    main()
