"""junyanz/pytorch-CycleGAN-and-pix2pix weights (``latest_net_G_A.pth``, ``latest_net_G.pth``, ...) into `CycleGAN` / `Pix2Pix`.

The official ``BaseModel.save_networks`` writes one plain state dict per network,
``<epoch>_net_<name>.pth``: CycleGAN's ``G_A`` (A -> B), ``G_B`` (B -> A), ``D_A`` (judges domain B)
and ``D_B`` (judges domain A); pix2pix's ``G`` and ``D`` (on source and target stacked as channels).
The published pretrained models (download_cyclegan_model.sh, download_pix2pix_model.sh) are a
lone generator saved as ``latest_net_G.pth``.

Everything architectural is read from the tensors: ``--netG`` (resnet_Nblocks or unet_N, from the
layer structure), ``--ngf``/``--ndf``, ``--n_layers_D``, ``--input_nc``/``--output_nc`` and
``--norm`` (batch norm has affine tensors; instance norm has none, beyond the running buffers that
2018 versions of the code saved and the current one drops). Mapped onto genmodels: CycleGAN's G and
F are ``G_A`` and ``G_B``, its D_Y and D_X are ``D_A`` and ``D_B``; Pix2Pix is the U-Net and the
conditional PatchGAN. Refused in one line: combinations genmodels has no network for
(``--netD pixel``, ``--norm none``, pix2pix with a ResNet G, CycleGAN with a U-Net G, dropout in
CycleGAN's ResNet blocks, different channels in CycleGAN's two domains).

What the tensors cannot say:

- BatchNorm running statistics are dropped: genmodels' U-Net and PatchGAN always normalize with the
  current batch, which is what the official test.py does by default (it calls ``eval()`` only with
  ``--eval``). Outputs equal the official ones in that default mode; ``--eval`` outputs are not
  reproduced.
- Dropout has no tensors. Pix2Pix keeps its default (0.5 in the layers of the official code, on at
  test time, as test.py without ``--eval``); a G trained with ``--no_dropout`` needs
  ``--option dropout=0``.
- CycleGAN's image size is not stored (its networks are fully convolutional): ``--option
  image_size=N`` (default 256, the official ``--crop_size``) sets the model's image shape.
- A lone CycleGAN generator (``latest_net_G.pth`` or only ``latest_net_G_A.pth``) makes a
  ``one_way`` CycleGAN: G holds the weights, F keeps its initialization and every use of it
  (``translate --direction BtoA``, grids, ``cycle_l1``) is refused or left out. A lone ``G_B`` is
  refused: its direction is B -> A. Discriminators that are not given keep genmodels'
  initialization (fine-tuning then starts with a fresh D).
"""

from __future__ import annotations

import pathlib
import re
from typing import Any, Optional

import torch
from torch import Tensor, nn

from genmodels.weights import WeightsError
from genmodels.weights.common import build, by_role, load_mapped, read_state_dict, training_options

__all__ = ["convert"]

_ROLES = {"cyclegan": ("G_A", "G_B", "D_A", "D_B", "G"), "pix2pix": ("G", "D")}
_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _role(path: pathlib.Path, fmt: str) -> str:
    """G_A, G_B, D_A, D_B or G, D from the name save_networks gives ('<epoch>_net_<name>.pth')."""
    match = re.fullmatch(r"(?:.*_)?net_(G_A|G_B|D_A|D_B|G|D)\.pth", path.name)
    if not match or match.group(1) not in _ROLES[fmt]:
        expected = ", ".join(f"latest_net_{r}.pth" for r in _ROLES[fmt])
        raise WeightsError(f"{path}: not a {fmt} network file of pytorch-CycleGAN-and-pix2pix (expected {expected})")
    return match.group(1)


def _norm(state: dict[str, Tensor], conv: str, norm: str, source: str) -> str:
    """``batch`` when the norm layer after ``conv`` has affine tensors, ``instance`` when the conv has a bias."""
    if f"{norm}.weight" in state:
        return "batch"
    if f"{conv}.bias" in state:
        return "instance"
    raise WeightsError(f"{source}: no normalization and no conv bias at {conv!r}: --norm none has no genmodels counterpart")


