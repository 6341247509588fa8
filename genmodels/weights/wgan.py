"""martinarjovsky/WassersteinGAN weights (``netG_epoch_*.pth``, ``netD_epoch_*.pth``) into `WGAN`.

The official ``DCGAN_G``/``DCGAN_D`` (models/dcgan.py) are genmodels' DCGAN networks with
``feature_maps`` = ``--ngf`` = ``--ndf``: a 4x4 transposed convolution from z, x2 transposed
convolutions with BatchNorm and ReLU, tanh; the critic mirrors it with LeakyReLU(0.2) and a 4x4
convolution to one score. ``--imageSize``, ``--nz``, ``--ngf``/``--ndf`` and the channels are read
from the tensors' shapes. ``--n_extra_layers``, ``--noBN`` and ``--mlp_G``/``--mlp_D`` networks have
no genmodels counterpart and are refused. The official critic returns the batch mean of its scores;
genmodels' returns one score per image (their mean is the official output).
"""

from __future__ import annotations

import pathlib
import re

from torch import Tensor, nn

from genmodels.weights import WeightsError
from genmodels.weights.common import build, by_role, load_in_order, read_state_dict, training_options

__all__ = ["convert"]


def _role(path: pathlib.Path) -> str:
    if re.match(r"netG(_|\.)", path.name):
        return "G"
    if re.match(r"netD(_|\.)", path.name):
        return "D"
    raise WeightsError(f"{path}: not a WassersteinGAN network file (expected netG_epoch_N.pth or netD_epoch_N.pth)")


def _layers(state: dict[str, Tensor], source: str) -> list[tuple[str, dict[str, Tensor]]]:
    """The official Sequential's layers with tensors, in order: (module name, {param: tensor})."""
    layers: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        if not key.startswith("main."):
            raise WeightsError(f"{source}: tensor {key!r} is not in a DCGAN_G/DCGAN_D 'main' Sequential")
        module, _, name = key[len("main."):].rpartition(".")
        if "extra-layers" in module:
            raise WeightsError(f"{source}: extra layers (--n_extra_layers > 0) have no genmodels counterpart")
        if not re.search(r":(conv|convt|batchnorm)$", module):
            raise WeightsError(f"{source}: layer {module!r} is not one of DCGAN_G/DCGAN_D (--noBN and --mlp_G/--mlp_D networks are not supported)")
        layers.setdefault(module, {})[name] = value
    return list(layers.items())


def _infer(g_layers: list, d_layers: list, sources: dict[str, str]) -> dict:
    """image_shape, latent_dim, feature_maps from G's (or D's) first and last layers."""
    if g_layers:
        first, last = g_layers[0][1]["weight"], g_layers[-1][1]["weight"]
        convs = sum(1 for name, _ in g_layers if name.endswith(":convt"))
        size = 4 * 2 ** (convs - 1)
        kwargs = dict(latent_dim=int(first.shape[0]), image_shape=(int(last.shape[1]), size, size))
        kwargs["feature_maps"] = int(first.shape[1]) // 2 ** (convs - 2)
    else:
        raise WeightsError("a generator is needed: give netG_epoch_N.pth (with or without netD_epoch_N.pth)")
    if d_layers:
        ndf, channels = d_layers[0][1]["weight"].shape[:2]
        convs = sum(1 for name, _ in d_layers if name.endswith(":conv"))
        size = 4 * 2 ** (convs - 1)
        if ndf != kwargs["feature_maps"]:
            raise WeightsError(f"{sources['D']}: --ndf {ndf} differs from --ngf {kwargs['feature_maps']}; genmodels' WGAN has one feature_maps for both")
        if (channels, size, size) != kwargs["image_shape"]:
            raise WeightsError(f"{sources['D']}: critic for {channels}x{size}x{size} images, the generator makes {kwargs['image_shape']}")
    return kwargs


def _with_state(network: nn.Module) -> list[nn.Module]:
    return [m for m in network.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d))]


def convert(fmt: str, sources: list[pathlib.Path], options: dict[str, str]) -> nn.Module:
    """A `WGAN` with the official generator and (when given) critic."""
    from genmodels.gans.wgan import WGAN

    extra = training_options(WGAN, options, {"image_shape", "latent_dim", "feature_maps", "discriminator_norm"}, fmt)
    files = by_role(sources, _role)
    layers = {role: _layers(read_state_dict(path), path.name) for role, path in files.items()}
    names = {role: path.name for role, path in files.items()}
    kwargs = _infer(layers.get("G", []), layers.get("D", []), names)
    model = build(WGAN, **kwargs, **extra)
    for role, network in (("G", model.generator), ("D", model.discriminator)):
        if role in layers:
            load_in_order(_with_state(network), [(f"main.{name}", tensors) for name, tensors in layers[role]], names[role])
    return model
