"""Fixtures for the biggan-pytorch importer, made by ajbrock/BigGAN-PyTorch's own code.

    python scripts/official/make_fixtures_biggan_pytorch.py --checkout /tmp/BigGAN-PyTorch \
        --out tests/fixtures/official/biggan-pytorch

For each variant of train.py's flags (the CIFAR script's, and one with --hier --G_shared --G_attn 16
--D_attn 16) it builds small G, G_ema and D with the checkout's classes (``utils.prepare_parser``
defaults plus the flags), perturbs every parameter and buffer, saves them as ``utils.save_weights``
does, and stores fixed inputs with the official eval-mode outputs (G and G_ema images, D logits)
in ``io.pt``, the flags in ``flags.txt``. Only tensors are written; nothing of the checkout is
copied. The official code is run, never imported by genmodels.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import types

import torch

#: variant -> train.py flags (small widths: --G_ch/--D_ch 4 give 16 channels).
VARIANTS = {
    # scripts/launch_cifar_ema.sh's architecture flags.
    "cifar": "--dataset C10 --G_ch 4 --D_ch 4 --dim_z 16 --G_attn 0 --D_attn 0 --G_init N02 --D_init N02",
    # The --hier --G_shared --G_attn/--D_attn variant (the 32x32 D_arch labels every block 16).
    "hier_shared_attn": "--dataset C10 --G_ch 4 --D_ch 4 --dim_z 16 --hier --G_shared --shared_dim 8 "
    "--G_attn 16 --D_attn 16 --G_init ortho --D_init ortho",
}


def build(checkout: pathlib.Path, flags: str) -> tuple[object, object, dict]:
    sys.path.insert(0, str(checkout))
    # utils imports datasets, which imports h5py for its HDF5 loader only (unused here).
    sys.modules.setdefault("h5py", types.ModuleType("h5py"))
    import BigGAN  # noqa: E402  (the checkout's)
    import utils  # noqa: E402

    config = vars(utils.prepare_parser().parse_args(shlex.split(flags)))
    config.update(
        resolution=utils.imsize_dict[config["dataset"]], n_classes=utils.nclass_dict[config["dataset"]],
        G_activation=utils.activation_dict[config["G_nl"]], D_activation=utils.activation_dict[config["D_nl"]],
        skip_init=False, no_optim=True,
    )
    if config["shared_dim"] == 0:  # as train.py: the shared embedding defaults to dim_z
        config["shared_dim"] = config["dim_z"]
    return BigGAN, utils, config


@torch.no_grad()
def perturb(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Every parameter and buffer moved off its initial value (variances kept positive)."""
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        noise = torch.randn(tensor.shape, generator=generator)
        if name.endswith("stored_var"):
            tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
        elif name.endswith("gamma"):
            tensor.copy_(0.5 * noise)
        else:
            tensor.add_(0.05 * noise if tensor.dim() > 1 else 0.1 * noise)


def make_variant(checkout: pathlib.Path, out: pathlib.Path, flags: str, seed: int) -> None:
    BigGAN, utils, config = build(checkout, flags)
    torch.manual_seed(seed)
    G, G_ema, D = BigGAN.Generator(**config), BigGAN.Generator(**config), BigGAN.Discriminator(**config)
    g = torch.Generator().manual_seed(seed)
    for network in (G, G_ema, D):
        perturb(network, g)
        network.eval()
    out.mkdir(parents=True, exist_ok=True)
    # utils.save_weights writes exactly these state dicts under these names.
    torch.save(G.state_dict(), out / "G.pth")
    torch.save(G_ema.state_dict(), out / "G_ema.pth")
    torch.save(D.state_dict(), out / "D.pth")
    n = 6
    z = torch.randn(n, G.dim_z, generator=g)
    y = torch.randint(0, config["n_classes"], (n,), generator=g)
    x = torch.rand(n, 3, config["resolution"], config["resolution"], generator=g) * 2 - 1
    with torch.no_grad():  # train_fns / utils.sample call G(z, G.shared(y))
        io = {
            "z": z, "y": y, "x": x,
            "G": G(z, G.shared(y)), "G_ema": G_ema(z, G_ema.shared(y)), "D": D(x, y).view(-1),
        }
    torch.save(io, out / "io.pt")
    (out / "flags.txt").write_text(flags + "\n")
    sys.path.remove(str(checkout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=pathlib.Path, required=True, help="a checkout of ajbrock/BigGAN-PyTorch")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="fixture directory (one folder per variant)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed, (name, flags) in enumerate(VARIANTS.items()):
        make_variant(args.checkout.resolve(), args.out / name, flags, seed)
        print(f"{args.out / name}: {flags}")


if __name__ == "__main__":
    main()