# -- generators -----------------------------------------------------------------------------------
def _resnet(state: dict[str, Tensor], source: str) -> dict[str, Any]:
    """ResnetGenerator: ngf, blocks, channels, norm, and the official -> genmodels key map."""
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    second_conv = state.get(f"model.{blocks[0]}.conv_block.6.weight")
    if second_conv is not None and second_conv.dim() == 4:  # [pad, conv, norm, ReLU, Dropout, pad, conv, norm]
        raise WeightsError(f"{source}: dropout in the ResNet blocks (trained without --no_dropout) has no counterpart in genmodels' CycleGAN")
    # after the blocks: 2 x (ConvTranspose2d, norm, ReLU), ReflectionPad2d, the last 7x7 convolution
    first, last = state.get("model.1.weight"), state.get(f"model.{blocks[-1] + 8}.weight")
    if first is None or last is None:
        raise WeightsError(f"{source}: tensor 'model.{1 if first is None else blocks[-1] + 8}.weight' (a 7x7 convolution of ResnetGenerator) is missing")
    arch = dict(ngf=int(first.shape[0]), n_blocks=len(blocks), in_channels=int(first.shape[1]),
                out_channels=int(last.shape[0]), norm=_norm(state, "model.1", "model.2", source))

    def rename(key: str) -> str:
        return "net." + key[len("model."):].replace(".conv_block.", ".body.")

    return arch | {"rename": rename}


def _unet_prefixes(state: dict[str, Tensor]) -> list[str]:
    """Key prefix of each UnetSkipConnectionBlock's Sequential, outermost first."""
    prefixes = ["model.model."]
    while True:
        # the submodule sits at index 1 of the outermost block and index 3 of the others
        nested = prefixes[-1] + ("1.model." if len(prefixes) == 1 else "3.model.")
        if not any(k.startswith(nested) for k in state):
            return prefixes
        prefixes.append(nested)


def _unet(state: dict[str, Tensor], source: str) -> dict[str, Any]:
    """UnetGenerator: num_downs, ngf, channels, norm, and the official -> genmodels key map."""
    prefixes = _unet_prefixes(state)
    depth = len(prefixes)
    if depth < 5:
        raise WeightsError(f"{source}: a U-Net of {depth} levels; the official UnetGenerator has at least 5")
    # (official layer prefix, genmodels layer prefix) per level
    names: dict[str, str] = {prefixes[0] + "0.": "down.0.0.", prefixes[0] + "3.": f"up.{depth - 1}.1."}
    for i, p in enumerate(prefixes[1:], start=1):
        names[p + "1."] = f"down.{i}.1."
        if i < depth - 1:
            names |= {p + "2.": f"down.{i}.2.", p + "5.": f"up.{depth - 1 - i}.1.", p + "6.": f"up.{depth - 1 - i}.2."}
        else:  # innermost: downrelu, downconv, uprelu, upconv, upnorm
            names |= {p + "3.": "up.0.1.", p + "4.": "up.0.2."}
    first, last = state.get(prefixes[0] + "0.weight"), state.get(prefixes[0] + "3.weight")
    if first is None or last is None:
        raise WeightsError(f"{source}: tensor {prefixes[0] + ('0' if first is None else '3')}.weight (outermost U-Net layer) is missing")
    arch = dict(num_downs=depth, ngf=int(first.shape[0]), in_channels=int(first.shape[1]), out_channels=int(last.shape[1]),
                norm=_norm(state, prefixes[1] + "1", prefixes[1] + "2", source))

    def rename(key: str) -> str:
        layer = key[: key.rstrip(".").rfind(".") + 1]
        if layer not in names:
            raise WeightsError(f"{source}: tensor {key!r} has no place in a U-Net generator")
        return names[layer] + key[len(layer):]

    return arch | {"rename": rename, "reorder": _skip_last}


def _skip_last(name: str, value: Tensor) -> Tensor:
    """Official blocks concatenate [skip, upsampled], genmodels' U-Net [upsampled, skip]: swap the
    input-channel halves of every transposed convolution that reads a concatenation."""
    match = re.fullmatch(r"up\.(\d+)\.1\.weight", name)
    if not match or match.group(1) == "0":  # the innermost step reads the bottleneck alone
        return value
    half = value.shape[0] // 2
    return torch.cat([value[half:], value[:half]], dim=0)


