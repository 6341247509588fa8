"""A callback the DDP tests inject through the CLI to see every rank's state."""

from pathlib import Path

import pytorch_lightning as pl
import torch


class DumpRankState(pl.Callback):
    """Save each rank's weights and the first real batch it trained on to ``out_dir/rank<r>.pt``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.first_batch = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.first_batch is None:
            self.first_batch = batch["image"].detach().cpu().clone()

    def on_train_end(self, trainer, pl_module):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save(
            {"state_dict": state, "first_batch": self.first_batch, "iteration": pl_module.iteration,
             "world_size": trainer.world_size},
            self.out_dir / f"rank{trainer.global_rank}.pt",
        )
