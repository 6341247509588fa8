"""ajbrock/BigGAN-PyTorch weights (``G.pth``, ``G_ema.pth``, ``D.pth`` of ``utils.save_weights``) into `BigGAN`.

The official 32x32 (CIFAR) networks are genmodels' BigGAN with the switches their flags set
(Brock et al. 2019, arXiv:1809.11096): ``--hier``, ``--G_shared``/``--shared_dim``, ``--dim_z``,
``--G_ch``/``--D_ch``, ``--G_attn``/``--D_attn``. All of them are read from the tensors' names and
shapes; ``--BN_eps`` is not stored and comes from ``--option bn_eps=...`` (train.py's 1e-5 unless
given), as do training settings (``n_critic``, ``lr_g``, ``ema_start``, ...; BigGAN's defaults).

Spectral norm. The official ``layers.SN`` keeps ``u0`` and computes sigma by one power-iteration
step from it on every forward, eval mode included; PyTorch's parametrization reads sigma from its
stored ``u`` and ``v`` in eval mode. ``u`` is set to u0 and ``v`` so that the eval-mode sigma is the
official one (`genmodels.compat.official_eval_sigma_`, which BigGAN's EMA uses too).
"""

from __future__ import annotations

import math
import pathlib
import re
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from genmodels.compat import official_eval_sigma_, spectral_norm_vectors
from genmodels.weights import WeightsError
from genmodels.weights.common import build, by_role, read_state_dict, training_options

__all__ = ["convert"]


def _role(path: pathlib.Path) -> str:
    """G, G_ema or D from the file name utils.save_weights gives it (G.pth, G_ema_best0.pth, ...)."""
    name = path.name
    if name.startswith("G_ema"):
        return "G_ema"
    if re.match(r"G(_|\.|$)", name) and "optim" not in name:
        return "G"
    if re.match(r"D(_|\.|$)", name) and "optim" not in name:
        return "D"
    raise WeightsError(f"{path}: not a BigGAN-PyTorch network file (expected G.pth, G_ema.pth or D.pth from utils.save_weights)")


def _indices(state: dict[str, Tensor], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in state if (m := re.match(pattern, k))})


def _need(state: dict[str, Tensor], key: str, source: str) -> Tensor:
    if key not in state:
        raise WeightsError(f"{source}: tensor {key!r} is missing (not a BigGAN-PyTorch 32x32 network)")
    return state[key]


def generator_options(state: dict[str, Tensor], source: str = "G.pth") -> dict[str, Any]:
    """BigGAN options of an official G: image shape, classes, z, width, shared, hier, attention."""
    blocks = _indices(state, r"blocks\.(\d+)\.0\.conv1\.weight$")
    if not blocks:
        raise WeightsError(f"{source}: no generator blocks (blocks.N.0.conv1.weight); is this a D file?")
    if any(k.endswith(".u1") for k in state):
        raise WeightsError(f"{source}: several singular vectors per layer (--num_G_SVs > 1) are not supported")
    if "linear.u0" not in state:
        raise WeightsError(f"{source}: no spectral norm in G (--G_param other than SN) is not supported")
    widths = {state[f"blocks.{i}.0.conv1.weight"].shape[0] for i in blocks} | {state[f"blocks.{i}.0.conv1.weight"].shape[1] for i in blocks}
    if len(widths) != 1:
        raise WeightsError(f"{source}: G widths {sorted(widths)} change between blocks; only the constant-width 32x32 (CIFAR) architecture is supported")
    channels = widths.pop()
    image_channels = _need(state, "output_layer.2.weight", source).shape[0]
    linear_in = _need(state, "linear.weight", source).shape[1]
    gain = _need(state, "blocks.0.0.bn1.gain.weight", source)
    shared = "shared.weight" in state
    if shared:
        num_classes, shared_dim = state["shared.weight"].shape
        chunk = gain.shape[1] - shared_dim
        hier = chunk > 0
        if hier and chunk != linear_in:
            raise WeightsError(f"{source}: hierarchical z chunks differ ({linear_in} in the input layer, {chunk} in the cBNs)")
        latent_dim = linear_in * (len(blocks) + 1) if hier else linear_in
    else:
        num_classes, shared_dim, hier, latent_dim = gain.shape[0], 128, False, linear_in
    attention = _indices(state, r"blocks\.(\d+)\.1\.gamma$")
    if len(attention) > 1:
        raise WeightsError(f"{source}: G has attention after {len(attention)} blocks (--G_attn with several resolutions); genmodels' BigGAN has one")
    return dict(
        image_shape=(image_channels, 4 * 2 ** len(blocks), 4 * 2 ** len(blocks)), num_classes=int(num_classes),
        latent_dim=int(latent_dim), channels=int(channels), shared_dim=int(shared_dim), hier=hier, shared=shared,
        attention_resolution=8 * 2 ** attention[0] if attention else None,
    )


