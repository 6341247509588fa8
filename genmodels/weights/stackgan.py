"""hanzhanggit/StackGAN-Pytorch generators (``netG_epoch_N.pth`` of ``miscc.utils.save_model``) into `StackGAN`.

The file is the state dict of STAGE1_G (stage I, 64 px) or of STAGE2_G (stage II, 256 px), which
holds its frozen STAGE1_G under ``STAGE1_G.``; the stage is told by that prefix. genmodels'
`StageIGenerator` / `StageIIGenerator` are those networks under other names, with one difference
of layout: STAGE1_G's fully connected layer reads [z, c] and genmodels' reads [c, z], so its
weight's columns are swapped. ``GAN.GF_DIM``, ``Z_DIM``, ``GAN.CONDITION_DIM``, ``TEXT.DIMENSION``
and ``GAN.R_NUM`` are read from the shapes.

The discriminator (``netD_epoch_last.pth``, STAGE1_D / STAGE2_D) is optional: its layers map in order onto
`StackGANDiscriminator`; the official first convolution has no bias (genmodels' gets a zero one) and the
official D ends in a Sigmoid, so genmodels' scores are the official outputs' logits. Without it D is new. The official generators are conditioned on the
char-CNN-RNN sentence embeddings the authors precomputed (``TEXT.DIMENSION`` 1024); genmodels
encodes captions with its own text encoder of that size, which must be trained (``damsm_ckpt``)
before captions give the official images. Given the embeddings, the generators are the official ones.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import torch
from torch import Tensor, nn

from genmodels.weights import WeightsError
from genmodels.weights.common import build, load_in_order, load_mapped, read_state_dict, training_options

__all__ = ["convert"]

_STAGE1_RULES = [
    (r"ca_net\.fc\.", "ca.fc."),
    (r"fc\.([01])\.", r"fc.\1."),
    (r"upsample(\d+)\.([12])\.", None),
    (r"img\.0\.", "to_image.0."),
]
_STAGE2_RULES = [
    (r"ca_net\.fc\.", "ca.fc."),
    (r"encoder\.(\d+)\.", r"encode.\1."),
    (r"hr_joint\.([01])\.", r"joint.\1."),
    (r"residual\.(\d+)\.block\.(\d+)\.", r"residual.\1.body.\2."),
    (r"upsample(\d+)\.([12])\.", None),
    (r"img\.0\.", "to_image.0."),
]


def _rename(key: str, rules: list, source: str, prefix: str = "") -> str:
    for pattern, replacement in rules:
        match = re.match(pattern, key)
        if match is None:
            continue
        if replacement is None:  # upsampleK (1-based attributes) -> up.K-1
            return f"up.{int(match.group(1)) - 1}.{match.group(2)}.{key[match.end():]}"
        return re.sub(pattern, replacement, key, count=1)
    raise WeightsError(f"{source}: tensor {prefix}{key} is not one of StackGAN-Pytorch's STAGE1_G/STAGE2_G")


def _blocks(state: dict[str, Tensor], pattern: str) -> int:
    return len({m.group(1) for k in state for m in [re.match(pattern, k)] if m})


def _need(state: dict[str, Tensor], key: str, source: str, prefix: str = "") -> Tensor:
    if key not in state:
        raise WeightsError(f"{source}: no tensor {prefix}{key}; not a StackGAN-Pytorch generator (netG_epoch_N.pth)")
    return state[key]


def _stage1_kwargs(state: dict[str, Tensor], source: str, prefix: str = "") -> dict[str, Any]:
    ca = _need(state, "ca_net.fc.weight", source, prefix)
    condition_dim, text_dim = int(ca.shape[0]) // 2, int(ca.shape[1])
    fc = _need(state, "fc.0.weight", source, prefix)
    channels = int(fc.shape[0]) // 16
    if channels % 8:
        raise WeightsError(f"{source}: {prefix}fc.0.weight gives {channels} channels at 4x4, not 8 x GAN.GF_DIM")
    return dict(stage1_size=4 * 2 ** _blocks(state, r"upsample(\d+)\."), latent_dim=int(fc.shape[1]) - condition_dim,
                condition_dim=condition_dim, text_dim=text_dim, gf_dim=channels // 8)


def _infer(state: dict[str, Tensor], stage1: dict[str, Tensor], source: str) -> dict[str, Any]:
    if not stage1:
        kwargs = _stage1_kwargs(state, source)
        return dict(kwargs, stage=1, image_shape=(3, kwargs["stage1_size"], kwargs["stage1_size"]))
    kwargs = _stage1_kwargs(stage1, source, "STAGE1_G.")
    gf_dim = int(_need(state, "encoder.0.weight", source).shape[0])
    if gf_dim != kwargs["gf_dim"]:
        raise WeightsError(f"{source}: stage II's GAN.GF_DIM is {gf_dim}, its STAGE1_G's {kwargs['gf_dim']}; genmodels' StackGAN has one gf_dim for both")
    if int(_need(state, "ca_net.fc.weight", source).shape[0]) // 2 != kwargs["condition_dim"]:
        raise WeightsError(f"{source}: stage II's GAN.CONDITION_DIM differs from its STAGE1_G's; genmodels' StackGAN has one condition_dim")
    downs = sum(1 for k, v in state.items() if re.match(r"encoder\.\d+\.weight$", k) and v.dim() == 4 and v.shape[-1] == 4)
    size = kwargs["stage1_size"] // 2**downs * 2 ** _blocks(state, r"upsample(\d+)\.")
    return dict(kwargs, stage=2, image_shape=(3, size, size), residual_blocks=_blocks(state, r"residual\.(\d+)\."))


def _load(module: nn.Module, state: dict[str, Tensor], rules: list, source: str, prefix: str = "") -> None:
    """The official tensors, renamed (and STAGE1_G's fc columns swapped), onto ``module``; all placed, all shapes checked."""

    def swap_fc(name: str, value: Tensor) -> Tensor:
        if name != "fc.0.weight":
            return value
        latent = value.shape[1] - module.ca.fc.weight.shape[0] // 2  # [z, c] columns -> [c, z]
        return torch.cat([value[:, latent:], value[:, :latent]], dim=1)

    load_mapped(module, ((_rename(key, rules, source, prefix), prefix + key, value) for key, value in state.items()),
                source, transform=swap_fc)


def _load_discriminator(module: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """STAGE1_D / STAGE2_D onto `StackGANDiscriminator`: their convolutions and BatchNorms come in the same order
    (encode_img, get_cond_logits, get_uncond_logits); the first convolution has no bias in the official D (zero here)."""
    groups: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        module_name, _, name = key.rpartition(".")
        if not module_name.startswith(("encode_img.", "get_cond_logits.outlogits.", "get_uncond_logits.outlogits.")):
            raise WeightsError(f"{source}: tensor {key} is not one of StackGAN-Pytorch's STAGE1_D/STAGE2_D")
        groups.setdefault(module_name, {})[name] = value
    ours = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    load_in_order(ours, list(groups.items()), source, bias_optional=True, hint=" (another DF_DIM/size?)")


def convert(fmt: str, sources: list[pathlib.Path], options: dict[str, str]) -> nn.Module:
    """A `StackGAN` (stage I or II) with the official generator(s) and, when given, discriminator."""
    from genmodels.gans.stackgan import StackGAN

    files: dict[str, tuple[pathlib.Path, dict[str, Tensor]]] = {}
    for source in map(pathlib.Path, sources):
        found = read_state_dict(source)
        role = "D" if any(k.startswith("encode_img.") for k in found) else "G"
        if role in files:
            raise WeightsError(f"two {role} files: {files[role][0].name} and {source.name}")
        files[role] = (source, found)
    if "G" not in files:
        raise WeightsError("a generator is needed: give netG_epoch_N.pth (stage I or II), with or without netD_epoch_last.pth")
    path, state = files["G"]
    stage1 = {k[len("STAGE1_G."):]: v for k, v in state.items() if k.startswith("STAGE1_G.")}
    own = {k: v for k, v in state.items() if not k.startswith("STAGE1_G.")}
    kwargs = _infer(own, stage1, path.name)
    architecture = {"image_shape", "stage", "stage1_size", "latent_dim", "condition_dim", "gf_dim", "text_dim", "residual_blocks"}
    if "D" in files:  # DF_DIM: the width of D's first convolution
        kwargs["df_dim"] = int(_need(files["D"][1], "encode_img.0.weight", files["D"][0].name).shape[0])
        architecture.add("df_dim")
    extra = training_options(StackGAN, options, architecture, fmt)
    model = build(StackGAN, **kwargs, **extra)
    if kwargs["stage"] == 1:
        _load(model.generator, own, _STAGE1_RULES, path.name)
    else:
        _load(model.stage1, stage1, _STAGE1_RULES, path.name, "STAGE1_G.")
        _load(model.generator, own, _STAGE2_RULES, path.name)
        model._stage1_loaded = True  # the file's STAGE1_G, not a stage1_ckpt
    if "D" in files:
        _load_discriminator(model.discriminator, files["D"][1], files["D"][0].name)
    if model.generator_ema is not None:
        model.generator_ema.load_state_dict(model.generator.state_dict())
    return model