def _generator(state: dict[str, Tensor], source: str) -> dict[str, Any]:
    if any(".conv_block." in k for k in state):
        return {"kind": "resnet"} | _resnet(state, source)
    if any(k.startswith("model.model.") for k in state):
        return {"kind": "unet"} | _unet(state, source)
    raise WeightsError(f"{source}: neither a ResnetGenerator nor a UnetGenerator (tensor {next(iter(state), '<none>')!r}); is this a D file?")


# -- discriminators -------------------------------------------------------------------------------
def _discriminator(state: dict[str, Tensor], source: str) -> dict[str, Any]:
    """NLayerDiscriminator: ndf, n_layers, input channels, norm; the key map prefixes 'net.'."""
    if any(k.startswith("net.") for k in state):
        raise WeightsError(f"{source}: --netD pixel (PixelDiscriminator) has no genmodels counterpart; use basic or n_layers")
    convs = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and state[k].dim() == 4})
    if not convs or convs[0] != 0 or any(k.startswith("model.model.") or ".conv_block." in k for k in state):
        raise WeightsError(f"{source}: not an NLayerDiscriminator (tensor 'model.0.weight' of a 4x4 convolution expected); is this a G file?")
    first = state["model.0.weight"]
    arch = dict(ndf=int(first.shape[0]), n_layers=len(convs) - 2, in_channels=int(first.shape[1]),
                norm=_norm(state, "model.2", "model.3", source) if len(convs) > 2 else "instance")
    return arch | {"rename": lambda key: "net." + key[len("model."):]}


# -- loading --------------------------------------------------------------------------------------
def _load(network: nn.Module, state: dict[str, Tensor], rename: Any, source: str, prefix: str = "", reorder: Any = None) -> None:
    """The official tensors onto ``network`` by name, every key and shape checked; norm statistics dropped."""
    kept = ((prefix + rename(key), key, value) for key, value in state.items() if key.rsplit(".", 1)[-1] not in _STATS)
    load_mapped(network, kept, source, transform=reorder, fill=_zero_innermost_bias)  # statistics: test.py's batch norm


def _zero_innermost_bias(name: str, own: Tensor) -> Optional[Tensor]:
    """genmodels' innermost U-Net conv has a bias where the official one (batch norm) has none."""
    return own.new_zeros(own.shape) if name.endswith(".bias") and name.startswith("down.") else None


def _same(values: dict[str, Any], what: str, option: str) -> Any:
    distinct = set(values.values())
    if len(distinct) > 1:
        raise WeightsError(f"{option} differs between the files ({', '.join(f'{k}: {v}' for k, v in values.items())}); genmodels' {what} has one")
    return distinct.pop()


def _cyclegan(states: dict[str, dict], names: dict[str, str], options: dict[str, str]) -> nn.Module:
    from genmodels.gans.cyclegan import CycleGAN

    if "G" in states and ("G_A" in states or "G_B" in states):
        raise WeightsError(f"{names['G']} is a lone generator (= G_A); give it or latest_net_G_A.pth/latest_net_G_B.pth, not both")
    if "G" in states:
        states["G_A"], names["G_A"] = states.pop("G"), names.pop("G")
    if "G_A" not in states:
        raise WeightsError("a CycleGAN needs latest_net_G_A.pth (or a lone latest_net_G.pth); a lone G_B translates B -> A: import it as latest_net_G.pth with your domains swapped")
    gens = {role: _generator(states[role], names[role]) for role in ("G_A", "G_B") if role in states}
    discs = {role: _discriminator(states[role], names[role]) for role in ("D_A", "D_B") if role in states}
    for role, arch in gens.items():
        if arch["kind"] != "resnet":
            raise WeightsError(f"{names[role]}: --netG unet_{2 ** arch['num_downs']}: genmodels' CycleGAN has ResNet generators only (resnet_6blocks, resnet_9blocks, ...)")
        if arch["in_channels"] != arch["out_channels"]:
            raise WeightsError(f"{names[role]}: --input_nc {arch['in_channels']} and --output_nc {arch['out_channels']} differ; genmodels' CycleGAN has one image shape for both domains")
    kwargs: dict[str, Any] = {
        "ngf": _same({names[r]: a["ngf"] for r, a in gens.items()}, "CycleGAN", "--ngf"),
        "n_blocks": _same({names[r]: a["n_blocks"] for r, a in gens.items()}, "CycleGAN", "the number of ResNet blocks (--netG)"),
        "norm": _same({names[r]: a["norm"] for r, a in (gens | discs).items()}, "CycleGAN", "--norm"),
    }
    channels = _same({names[r]: a["in_channels"] for r, a in (gens | discs).items()}, "CycleGAN", "the number of channels")
    if discs:
        kwargs["ndf"] = _same({names[r]: a["ndf"] for r, a in discs.items()}, "CycleGAN", "--ndf")
        kwargs["n_layers_d"] = _same({names[r]: a["n_layers"] for r, a in discs.items()}, "CycleGAN", "--n_layers_D")
    size = _image_size(options)
    kwargs |= {"image_shape": (channels, size, size), "one_way": "G_B" not in gens}
    extra = training_options(CycleGAN, options, set(kwargs) | {"n_blocks", "ndf", "n_layers_d"}, "cyclegan")
    model = build(CycleGAN, **kwargs, **extra)
    slots = {"G_A": model.generator.G, "G_B": model.generator.F, "D_A": model.discriminator.D_Y, "D_B": model.discriminator.D_X}
    for role, arch in (gens | discs).items():
        _load(slots[role], states[role], arch["rename"], names[role])
    return model


