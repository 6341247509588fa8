"""Model files for the app tests: tiny models saved in the training-checkpoint format, a checkpoint
crafted to run code when unpickled, and fixtures that build them once per module (plus
`one_thread`, which the app test modules use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from genmodels import DCGAN
from genmodels.gans.cgan import ConditionalGAN

REPO = Path(__file__).resolve().parents[3]


def save_checkpoint(model: Any, path: Path) -> Path:
    """``model`` in the layout `genmodels fit` writes (state_dict, hyper_parameters, genmodels record)."""
    cls = type(model)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "genmodels": {"model_class": f"{cls.__module__}.{cls.__qualname__}", "iteration": 7},
        },
        path,
    )
    return path


def with_contrast(model: Any) -> Any:
    """An untrained DCGAN draws near-grey images. Calibrating BatchNorm's running statistics on one
    batch and enlarging the output layer's weights makes every seed's image visibly different
    (so tests comparing seeds, and the browser screenshot, see distinct images)."""
    torch.manual_seed(1)
    generator = model.sampling_generator
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: one batch sets the statistics
        [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1].weight.normal_(0.0, 0.3)
        model.train()
        model.sample(64, condition=0 if getattr(model, "num_classes", 0) else None)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def tiny_dcgan(**kwargs: Any) -> DCGAN:
    torch.manual_seed(0)
    return with_contrast(DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, **kwargs))


def tiny_cgan(**kwargs: Any) -> ConditionalGAN:
    torch.manual_seed(0)
    return with_contrast(ConditionalGAN(image_shape=(1, 16, 16), num_classes=10, latent_dim=8, feature_maps=4, **kwargs))


class RunsCode:
    """Unpickling this calls ``exec``: a file holding it runs code when opened without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A DCGAN checkpoint that also holds an object whose unpickling writes ``marker``."""
    model = tiny_dcgan()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "genmodels": {"model_class": "genmodels.gans.dcgan.DCGAN", "iteration": 0},
            "callbacks": RunsCode(marker),
        },
        path,
    )
    return path


@pytest.fixture(autouse=False)
def one_thread():
    """Tiny models run fastest on one CPU thread: OpenMP's hand-offs cost more than these layers
    compute, and far more on a shared, busy CPU. The previous count is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def dcgan_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tiny_dcgan(), tmp_path_factory.mktemp("dcgan") / "dcgan.ckpt")


@pytest.fixture(scope="module")
def ema_dcgan_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tiny_dcgan(ema_decay=0.99), tmp_path_factory.mktemp("ema") / "ema.ckpt")


@pytest.fixture(scope="module")
def cgan_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tiny_cgan(), tmp_path_factory.mktemp("cgan") / "cgan.ckpt")
