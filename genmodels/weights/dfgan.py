"""tobran/DF-GAN checkpoints (``state_epoch_N.pth`` of ``lib.utils.save_models``) into `DFGAN`.

``save_models`` writes ``{'model': {'netG', 'netD', 'netC'}, 'optimizers': {...}, 'epoch'}``, the
state dicts of the CVPR 2022 code's NetG, NetD and NetC (code/models/GAN.py), with ``module.``
prefixes when the run was multi-GPU. genmodels' `DFGenerator` is NetG and `DFDiscriminator` is NetD
followed by NetC, under other names. The image size, ``nf``, ``z_dim`` and ``cond_dim`` are read from
the tensors' shapes. The optimizers' state is not carried over (fine-tuning starts fresh Adam
moments). The DAMSM text encoder DF-GAN conditions on is not in this file: import the authors' with
``genmodels import-weights damsm`` and give ``--option damsm_ckpt=FILE``; its encoder and vocabulary
are then loaded into the model (and the written file), so captions give the authors' embeddings.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

from torch import Tensor, nn

from genmodels.weights import WeightsError
from genmodels.weights.common import build, load_mapped, read_record, training_options

__all__ = ["convert"]

#: official name pattern -> genmodels name (after the generator./discriminator. prefix).
_G_RULES = [
    (r"fc\.(weight|bias)", r"fc.\1"),
    (r"GBlocks\.(\d+)\.c1\.", r"blocks.\1.conv1."),
    (r"GBlocks\.(\d+)\.c2\.", r"blocks.\1.conv2."),
    (r"GBlocks\.(\d+)\.c_sc\.", r"blocks.\1.shortcut."),
    (r"GBlocks\.(\d+)\.fuse([12])\.affine0\.fc_(gamma|beta)\.linear([12])\.", None),
    (r"GBlocks\.(\d+)\.fuse([12])\.affine1\.fc_(gamma|beta)\.linear([12])\.", None),
    (r"to_rgb\.1\.", r"to_image.1."),
]
_D_RULES = [
    (r"conv_img\.", r"stem."),
    (r"DBlocks\.(\d+)\.conv_r\.([02])\.", r"blocks.\1.residual.\2."),
    (r"DBlocks\.(\d+)\.conv_s\.", r"blocks.\1.shortcut."),
    (r"DBlocks\.(\d+)\.gamma$", r"blocks.\1.scale"),
]
_C_RULES = [(r"joint_conv\.([02])\.", r"joint.\1.")]


def _rename(key: str, rules: list, network: str, source: str) -> str:
    for pattern, replacement in rules:
        match = re.match(pattern, key)
        if not match:
            continue
        if replacement is None:  # DFBLK affine0/affine1 -> DFBlock affine1/affine2, linear1/2 -> Sequential 0/2
            block, fuse, kind, linear = match.groups()
            affine = 1 if ".affine0." in key else 2
            return f"blocks.{block}.fuse{fuse}.affine{affine}.{kind}.{0 if linear == '1' else 2}.{key[match.end():]}"
        return re.sub(pattern, replacement, key, count=1)
    raise WeightsError(f"{source}: tensor {network}.{key} is not one of DF-GAN's (CVPR 2022 code) {network}")


def _networks(path: pathlib.Path) -> dict[str, dict[str, Tensor]]:
    """netG / netD / netC state dicts, ``module.`` prefixes removed."""
    record = read_record(path, "PyTorch checkpoint")
    if not isinstance(record, dict) or not isinstance(record.get("model"), dict) or "netG" not in record["model"]:
        raise WeightsError(f"{path}: not a DF-GAN checkpoint (expected the dict lib.utils.save_models writes, with model.netG)")
    networks = {}
    for name in ("netG", "netD", "netC"):
        state = record["model"].get(name)
        if state is None:
            continue
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise WeightsError(f"{path}: model.{name} is not a state dict of tensors")
        networks[name] = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if ("netD" in networks) != ("netC" in networks):
        raise WeightsError(f"{path}: netD and netC come together (the discriminator is NetD followed by NetC)")
    return networks


def _infer(networks: dict[str, dict[str, Tensor]], source: str) -> dict[str, Any]:
    g = networks["netG"]
    try:
        fc, blocks = g["fc.weight"], sorted({int(k.split(".")[1]) for k in g if k.startswith("GBlocks.")})
        condition = g["GBlocks.0.fuse1.affine0.fc_gamma.linear1.weight"].shape[1]
        channels = g["to_rgb.1.weight"].shape[0]
    except KeyError as err:
        raise WeightsError(f"{source}: netG has no tensor {err.args[0]}; not DF-GAN's NetG (CVPR 2022 code)") from None
    if channels != 3:
        raise WeightsError(f"{source}: netG makes {channels}-channel images; genmodels' DFGAN makes RGB")
    latent_dim, ngf = int(fc.shape[1]), int(fc.shape[0]) // (8 * 16)
    kwargs = dict(image_shape=(3, 4 * 2 ** len(blocks), 4 * 2 ** len(blocks)), latent_dim=latent_dim, ngf=ngf,
                  text_dim=int(condition) - latent_dim)
    if "netD" in networks:
        try:
            kwargs["ndf"] = int(networks["netD"]["conv_img.weight"].shape[0])
        except KeyError:
            raise WeightsError(f"{source}: netD has no tensor conv_img.weight; not DF-GAN's NetD") from None
    return kwargs


def _text_encoder_kwargs(path: str, text_dim: int) -> dict[str, Any]:
    """vocab, word_embedding_dim and text_encoder of the DAMSM file (``import-weights damsm``) DF-GAN was trained with."""
    from genmodels.checkpoints import CheckpointError
    from genmodels.text.damsm import load_damsm

    try:
        damsm = load_damsm(path)
    except (CheckpointError, OSError) as err:
        raise WeightsError(f"--option damsm_ckpt={path}: {str(err).splitlines()[0]}") from None
    if damsm.hparams.dim != text_dim:
        raise WeightsError(f"--option damsm_ckpt={path}: its sentence features have {damsm.hparams.dim} values, the DF-GAN weights take {text_dim} (cond_dim)")
    return dict(vocab=list(damsm.vocab), word_embedding_dim=int(damsm.hparams.embedding_dim), text_encoder=str(damsm.hparams.text_encoder))


def _load(module: nn.Module, rules_by_net: dict[str, tuple[dict[str, Tensor], list]], source: str) -> None:
    """The official networks' tensors, renamed, onto ``module``; every tensor placed and every shape checked."""
    own = set(module.state_dict())
    tensors = []
    for network, (net_state, rules) in rules_by_net.items():
        for key, value in net_state.items():
            name = _rename(key, rules, network, source)
            if name not in own and name.endswith(".weight") and ".shortcut." in name:
                continue  # NetD's D_Block has conv_s even when fin == fout, where forward never uses it
            tensors.append((name, f"{network}.{key}", value))
    load_mapped(module, tensors, source)


