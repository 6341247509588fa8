"""The authors' per-epoch learning-rate rule of junyanz/pytorch-CycleGAN-and-pix2pix, computed as their code does."""

import warnings

import torch


def official_lr_per_epoch(n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> list[float]:
    """The multiplier in each training epoch.

    models/networks.py get_scheduler('linear'): LambdaLR with
    ``1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1)``; train.py calls
    update_learning_rate() (one scheduler.step()) at the start of every epoch.
    """
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    rule = lambda epoch: 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rule)
    rates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": the authors' order
        for _ in range(epoch_count, n_epochs + n_epochs_decay + 1):
            scheduler.step()
            rates.append(optimizer.param_groups[0]["lr"])
    return rates