def discriminator_options(state: dict[str, Tensor], resolution: int, source: str = "D.pth") -> dict[str, Any]:
    """D width, attention blocks and classes of an official D of the given resolution."""
    blocks = _indices(state, r"blocks\.(\d+)\.0\.conv1\.weight$")
    expected = int(math.log2(resolution)) - 1
    if len(blocks) != expected or "embed.weight" not in state:
        raise WeightsError(f"{source}: {len(blocks)} D blocks, a {resolution}x{resolution} BigGAN D has {expected} and a projection embed.weight")
    if any(k.endswith(".u1") for k in state) or "linear.u0" not in state:
        raise WeightsError(f"{source}: D without spectral norm or with several singular vectors (--D_param / --num_D_SVs) is not supported")
    widths = {state[f"blocks.{i}.0.conv2.weight"].shape[0] for i in blocks}
    hidden = {state[f"blocks.{i}.0.conv1.weight"].shape[0] for i in blocks}
    if len(widths) != 1 or hidden != widths:
        raise WeightsError(f"{source}: D widths change between blocks or --D_wide is off; only the constant-width 32x32 (CIFAR) D is supported")
    return dict(
        d_channels=int(widths.pop()), d_attention_blocks=_indices(state, r"blocks\.(\d+)\.1\.gamma$"),
        num_classes=int(state["embed.weight"].shape[0]),
    )


