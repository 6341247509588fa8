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
  0.7), G_ema and G images (noise_mode='const', psi 1 and 0.7), D logits on the fixed images;
- ``step/``: initial networks as above and ``step.pt``: one official training iteration
  (``training/loss.py`` StyleGAN2Loss phases Dmain, Dreg, Gmain, Greg with training_loop.py's Adam
  settings and G_ema update): batch, z, the losses and every network's state after it.

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


STEP = dict(r1_gamma=1.0, D_reg_interval=16, G_reg_interval=4, lr=0.0025, betas=(0.0, 0.99), ema_kimg=0.01, batch=4)


def make_step(out: Path) -> dict[str, float]:
    """One official training iteration (training_loop.py's phase loop): Dmain, Dreg (R1, gain 16), Gmain, Greg.

    As --cfg cifar: pl_weight 0 with G_reg_interval 4 (Greg computes nothing, but G's Adam runs at
    lr * 4/5, betas ** 4/5, as training_loop.py sets it up).

    Deterministic on purpose: noise strengths 0 (training draws random noise), no style mixing, no
    path length (its pl_noise is random), fakes' labels = the real batch's labels, and the same z
    for D's and G's phases (genmodels draws one z per iteration; training_loop.py one per phase).
    """
    from torch_utils import training_stats
    from training.loss import StyleGAN2Loss

    torch.manual_seed(2)
    G, D, _ = build(10)
    gen = torch.Generator().manual_seed(102)
    perturb(G, gen)
    perturb(D, gen)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    G_ema = copy.deepcopy(G)
    perturb(G_ema, gen)
    directory = out / "step"
    directory.mkdir(parents=True, exist_ok=True)
    nets = {"G": G, "D": D, "G_ema": G_ema}
    torch.save({"state_dict": {k: {n: v.clone() for n, v in net.state_dict().items()} for k, net in nets.items()},
                "modules": {k: module_classes(net) for k, net in nets.items()}}, directory / "state.pt")
    kwargs = {key: plain(dict(net.init_kwargs)) for key, net in nets.items()}
    kwargs["training_set_kwargs"] = dict(class_name="training.dataset.ImageFolderDataset", path="step.zip", use_labels=True, resolution=16)
    (directory / "kwargs.json").write_text(json.dumps(kwargs, indent=1, sort_keys=True) + "\n")

    n = STEP["batch"]
    real = torch.randn(n, 3, 16, 16, generator=gen).clamp(-1, 1)
    labels = torch.tensor([3, 1, 4, 1])
    c = torch.nn.functional.one_hot(labels, 10).float()
    z = torch.randn(n, 32, generator=gen)
    reported: dict[str, torch.Tensor] = {}
    original_report = training_stats.report

    def report(name, value):  # keep the losses the official code reports
        reported[name] = value.detach().clone()
        return original_report(name, value)

    training_stats.report = report
    import training.loss as loss_module
    loss_module.training_stats.report = report

    G.train().requires_grad_(False)
    D.train().requires_grad_(False)
    loss = StyleGAN2Loss("cpu", G.mapping, G.synthesis, D, augment_pipe=None, style_mixing_prob=0, r1_gamma=STEP["r1_gamma"], pl_weight=0)
    ratio = STEP["D_reg_interval"] / (STEP["D_reg_interval"] + 1)
    opt_D = torch.optim.Adam(D.parameters(), lr=STEP["lr"] * ratio, betas=[b**ratio for b in STEP["betas"]], eps=1e-8)
    g_ratio = STEP["G_reg_interval"] / (STEP["G_reg_interval"] + 1)
    opt_G = torch.optim.Adam(G.parameters(), lr=STEP["lr"] * g_ratio, betas=[b**g_ratio for b in STEP["betas"]], eps=1e-8)
    losses = {}
    phases = (("Dmain", D, opt_D, 1), ("Dreg", D, opt_D, STEP["D_reg_interval"]), ("Gmain", G, opt_G, 1), ("Greg", G, opt_G, STEP["G_reg_interval"]))
    for name, module, opt, gain in phases:
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        reported.clear()
        loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True, gain=gain)
        module.requires_grad_(False)
        for param in module.parameters():
            if param.grad is not None:
                torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
        opt.step()
        key = {"Dmain": "Loss/D/loss", "Dreg": "Loss/D/reg", "Gmain": "Loss/G/loss", "Greg": None}[name]
        if key is not None:
            losses[name] = float(reported[key].mean())
    with torch.no_grad():  # training_loop.py's G_ema update
        beta = 0.5 ** (n / max(STEP["ema_kimg"] * 1000, 1e-8))
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)
    after = {k: {n: v.clone() for n, v in net.state_dict().items()} for k, net in nets.items()}
    torch.save({"real": real, "labels": labels, "z": z, "losses": losses, "settings": dict(STEP), "ema_beta": beta, "after": after},
               directory / "step.pt")
    return losses


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
    print("step", make_step(args.out))


if __name__ == "__main__":
    main()
