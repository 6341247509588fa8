"""``stylegan2-ada``: NVlabs/stylegan2-ada-pytorch network pickles -> `genmodels.StyleGAN2`.

A ``network-snapshot-*.pkl`` (or a published ``*.pkl``, same layout) holds ``G``, ``D``, ``G_ema``,
``augment_pipe`` and ``training_set_kwargs``; it is read by `genmodels.weights.unpickle` (tensors
and init kwargs only, no code). The architecture comes from the networks' stored init kwargs: image
size and channels, z/w sizes, mapping layers, channel base/max, minibatch-stddev group, w_avg decay
and the number of classes (c_dim; class-conditional StyleGAN2 with a projection D). Kwargs
genmodels does not implement (another G/D architecture, activation or resampling filter, mapping
features other than w_dim) are refused in one line.

Tensor names follow the official ``training/networks.py``; values are taken as they are (genmodels'
StyleGAN2 layers store weights and biases as the official ones do, `genmodels.nn.equalized`
``scale_bias``), except for shapes: the constant input, noise strengths and noise images gain
leading unit dimensions. ``conv_clamp`` (activations clamped at +-256, meant for fp16) and
``num_fp16_res`` are not reproduced: genmodels computes in float32 without the clamp.

Options (``--option key=value``): any other `StyleGAN2` constructor argument (training settings
such as ``penalty_weight=0.01`` or ``ema_kimg=500``, which the pickle does not record), parsed as
YAML values.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from genmodels.weights import WeightsError
from genmodels.weights.common import option_value
from genmodels.weights.unpickle import PersistentObject, load_snapshot

__all__ = ["convert", "model_kwargs", "generator_state", "discriminator_state"]

FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])

#: StyleGAN2 constructor arguments the snapshot decides (not settable with --option).
ARCHITECTURE_KEYS = {
    "image_shape", "architecture", "latent_dim", "w_dim", "mapping_layers", "mapping_lr_mul", "channel_base", "channel_max",
    "mbstd_group_size", "w_avg_decay", "num_classes", "discriminator_mapping_layers", "growing", "resample",
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise WeightsError(message)


def _check_filter(value: Any, where: str) -> None:
    if value is None:
        return
    taps = torch.as_tensor(value, dtype=torch.float32)
    expected = FIR if taps.dim() == 1 else torch.outer(FIR, FIR)  # kwargs give taps, buffers the 2-D filter
    ok = taps.shape == expected.shape and bool(torch.allclose(taps / taps.sum(), expected / expected.sum()))
    _require(ok, f"{where}: a resample_filter other than [1, 3, 3, 1]; genmodels implements that filter only")


def model_kwargs(G: PersistentObject, D: PersistentObject) -> dict[str, Any]:
    """`StyleGAN2` arguments from the official Generator's and Discriminator's init kwargs."""
    g, d = G.init_kwargs, D.init_kwargs
    for key in ("z_dim", "w_dim", "img_resolution", "img_channels"):
        _require(key in g, f"the snapshot's G stores no init kwarg {key!r}; it is not a stylegan2-ada-pytorch Generator")
    mapping = dict(g.get("mapping_kwargs") or {})
    synthesis = dict(g.get("synthesis_kwargs") or {})
    d_mapping = dict(d.get("mapping_kwargs") or {})
    epilogue = dict(d.get("epilogue_kwargs") or {})
    block = dict(d.get("block_kwargs") or {})
    w_dim, c_dim = int(g["w_dim"]), int(g.get("c_dim") or 0)
    checks = [
        (synthesis.get("architecture", "skip") == "skip", f"G architecture={synthesis.get('architecture')!r}: genmodels implements 'skip'"),
        (d.get("architecture", "resnet") == "resnet", f"D architecture={d.get('architecture')!r}: genmodels implements 'resnet'"),
        (mapping.get("activation", "lrelu") == "lrelu" and block.get("activation", "lrelu") == "lrelu"
         and epilogue.get("activation", "lrelu") == "lrelu" and d_mapping.get("activation", "lrelu") == "lrelu",
         "an activation other than 'lrelu': genmodels implements lrelu"),
        (mapping.get("layer_features") in (None, w_dim) and mapping.get("embed_features") in (None, w_dim),
         "G mapping layer_features/embed_features other than w_dim are not implemented"),
        (int(epilogue.get("mbstd_num_channels", 1)) == 1, "D mbstd_num_channels other than 1 is not implemented"),
        (int(d.get("c_dim") or 0) == c_dim, f"G c_dim={c_dim} but D c_dim={d.get('c_dim')}"),
        (d.get("cmap_dim") is None, "D cmap_dim other than the 4x4 channels is not implemented"),
        (int(d.get("img_resolution", g["img_resolution"])) == int(g["img_resolution"]), "G and D image resolutions differ"),
        (synthesis.get("channel_base", 32768) == d.get("channel_base", 32768) and synthesis.get("channel_max", 512) == d.get("channel_max", 512),
         "G and D channel_base/channel_max differ; genmodels uses one pair"),
        (not int(block.get("freeze_layers", 0) or 0) and not int(d.get("freeze_layers", 0) or 0), "D freeze_layers is a training option; set it 0"),
        (d_mapping.get("layer_features") in (None,) and d_mapping.get("embed_features") in (None,),
         "D mapping layer_features/embed_features are not implemented"),
        (float(d_mapping.get("lr_multiplier", 0.01)) == 0.01, "D mapping lr_multiplier other than 0.01 is not implemented"),
    ]
    for ok, message in checks:
        _require(ok, f"unsupported stylegan2-ada network: {message}")
    _check_filter(synthesis.get("resample_filter"), "G")
    _check_filter(d.get("resample_filter") or block.get("resample_filter"), "D")
    resolution, channels = int(g["img_resolution"]), int(g["img_channels"])
    _require(resolution >= 4 and resolution & (resolution - 1) == 0, f"img_resolution={resolution} is not a power of two >= 4")
    return dict(
        image_shape=(channels, resolution, resolution),
        latent_dim=int(g["z_dim"]),
        w_dim=w_dim,
        mapping_layers=int(mapping.get("num_layers", 8)),
        mapping_lr_mul=float(mapping.get("lr_multiplier", 0.01)),
        channel_base=int(synthesis.get("channel_base", 32768)),
        channel_max=int(synthesis.get("channel_max", 512)),
        mbstd_group_size=int(epilogue.get("mbstd_group_size", 4)),
        w_avg_decay=float(mapping.get("w_avg_beta", 0.995)),
        num_classes=c_dim,
        discriminator_mapping_layers=int(d_mapping.get("num_layers", 8)),
    )


# ---------------------------------------------------------------------------------------------
# Tensor names: official -> genmodels (and the value change)

Rename = tuple[str, Callable[[Tensor], Tensor]]


def _same(t: Tensor) -> Tensor:
    return t


def _mapping_names(official: str, ours: str, names: dict[str, Rename], layers: int, conditional: bool) -> None:
    if conditional:
        names[f"{official}embed.weight"] = (f"{ours}embed.weight", _same)
        names[f"{official}embed.bias"] = (f"{ours}embed.bias", _same)
    for i in range(layers):
        names[f"{official}fc{i}.weight"] = (f"{ours}layers.{i}.weight", _same)
        names[f"{official}fc{i}.bias"] = (f"{ours}layers.{i}.bias", _same)


def generator_names(resolution: int, mapping_layers: int, conditional: bool) -> dict[str, Rename]:
    """Official Generator state_dict names -> StyleGenerator names (resample filters are checked apart)."""
    names: dict[str, Rename] = {"mapping.w_avg": ("w_avg", _same)}
    _mapping_names("mapping.", "mapping.", names, mapping_layers, conditional)
    names["synthesis.b4.const"] = ("synthesis.const", lambda t: t[None])
    levels = int(math.log2(resolution)) - 1
    for k in range(levels):
        res = 4 * 2**k
        layers = [("conv1", 0)] if k == 0 else [("conv0", 2 * k - 1), ("conv1", 2 * k)]
        for official, index in layers:
            src, dst = f"synthesis.b{res}.{official}.", f"synthesis.convs.{index}."
            names[src + "weight"] = (dst + "conv.weight", _same)
            names[src + "affine.weight"] = (dst + "conv.affine.weight", _same)
            names[src + "affine.bias"] = (dst + "conv.affine.bias", _same)
            names[src + "noise_strength"] = (dst + "act.noise.weight", lambda t: t.reshape(1))
            names[src + "bias"] = (dst + "act.bias", _same)
            names[src + "noise_const"] = (dst + "act.const_noise", lambda t: t[None, None])
        src, dst = f"synthesis.b{res}.torgb.", f"synthesis.to_rgb.{k}."
        names[src + "weight"] = (dst + "conv.weight", _same)
        names[src + "affine.weight"] = (dst + "conv.affine.weight", _same)
        names[src + "affine.bias"] = (dst + "conv.affine.bias", _same)
        names[src + "bias"] = (dst + "bias", _same)
    return names


def discriminator_names(resolution: int, mapping_layers: int, conditional: bool) -> dict[str, Rename]:
    """Official Discriminator state_dict names -> StyleGAN2Discriminator names."""
    names: dict[str, Rename] = {
        f"b{resolution}.fromrgb.weight": ("from_rgb.weight", _same),
        f"b{resolution}.fromrgb.bias": ("from_rgb.bias", _same),
        "b4.conv.weight": ("head.conv.weight", _same),
        "b4.conv.bias": ("head.conv.bias", _same),
        "b4.fc.weight": ("head.dense.weight", _same),
        "b4.fc.bias": ("head.dense.bias", _same),
        "b4.out.weight": ("head.out.weight", _same),
        "b4.out.bias": ("head.out.bias", _same),
    }
    res, index = resolution, 0
    while res > 4:
        for part in ("conv0", "conv1"):
            names[f"b{res}.{part}.weight"] = (f"blocks.{index}.{part}.weight", _same)
            names[f"b{res}.{part}.bias"] = (f"blocks.{index}.{part}.bias", _same)
        names[f"b{res}.skip.weight"] = (f"blocks.{index}.skip.weight", _same)
        res, index = res // 2, index + 1
    if conditional:
        _mapping_names("mapping.", "head.mapping.", names, mapping_layers, True)
    return names


def _convert_state(official: dict[str, Tensor], names: dict[str, Rename], target: dict[str, Tensor], network: str) -> dict[str, Tensor]:
    """Renamed tensors for ``target``'s keys; every official tensor used, every target tensor given, shapes equal."""
    out: dict[str, Tensor] = {}
    for key, value in official.items():
        if key.endswith("resample_filter"):
            _check_filter(value, f"{network}.{key}")
            continue
        if key not in names:
            raise WeightsError(f"{network}.{key} {tuple(value.shape)} has no place in genmodels' StyleGAN2 (another architecture?)")
        ours, change = names[key]
        converted = change(value.float())
        if ours not in target or tuple(target[ours].shape) != tuple(converted.shape):
            expected = tuple(target[ours].shape) if ours in target else "no such tensor"
            raise WeightsError(f"{network}.{key} has shape {tuple(value.shape)}; the model built from the kwargs expects {expected}")
        out[ours] = converted
    missing = sorted(set(target) - set(out))
    if missing:
        official_names = {ours: theirs for theirs, (ours, _) in names.items()}
        raise WeightsError(f"the snapshot's {network} lacks {official_names.get(missing[0], missing[0])} ({len(missing)} tensors missing)")
    return out


