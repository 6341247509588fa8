"""Weight files in the real formats, written locally (no network), shared by the metric tests.

- an InceptionV3 state dict with random weights, saved from torch-fidelity's own module (its
  constructor insists on loading weights, so it is given an empty placeholder and the fresh
  initialization is kept), re-initialized so activations neither vanish nor explode;
- a random LeNet domain classifier saved by `save_classifier`.

Imported by ``conftest.py`` here and by the callback tests.
"""


from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from genmodels.metrics.classifier import DomainClassifier, LeNet5, save_classifier


def write_random_inception_weights(path, seed: int = 0):
    """Save a random-weight state dict with the keys and shapes of the real Inception file."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class FreshInception(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # keep the fresh initialization
            return None

    placeholder = io.BytesIO()
    torch.save({}, placeholder)
    placeholder.seek(0)
    net = FreshInception("inception-v3-compat", ["2048"], feature_extractor_weights_path=placeholder)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()  # He initialization: activations keep their scale
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth")


def make_classifier(seed: int = 0, channels: int = 1, image_size: int = 32) -> DomainClassifier:
    """An untrained (random) classifier; the global RNG is left alone."""
    meta = dict(image_size=image_size, channels=channels, num_classes=10, dataset="digits", test_accuracy=0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DomainClassifier(LeNet5(channels, 10, image_size), meta)


@pytest.fixture(scope="session")
def lenet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lenet") / "lenet.pt"
    save_classifier(make_classifier(seed=0), path)
    return path


@pytest.fixture
def single_thread():
    """LeNet on 32 px batches gains nothing from a second thread, and OpenMP threads spinning against
    other processes on a busy 2-core machine make such training 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def isolated_weights_and_cache(tmp_path, monkeypatch):
    """No weights or statistics from the machine: hub cache and stats cache live in the test dir."""
    monkeypatch.delenv("GENMODELS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("GENMODELS_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    yield
