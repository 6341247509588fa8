"""Fixtures for the dfgan importer, made by tobran/DF-GAN's own classes (CVPR 2022 code, master).

    python scripts/official/make_fixtures_dfgan.py --checkout /tmp/DF-GAN --out tests/fixtures/official/dfgan

Builds NetG / NetD / NetC (code/models/GAN.py) at a small width (imsize 32, nf 4, z 8, cond_dim
16), perturbs every parameter and buffer, takes one Adam step (so the optimizers' state is real),
and saves them with the checkout's own ``lib.utils.save_models`` as ``state_epoch_003.pth`` (the
tests add the ``module.`` prefixes a multi-GPU run writes themselves, to keep the fixture small). ``io.pt`` holds fixed inputs (z, sentence embeddings, images) and
the eval-mode outputs: G's images and D's scores ``NetC(NetD(x), e)``. Only tensors are written.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import types

import torch

#: cfg/bird.yml's shape at a fixture's size: imsize 32, nf 4 (G and D), z_dim 8, cond_dim 16.
CONFIG = dict(imsize=32, nf=4, z_dim=8, cond_dim=16, ch_size=3)


def _shim_missing_modules() -> None:
    """lib.utils imports easydict at module level; save_models does not use it."""
    if "easydict" not in sys.modules:
        try:
            import easydict  # noqa: F401
        except ModuleNotFoundError:
            sys.modules["easydict"] = types.SimpleNamespace(EasyDict=dict)


def perturb(nets, g: torch.Generator) -> None:
    with torch.no_grad():
        for net in nets:
            for _, tensor in list(net.named_parameters()) + list(net.named_buffers()):
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=g))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=pathlib.Path, required=True, help="a checkout of tobran/DF-GAN")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str((args.checkout / "code").resolve()))
    _shim_missing_modules()
    from lib.utils import save_models  # the checkout's
    from models.GAN import NetC, NetD, NetG

    torch.manual_seed(0)
    c = CONFIG
    netG = NetG(c["nf"], c["z_dim"], c["cond_dim"], c["imsize"], c["ch_size"])
    netD = NetD(c["nf"], c["imsize"], c["ch_size"])
    netC = NetC(c["nf"], c["cond_dim"])
    g = torch.Generator().manual_seed(0)
    perturb((netG, netD, netC), g)
    optG = torch.optim.Adam(netG.parameters(), lr=0.0001, betas=(0.0, 0.9))
    optD = torch.optim.Adam(list(netD.parameters()) + list(netC.parameters()), lr=0.0004, betas=(0.0, 0.9))
    z = torch.randn(5, c["z_dim"], generator=g)
    e = torch.randn(5, c["cond_dim"], generator=g)
    x = torch.rand(5, c["ch_size"], c["imsize"], c["imsize"], generator=g) * 2 - 1
    # One step each, so the saved optimizer state has its moments, as after training.
    (netC(netD(netG(z, e)), e).mean()).backward()
    optG.step(), optD.step()
    for net in (netG, netD, netC):
        net.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    save_models(netG, netD, netC, optG, optD, 3, False, str(args.out))
    with torch.no_grad():
        io = {"z": z, "e": e, "x": x, "G": netG(z, e), "D": netC(netD(x), e).flatten()}
    torch.save(io, args.out / "io.pt")
    print(args.out, c)


if __name__ == "__main__":
    main()