def generator_state(G: PersistentObject, model: Any) -> dict[str, Tensor]:
    kw = model.hparams
    names = generator_names(model.image_shape[1], kw["mapping_layers"], bool(kw["num_classes"]))
    target = {k: v for k, v in model.generator.state_dict().items()}
    return _convert_state(G.state_dict(), names, target, "G")


def discriminator_state(D: PersistentObject, model: Any) -> dict[str, Tensor]:
    kw = model.hparams
    names = discriminator_names(model.image_shape[1], kw["discriminator_mapping_layers"], bool(kw["num_classes"]))
    target = {k: v for k, v in model.discriminator.state_dict().items()}
    return _convert_state(D.state_dict(), names, target, "D")


# ---------------------------------------------------------------------------------------------


def _parse_options(options: dict[str, str]) -> dict[str, Any]:
    known = _model_options()
    parsed: dict[str, Any] = {}
    for key, text in options.items():
        if key in ARCHITECTURE_KEYS:
            raise WeightsError(f"--option {key}: the architecture comes from the snapshot; {key} cannot be set")
        if key not in known:
            raise WeightsError(f"--option {key}: not a StyleGAN2 option (see `genmodels fit --help` of genmodels.StyleGAN2)")
        parsed[key] = option_value(key, text)
    return parsed