def _set(target: Tensor, value: Tensor, name: str, source: str) -> None:
    if target.shape != value.shape:
        raise WeightsError(f"{source}: tensor {name!r} has shape {tuple(value.shape)}, the network needs {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(value)


def load_layer(layer: nn.Module, state: dict[str, Tensor], prefix: str, source: str) -> None:
    """One conv/linear/embedding: weight (with the official SN's u0 turned into PyTorch's u, v), bias."""
    weight = _need(state, prefix + "weight", source)
    if parametrize.is_parametrized(layer, "weight"):
        parametrizations = layer.parametrizations
        _set(parametrizations.weight.original, weight, prefix + "weight", source)
        u0 = _need(state, prefix + "u0", source)
        u, _ = spectral_norm_vectors(parametrizations.weight[0])
        if u0.numel() != u.numel():
            raise WeightsError(f"{source}: tensor {prefix + 'u0'!r} has shape {tuple(u0.shape)}, the network needs {tuple(u.shape)}")
        official_eval_sigma_(parametrizations.weight[0], parametrizations.weight.original,
                             u0.to(parametrizations.weight.original.dtype))
    else:
        _set(layer.weight, weight, prefix + "weight", source)
    bias = dict(layer.named_parameters(recurse=False)).get("bias")  # embeddings have none, bias=False layers None
    if bias is not None:
        _set(bias, _need(state, prefix + "bias", source), prefix + "bias", source)


def load_generator(generator: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Every tensor of an official G into genmodels' `BigGANGenerator`."""
    used: set[str] = set()

    def layer(module: nn.Module, prefix: str) -> None:
        load_layer(module, state, prefix, source)
        used.update(k for k in state if k.startswith(prefix) and k[len(prefix):] in ("weight", "bias", "u0", "sv0"))

    if generator.shared is not None:
        layer(generator.shared, "shared.")
    layer(generator.linear, "linear.")
    for i, block in enumerate(generator.blocks):
        p = f"blocks.{i}.0."
        layer(block.conv1, p + "conv1."), layer(block.conv2, p + "conv2."), layer(block.shortcut, p + "conv_sc.")
        for bn_name, bn in (("bn1", block.bn1), ("bn2", block.bn2)):
            layer(bn.gain, f"{p}{bn_name}.gain."), layer(bn.bias, f"{p}{bn_name}.bias.")
            for ours, theirs in ((bn.bn.running_mean, "stored_mean"), (bn.bn.running_var, "stored_var")):
                key = f"{p}{bn_name}.{theirs}"
                _set(ours, _need(state, key, source), key, source)
                used.add(key)
    if generator.attention is not None:
        p = f"blocks.{generator.attention_after}.1."
        _load_attention(generator.attention, state, p, source, layer, used)
    bn = generator.output_bn
    for ours, theirs in ((bn.weight, "gain"), (bn.bias, "bias"), (bn.running_mean, "stored_mean"), (bn.running_var, "stored_var")):
        key = f"output_layer.0.{theirs}"
        _set(ours, _need(state, key, source), key, source)
        used.add(key)
    layer(generator.output_conv, "output_layer.2.")
    _check_all_used(state, used, source)


def _load_attention(attention: nn.Module, state: dict[str, Tensor], prefix: str, source: str, layer: Any, used: set[str]) -> None:
    for name, module in (("theta", attention.theta), ("phi", attention.phi), ("g", attention.g), ("o", attention.o)):
        layer(module, f"{prefix}{name}.")
    _set(attention.gamma, _need(state, prefix + "gamma", source).reshape(()), prefix + "gamma", source)
    used.add(prefix + "gamma")


def load_discriminator(discriminator: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Every tensor of an official D into genmodels' `BigGANDiscriminator`."""
    from genmodels.gans.biggan import SelfAttention

    used: set[str] = set()

    def layer(module: nn.Module, prefix: str) -> None:
        load_layer(module, state, prefix, source)
        used.update(k for k in state if k.startswith(prefix) and k[len(prefix):] in ("weight", "bias", "u0", "sv0"))

    index = -1
    for module in discriminator.blocks:
        if isinstance(module, SelfAttention):
            _load_attention(module, state, f"blocks.{index}.1.", source, layer, used)
            continue
        index += 1
        p = f"blocks.{index}.0."
        layer(module.conv1, p + "conv1."), layer(module.conv2, p + "conv2.")
        if module.shortcut is not None:
            layer(module.shortcut, p + "conv_sc.")
    layer(discriminator.linear, "linear.")
    layer(discriminator.embed, "embed.")
    _check_all_used(state, used, source)


def _check_all_used(state: dict[str, Tensor], used: set[str], source: str) -> None:
    left = sorted(set(state) - used)
    if left:
        raise WeightsError(f"{source}: tensor {left[0]!r} has no place in the network ({len(left)} left over)")


#: BigGAN options read from the tensors (an --option may not override them).
ARCHITECTURE_KEYS = {
    "image_shape", "num_classes", "latent_dim", "channels", "shared_dim", "hier", "shared", "attention_resolution",
    "d_channels", "d_attention_blocks",
}


def convert(fmt: str, sources: list[pathlib.Path], options: dict[str, str]) -> nn.Module:
    """A `BigGAN` holding the official G (live), G_ema (its EMA) and D; missing G or G_ema copies the other."""
    from genmodels.gans.biggan import BigGAN

    extra = training_options(BigGAN, options, ARCHITECTURE_KEYS, fmt)
    files = by_role(sources, _role)
    states = {role: read_state_dict(path) for role, path in files.items()}
    g_role = "G_ema" if "G_ema" in states else "G" if "G" in states else None
    if g_role is None:
        raise WeightsError("a generator is needed: give G.pth or G_ema.pth beside D.pth")
    kwargs = generator_options(states[g_role], files[g_role].name)
    if "G" in states and "G_ema" in states and generator_options(states["G"], files["G"].name) != kwargs:
        raise WeightsError(f"{files['G'].name} and {files['G_ema'].name} are different architectures")
    if "D" in states:
        d_kwargs = discriminator_options(states["D"], kwargs["image_shape"][1], files["D"].name)
        if d_kwargs.pop("num_classes") != kwargs["num_classes"]:
            raise WeightsError(f"{files['D'].name} has a different number of classes from the generator")
        kwargs.update(d_kwargs)
    kwargs.setdefault("bn_eps", 1e-5)  # train.py's --BN_eps, not stored in the weights
    kwargs.update(extra)
    model = build(BigGAN, **kwargs)
    load_generator(model.generator, states.get("G", states[g_role]), files.get("G", files[g_role]).name)
    if model.generator_ema is not None:
        load_generator(model.generator_ema, states[g_role], files[g_role].name)
    if "D" in states:
        load_discriminator(model.discriminator, states["D"], files["D"].name)
    return model