def _image_size(options: dict[str, str]) -> int:
    text = options.pop("image_size", "256")
    if not text.isdigit() or int(text) < 4 or int(text) % 4:
        raise WeightsError(f"--option image_size={text}: give a positive multiple of 4 (the official --crop_size, 256 by default)")
    return int(text)


def _pix2pix(states: dict[str, dict], names: dict[str, str], options: dict[str, str]) -> nn.Module:
    from genmodels.gans.pix2pix import Pix2Pix

    if "G" not in states:
        raise WeightsError("a generator is needed: give latest_net_G.pth (with or without latest_net_D.pth)")
    g = _generator(states["G"], names["G"])
    if g["kind"] != "unet":
        raise WeightsError(f"{names['G']}: --netG resnet_{g['n_blocks']}blocks: genmodels' Pix2Pix has a U-Net generator only (unet_256, unet_128)")
    size = 2 ** g["num_downs"]
    kwargs: dict[str, Any] = {"image_shape": (g["out_channels"], size, size), "source_channels": g["in_channels"], "ngf": g["ngf"], "norm": g["norm"]}
    if "D" in states:
        d = _discriminator(states["D"], names["D"])
        if d["in_channels"] != g["in_channels"] + g["out_channels"]:
            raise WeightsError(f"{names['D']}: D sees {d['in_channels']} channels, not the {g['in_channels']} + {g['out_channels']} of (source, target)")
        if d["norm"] != g["norm"]:
            raise WeightsError(f"--norm differs between the files ({names['G']}: {g['norm']}, {names['D']}: {d['norm']}); genmodels' Pix2Pix has one")
        kwargs |= {"ndf": d["ndf"], "n_layers_d": d["n_layers"]}
    if "image_size" in options:
        raise WeightsError(f"--option image_size: pix2pix reads it from the U-Net's depth ({size} px)")
    extra = training_options(Pix2Pix, options, set(kwargs) | {"ndf", "n_layers_d", "num_downs"}, "pix2pix")
    model = build(Pix2Pix, **kwargs, **extra)
    _load(model.generator, states["G"], g["rename"], names["G"], reorder=g["reorder"])
    if "D" in states:
        _load(model.discriminator, states["D"], d["rename"], names["D"], prefix="net.")  # ConditionalPatchGAN.net
    return model


def _without_data_parallel(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """save_networks saves ``net.module``; a state dict saved from the DataParallel wrapper itself has 'module.' keys."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def convert(fmt: str, sources: list[pathlib.Path], options: dict[str, str]) -> nn.Module:
    """A `CycleGAN` (fmt ``cyclegan``) or `Pix2Pix` (fmt ``pix2pix``) holding the official networks."""
    if fmt not in _ROLES:
        raise WeightsError(f"junyanz converts cyclegan and pix2pix, not {fmt!r}")
    files = by_role(sources, lambda path: _role(path, fmt))
    states = {role: _without_data_parallel(read_state_dict(path)) for role, path in files.items()}
    names = {role: path.name for role, path in files.items()}
    options = dict(options)
    return _cyclegan(states, names, options) if fmt == "cyclegan" else _pix2pix(states, names, options)
