"""A synthetic attribute dataset with a built-in bias, and a linear generator fitted to it.

Images are 16x16 grey squares with up to three bright quadrants, one per attribute:
``top_left`` is a fair coin, ``bottom_right`` copies it with probability ``agreement`` (0.9: the
two are correlated by construction) and ``top_right`` is an independent fair coin.
`LinearGenerator` is probabilistic PCA (Tipping & Bishop 1999) fitted in closed form: G(z) =
mean + W z with W the principal directions scaled by their standard deviations, so it reproduces
its data's covariance, bias included, and its latent code can be edited like a GAN's.

`trained` fits the generator to biased data (agreement 0.9) and two multi-label classifiers to
unbiased data (agreement 0.5, so the classifier of one attribute has no reason to look at
another's quadrant): whatever ties the attributes together is then the generator's. The
LeNet attribute classifier still leaks a little between quadrants, by an amount that depends on
its initialization; the bias tests use the logistic regression, whose solution is unique.
"""

import functools
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genmodels.apps.attributes import train_attribute_classifier
from genmodels.apps.scores import Scorer, attribute_scorer
from tests.genmodels.apps.control_helpers import single_thread

NAMES = ["top_left", "bottom_right", "top_right"]
QUADRANTS = [(slice(0, 8), slice(0, 8)), (slice(8, 16), slice(8, 16)), (slice(0, 8), slice(8, 16))]


def quadrant_data(n: int, seed: int = 0, agreement: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 1, 16, 16) in [-1, 1] and attributes (n, 3) in {0, 1}."""
    g = torch.Generator().manual_seed(seed)
    first = (torch.rand(n, generator=g) < 0.5).float()
    copied = torch.where(torch.rand(n, generator=g) < agreement, first, 1 - first)
    independent = (torch.rand(n, generator=g) < 0.5).float()
    attributes = torch.stack([first, copied, independent], dim=1)
    images = torch.full((n, 1, 16, 16), -0.8)
    for k, (rows, cols) in enumerate(QUADRANTS):
        images[:, 0, rows, cols] += 1.6 * attributes[:, k, None, None]
    images += 0.1 * torch.randn(images.shape, generator=g)
    return images.clamp(-1, 1), attributes


class QuadrantsDataModule(pl.LightningDataModule):
    """The quadrant data as {"image", "attributes"} batches, with ``attribute_names``."""

    attribute_names = NAMES
    image_shape = (1, 16, 16)
    num_classes = 0
    dataset_name = "quadrants"

    def __init__(self, n_train: int = 1024, n_test: int = 256, batch_size: int = 64, agreement: float = 0.9) -> None:
        super().__init__()
        self.train_set = TensorDataset(*quadrant_data(n_train, seed=0, agreement=agreement))
        self.test_set = TensorDataset(*quadrant_data(n_test, seed=1, agreement=agreement))
        self.batch_size = batch_size

    @staticmethod
    def _collate(items):
        images, attributes = zip(*items)
        return {"image": torch.stack(images), "attributes": torch.stack(attributes)}

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        return DataLoader(self.train_set, self.batch_size, shuffle=True, generator=g, collate_fn=self._collate, drop_last=True)

    def _test_set_loader(self):
        return DataLoader(self.test_set, self.batch_size, collate_fn=self._collate)

    # Lightning's hook name, bound by assignment: this helper module holds no tests.
    test_dataloader = _test_set_loader


class LinearGenerator(nn.Module):
    """G(z) = mean + W z, fitted by PCA to ``images`` (probabilistic PCA without the noise term)."""

    def __init__(self, images: torch.Tensor, latent_dim: int = 8) -> None:
        super().__init__()
        self.image_shape = tuple(images.shape[1:])
        flat = images.flatten(1).double()
        mean = flat.mean(0)
        _, s, v = torch.linalg.svd(flat - mean, full_matrices=False)
        scale = s[:latent_dim] / (len(flat) - 1) ** 0.5
        self.register_buffer("mean", mean.float())
        self.register_buffer("weight", (v[:latent_dim].T * scale).float())
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.mean + z @ self.weight.T).clamp(-1, 1).view(-1, *self.image_shape)


def logistic_scorer(images: torch.Tensor, attributes: torch.Tensor) -> Scorer:
    """Per-pixel logistic regression per attribute, L2-regularized and solved to convergence.

    The problem is convex, so the solution does not depend on the initialization: on unbiased data
    each attribute's weights sit on its own quadrant, a classifier that adds no bias of its own.
    """
    linear = nn.Sequential(nn.Flatten(), nn.Linear(images[0].numel(), attributes.shape[1]))
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(linear(images), attributes) + 1e-3 * linear[1].weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return Scorer(linear, NAMES, "attribute", tuple(images.shape[1:]))


@dataclass
class Trained:
    data: QuadrantsDataModule  # unbiased (agreement 0.5)
    classifier: Any  # AttributeClassifier trained on it
    scorer: Scorer  # its scores
    linear_scorer: Scorer  # logistic regression on the same data
    generator: LinearGenerator  # fitted to biased data (agreement 0.9)


@functools.lru_cache(maxsize=1)
def trained() -> Trained:
    """The classifiers (unbiased data) and the generator (biased data), made once per test process.

    LeNet: three epochs on 1024 images, every attribute above 0.95 test accuracy, about a second of
    one CPU core.
    """
    with single_thread():
        data = QuadrantsDataModule(n_train=1024, n_test=128, agreement=0.5)
        classifier = train_attribute_classifier(data, epochs=3, log=lambda line: None)
        linear = logistic_scorer(*data.train_set.tensors)
    biased_images, _ = quadrant_data(512, seed=2, agreement=0.9)
    return Trained(data, classifier, attribute_scorer(classifier), linear, LinearGenerator(biased_images, latent_dim=8))
