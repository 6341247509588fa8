"""Fixtures for the wgan importer, made by martinarjovsky/WassersteinGAN's own classes.

    python scripts/official/make_fixtures_wgan.py --checkout /tmp/WassersteinGAN \
        --out tests/fixtures/official/wgan

Builds DCGAN_G / DCGAN_D (models/dcgan.py) at a small width, initializes them with main.py's
weights_init rule, perturbs every parameter and buffer, saves them as main.py does
(``netG_epoch_N.pth`` / ``netD_epoch_N.pth``: the state dicts), and stores fixed inputs with the
eval-mode outputs: G's images, the critic's per-image scores (``netD.main``) and its batch mean
(``netD(x)``). Only tensors are written; nothing of the checkout is copied.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import torch

#: main.py's flags of the fixture: --imageSize 32 --nz 8 --ngf 8 --ndf 8, 3 channels.
CONFIG = dict(isize=32, nz=8, nc=3, ngf=8, ndf=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=pathlib.Path, required=True, help="a checkout of martinarjovsky/WassersteinGAN")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(args.checkout.resolve()))
    from models import dcgan  # the checkout's

    torch.manual_seed(0)
    c = CONFIG
    netG = dcgan.DCGAN_G(c["isize"], c["nz"], c["nc"], c["ngf"], 1, 0)
    netD = dcgan.DCGAN_D(c["isize"], c["nz"], c["nc"], c["ndf"], 1, 0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for net in (netG, netD):
            for name, tensor in list(net.named_parameters()) + list(net.named_buffers()):
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
                elif name.endswith("num_batches_tracked"):
                    tensor.fill_(7)
                else:
                    tensor.add_(0.05 * torch.randn(tensor.shape, generator=g))
            net.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    epoch = 3
    torch.save(netG.state_dict(), args.out / f"netG_epoch_{epoch}.pth")
    torch.save(netD.state_dict(), args.out / f"netD_epoch_{epoch}.pth")
    z = torch.randn(6, c["nz"], 1, 1, generator=g)
    x = torch.rand(6, c["nc"], c["isize"], c["isize"], generator=g) * 2 - 1
    with torch.no_grad():
        io = {"z": z.flatten(1), "x": x, "G": netG(z), "D": netD.main(x).flatten(), "D_mean": netD(x)}
    torch.save(io, args.out / "io.pt")
    print(args.out, c)


if __name__ == "__main__":
    main()