def _model_options() -> set[str]:
    """What `StyleGAN2` takes: its own arguments, the style options it passes on, and the loop's."""
    from genmodels.gans.adversarial import AdversarialModel
    from genmodels.gans.stylegan import StyleBasedGAN, StyleGAN2

    signatures = (inspect.signature(cls.__init__).parameters for cls in (StyleGAN2, StyleBasedGAN, AdversarialModel))
    return set().union(*signatures) - {"self", "kwargs"}


def _networks(snapshot: Any, name: str) -> tuple[PersistentObject, PersistentObject, PersistentObject]:
    if not isinstance(snapshot, dict) or "G_ema" not in snapshot:
        raise WeightsError(f"{name} holds no G_ema network; it is not a stylegan2-ada-pytorch network pickle")
    nets = []
    for key, cls in (("G", "Generator"), ("D", "Discriminator"), ("G_ema", "Generator")):
        net = snapshot.get(key)
        if not isinstance(net, PersistentObject) or net.class_name != cls:
            found = net.class_name if isinstance(net, PersistentObject) else type(net).__name__
            raise WeightsError(f"{name}: {key} is {found}, not a stylegan2-ada-pytorch {cls}")
        nets.append(net)
    return nets[0], nets[1], nets[2]


def convert(fmt: str, sources: list[Path], options: dict[str, str]) -> Any:
    """A `StyleGAN2` with G, D and G_ema of one stylegan2-ada-pytorch pickle."""
    if len(sources) != 1:
        raise WeightsError(f"stylegan2-ada takes one network pickle (network-snapshot-*.pkl), got {len(sources)} files")
    source = sources[0]
    G, D, G_ema = _networks(load_snapshot(source), source.name)
    kwargs = {**model_kwargs(G_ema, D), **_parse_options(options)}
    if kwargs.get("ema_decay", 0.999) is None:
        raise WeightsError("--option ema_decay=null: the snapshot's G_ema needs the EMA generator")
    from genmodels.gans.stylegan import StyleGAN2

    with torch.random.fork_rng(devices=[]):
        model = StyleGAN2(**kwargs)
    g, d, g_ema = generator_state(G, model), discriminator_state(D, model), generator_state(G_ema, model)
    with torch.no_grad():
        model.generator.load_state_dict(g)
        model.discriminator.load_state_dict(d)
        model.generator_ema.load_state_dict(g_ema)
    return model.eval()
