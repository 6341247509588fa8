"""Fixtures for ``genmodels import-weights stylegan2-ada``, made by the authors' code.

Runs NVlabs/stylegan2-ada-pytorch from a checkout (never imported by genmodels, never committed):
builds small networks with its classes (unconditional and class-conditional), perturbs every
parameter and learned buffer, saves them as its training loop does (a ``network-snapshot`` pickle,
kept only under --keep-snapshot because it embeds the authors' source), and stores, in a neutral
form, what the genmodels tests need:

- ``<name>/state.pt``: per network (G, D, G_ema) the state_dict, and per network the class of every
  submodule (``modules``: dotted path -> class name), so a test can re-pickle the snapshot layout;
- ``<name>/kwargs.json``: the networks' init kwargs and the training_set_kwargs, as pickled;
- ``<name>/outputs.pt``: fixed inputs (z, c, images) and the official outputs: mapping (psi 1 and
  0.7), G_ema and G images (noise_mode='const', psi 1 and 0.7), D logits on the fixed images.

Usage::

    python scripts/official/make_fixtures_stylegan2_ada.py --checkout /tmp/stylegan2-ada-pytorch \
        --out tests/fixtures/official/stylegan2-ada

The official ops fall back to their reference implementations on CPU; nothing is compiled.
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import sys
from pathlib import Path

import torch

CONFIGS = {
    # 16x16 RGB, channels min(256 / r, 32): 32, 32, 16; z, w of 32; 2 mapping layers as --cfg cifar.
    "unconditional": dict(c_dim=0),
    "conditional": dict(c_dim=10),
}


def build(c_dim: int):
    from training.networks import Discriminator, Generator
    from training.augment import AugmentPipe

    common = dict(c_dim=c_dim, img_resolution=16, img_channels=3)
    G = Generator(z_dim=32, w_dim=32, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None), **common)
    D = Discriminator(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=2), **common)
    augment = AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    return G, D, augment


@torch.no_grad()
def perturb(net: torch.nn.Module, generator: torch.Generator) -> None:
    """Move every parameter and learned buffer off its initial value (the fixed FIR filters stay)."""
    for module in net.modules():
        for name, p in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            if name == "resample_filter" or not p.is_floating_point():
                continue
            gain = float(getattr(module, "bias_gain", 1.0)) if name == "bias" else 1.0
            scale = 0.3 * float(p.std()) if p.numel() > 1 and float(p.std()) > 0 else 0.3 / max(gain, 1e-3)
            p.add_(torch.randn(p.shape, generator=generator) * scale)


def module_classes(net: torch.nn.Module) -> dict[str, str]:
    return {name: type(m).__name__ for name, m in net.named_modules()}


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def make(name: str, c_dim: int, out: Path, keep_snapshot: bool) -> dict[str, float]:
    seed = 0 if c_dim == 0 else 1
    torch.manual_seed(seed)
    G, D, augment = build(c_dim)
    G_ema = copy.deepcopy(G)
    gen = torch.Generator().manual_seed(100 + seed)
    for net in (G, D, G_ema):
        perturb(net, gen)
    nets = {"G": G, "D": D, "G_ema": G_ema}
    for net in nets.values():
        net.eval().requires_grad_(False)
    training_set_kwargs = dict(class_name="training.dataset.ImageFolderDataset", path="cifar10-16.zip", use_labels=c_dim > 0,
                               max_size=50000, xflip=False, resolution=16)
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    if keep_snapshot:  # as training_loop.py saves it
        snapshot = dict(training_set_kwargs=dict(training_set_kwargs))
        for key, value in [("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", augment)]:
            snapshot[key] = copy.deepcopy(value).eval().requires_grad_(False)
        with open(directory / "network-snapshot-000000.pkl", "wb") as f:
            pickle.dump(snapshot, f)

    n = 4
    z = torch.randn(n, 32, generator=gen)
    c = torch.nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else torch.zeros(n, 0)
    images_in = torch.randn(n, 3, 16, 16, generator=gen)
    outputs = {"z": z, "c": c, "images_in": images_in}
    with torch.no_grad():
        for key, net in (("G_ema", G_ema), ("G", G)):
            outputs[f"{key}.mapping"] = net.mapping(z, c)
            outputs[f"{key}.mapping_psi0.7"] = net.mapping(z, c, truncation_psi=0.7)
            outputs[f"{key}.image"] = net(z, c, noise_mode="const")
            outputs[f"{key}.image_psi0.7"] = net(z, c, truncation_psi=0.7, noise_mode="const")
        outputs["D.logits"] = D(images_in, c)
        outputs["D.logits_of_G_ema"] = D(outputs["G_ema.image"], c)
    torch.save(outputs, directory / "outputs.pt")
    state = {key: {k: v.clone() for k, v in net.state_dict().items()} for key, net in nets.items()}
    torch.save({"state_dict": state, "modules": {key: module_classes(net) for key, net in nets.items()}}, directory / "state.pt")
    kwargs = {key: plain(dict(net.init_kwargs)) for key, net in nets.items()}
    kwargs["training_set_kwargs"] = training_set_kwargs
    (directory / "kwargs.json").write_text(json.dumps(kwargs, indent=1, sort_keys=True) + "\n")
    return {k: float(v.abs().max()) for k, v in outputs.items() if v.numel()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--out", type=Path, required=True, help="fixture directory (tests/fixtures/official/stylegan2-ada)")
    parser.add_argument("--keep-snapshot", action="store_true", help="also write the official pickle (embeds their code: never commit it)")
    args = parser.parse_args()
    if not (args.checkout / "training" / "networks.py").is_file():
        parser.error(f"{args.checkout} is not a stylegan2-ada-pytorch checkout (no training/networks.py)")
    sys.path.insert(0, str(args.checkout.resolve()))
    torch.set_num_threads(1)
    for name, config in CONFIGS.items():
        magnitudes = make(name, config["c_dim"], args.out, args.keep_snapshot)
        print(name, {k: round(v, 3) for k, v in magnitudes.items()})


if __name__ == "__main__":
    main()