def convert(fmt: str, sources: list[pathlib.Path], options: dict[str, str]) -> nn.Module:
    """A `DFGAN` with the official generator and (when saved) discriminator."""
    from genmodels.gans.dfgan import DFGAN

    if len(sources) != 1:
        raise WeightsError(f"dfgan takes one file (state_epoch_N.pth, as lib.utils.save_models writes it), got {len(sources)}")
    path = pathlib.Path(sources[0])
    networks = _networks(path)
    kwargs = _infer(networks, path.name)
    extra = training_options(DFGAN, options, {"image_shape", "latent_dim", "ngf", "ndf", "text_dim"}, fmt)
    if extra.get("damsm_ckpt") is not None:
        kwargs.update(_text_encoder_kwargs(str(extra["damsm_ckpt"]), kwargs["text_dim"]))
    model = build(DFGAN, **kwargs, **extra)
    if model.damsm_ckpt is not None:
        model.load_text_encoder()  # the authors' text encoder and vocabulary go into the written file
    _load(model.generator, {"netG": (networks["netG"], _G_RULES)}, path.name)
    if "netD" in networks:
        _load(model.discriminator, {"netD": (networks["netD"], _D_RULES), "netC": (networks["netC"], _C_RULES)}, path.name)
    if model.generator_ema is not None:
        model.generator_ema.load_state_dict(model.generator.state_dict())
    return model
