"""Fixtures for the cyclegan and pix2pix importers, made by junyanz/pytorch-CycleGAN-and-pix2pix's own networks.

    python scripts/official/make_fixtures_junyanz.py --checkout /tmp/pytorch-CycleGAN-and-pix2pix \
        --out tests/fixtures/official

(``make_fixtures.py --checkout junyanz=PATH`` runs it with ``--out ROOT/junyanz``; that is read as ROOT.)

Imports the checkout's ``models/networks.py`` and builds small networks with its ``define_G`` /
``define_D`` (ngf 2 to 4, ndf 4, init 'normal'), perturbs every parameter and buffer, and saves their
CPU state dicts as ``BaseModel.save_networks`` does (``latest_net_<name>.pth``):

- ``cyclegan/``: train.py --model cycle_gan (resnet_6blocks, basic D, instance norm, no dropout):
  ``latest_net_G_A/G_B/D_A/D_B.pth``; and ``cyclegan/pretrained/latest_net_G.pth``, a lone
  resnet_9blocks generator as download_cyclegan_model.sh publishes them.
- ``pix2pix/``: train.py --model pix2pix --netG unet_128 (batch norm, dropout, basic D on 6
  channels): ``latest_net_G.pth``, ``latest_net_D.pth``; and ``pix2pix/pretrained/latest_net_G.pth``,
  a lone unet_256 generator as download_pix2pix_model.sh publishes them.

With ``--step-checkout`` (a checkout whose models/cycle_gan_model.py is of the gan_mode/init_gain
era, e.g. commit 032e88438b1b2690e538c2cf399ebceb76adbea9 of cycle_gan_model.py with its networks.py,
base_model.py and util/image_pool.py), ``cyclegan/step/`` gets the networks after one official
``optimize_parameters`` from ``cyclegan/``'s weights and batch, and the losses.

``io.pt`` beside them holds fixed inputs and the official outputs in test.py's default mode (no
``--eval``: the networks stay in train mode, so BatchNorm normalizes with the test batch and
pix2pix's dropout is on; the dropout masks come from ``torch.manual_seed(SEED)`` right before the
forward pass) and the discriminators' logits. Only tensors are written; nothing of the checkout is
copied.

Checkout used for the committed fixtures: ``models/networks.py`` of junyanz/pytorch-CycleGAN-and-pix2pix
as stored at commit 78913853ab4a4f5eba717af8433809300c99f0bb (the 2018 layout: ``which_model_netG``,
``init_net(net, init_type, gpu_ids)``, InstanceNorm with ``track_running_stats=True``, so its
state dicts carry instance-norm running buffers, as the published pretrained models do; the
current upstream's InstanceNorm has none and its load_networks deletes them). The networks'
layers and state-dict names are the current upstream's (ResnetGenerator/ResnetBlock,
UnetGenerator/UnetSkipConnectionBlock, NLayerDiscriminator).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import torch

SEED = 1234


def _perturb(net: torch.nn.Module, g: torch.Generator) -> None:
    with torch.no_grad():
        for name, tensor in list(net.named_parameters()) + list(net.named_buffers()):
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            else:
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=g))


def _save(nets: dict[str, torch.nn.Module], out: pathlib.Path) -> None:
    """As BaseModel.save_networks: torch.save(net.cpu().state_dict(), '<epoch>_net_<name>.pth')."""
    out.mkdir(parents=True, exist_ok=True)
    for name, net in nets.items():
        torch.save(net.cpu().state_dict(), out / f"latest_net_{name}.pth")


def _image(g: torch.Generator, n: int, size: int) -> torch.Tensor:
    """Test images as the datasets give them: uint8 pixels -> [-1, 1]."""
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _run(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(SEED)  # pix2pix's dropout masks
    with torch.no_grad():
        return net(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=pathlib.Path, required=True, help="a checkout of junyanz/pytorch-CycleGAN-and-pix2pix")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="tests/fixtures/official (cyclegan/ and pix2pix/ are made in it)")
    parser.add_argument("--step-checkout", type=pathlib.Path, default=None,
                        help="a checkout with models/cycle_gan_model.py (gan_mode/init_gain era) for the step fixture cyclegan/step/")
    args = parser.parse_args()
    if args.out.name == "junyanz":  # scripts/official/make_fixtures.py passes ROOT/junyanz; the formats are cyclegan, pix2pix
        args.out = args.out.parent
    sys.path.insert(0, str(args.checkout.resolve()))
    from models import networks  # the checkout's

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    to_float = lambda u8: u8.float() / 127.5 - 1  # noqa: E731 (transforms.Normalize((0.5,)*3, (0.5,)*3) of ToTensor)

    # CycleGAN: --netG resnet_6blocks --ngf 4 --ndf 4 --norm instance --no_dropout (cycle_gan's default)
    nets = {name: networks.define_G(3, 3, 4, "resnet_6blocks", "instance", False) for name in ("G_A", "G_B")}
    nets |= {name: networks.define_D(3, 4, "basic", 3, "instance") for name in ("D_A", "D_B")}
    for net in nets.values():
        _perturb(net, g)
        net.train()  # test.py without --eval
    A, B = _image(g, 2, 32), _image(g, 2, 32)
    fake_B, fake_A = _run(nets["G_A"], to_float(A)), _run(nets["G_B"], to_float(B))
    io = {"A": A, "B": B, "fake_B": fake_B, "fake_A": fake_A, "rec_A": _run(nets["G_B"], fake_B),
          "D_A_real_B": _run(nets["D_A"], to_float(B)), "D_B_fake_A": _run(nets["D_B"], fake_A)}
    _save(nets, args.out / "cyclegan")
    torch.save(io, args.out / "cyclegan" / "io.pt")

    # A published single-direction CycleGAN generator: resnet_9blocks, instance norm, ngf 2.
    lone = networks.define_G(3, 3, 2, "resnet_9blocks", "instance", False)
    _perturb(lone, g)
    lone.train()
    _save({"G": lone}, args.out / "cyclegan" / "pretrained")
    torch.save({"A": A, "fake_B": _run(lone, to_float(A))}, args.out / "cyclegan" / "pretrained" / "io.pt")

    # pix2pix: --netG unet_128 --ngf 3 --ndf 4 --norm batch, dropout on; D sees cat(A, B): 6 channels.
    nets = {"G": networks.define_G(3, 3, 3, "unet_128", "batch", True), "D": networks.define_D(6, 4, "basic", 3, "batch")}
    for net in nets.values():
        _perturb(net, g)
        net.train()
    A, B = _image(g, 2, 128), _image(g, 2, 128)
    fake_B = _run(nets["G"], to_float(A))
    io = {"A": A, "B": B, "fake_B": fake_B, "seed": torch.tensor(SEED),
          "D_real": _run(nets["D"], torch.cat([to_float(A), to_float(B)], 1)),
          "D_fake": _run(nets["D"], torch.cat([to_float(A), fake_B], 1))}
    _save(nets, args.out / "pix2pix")
    torch.save(io, args.out / "pix2pix" / "io.pt")

    # A published pix2pix generator: unet_256 (8 levels: a 256x256 image goes down to 1x1), ngf 2.
    lone = networks.define_G(3, 3, 2, "unet_256", "batch", True)
    _perturb(lone, g)
    lone.train()
    A = _image(g, 1, 256)
    _save({"G": lone}, args.out / "pix2pix" / "pretrained")
    # the central 64x64 of the output (every pixel of it depends on the whole U-Net), to keep the fixture small
    crop = _run(lone, to_float(A))[..., 96:160, 96:160].contiguous()
    torch.save({"A": A, "fake_B_crop": crop, "seed": torch.tensor(SEED)}, args.out / "pix2pix" / "pretrained" / "io.pt")
    if args.step_checkout:
        _step(args.step_checkout, args.out / "cyclegan")
    print(args.out)


def _step(checkout: pathlib.Path, folder: pathlib.Path) -> None:
    """One CycleGANModel.optimize_parameters (G_A/G_B step, then D_A/D_B step) from cyclegan/'s weights.

    ``--pool_size 0`` makes the image pools return the current fakes (the pools' random draws are
    the only randomness of the step). Writes ``step/latest_net_*.pth`` (after the step) and
    ``step/io.pt`` (the batch and the losses).
    """
    from types import SimpleNamespace

    for name in [m for m in sys.modules if m == "models" or m.startswith("models.") or m == "util" or m.startswith("util.")]:
        del sys.modules[name]  # the step checkout's own models package
    sys.path.insert(0, str(checkout.resolve()))
    from models.cycle_gan_model import CycleGANModel  # the checkout's

    opt = SimpleNamespace(
        gpu_ids=[], isTrain=True, checkpoints_dir=str(folder), name="step", preprocess="resize_and_crop",
        input_nc=3, output_nc=3, ngf=4, ndf=4, netG="resnet_6blocks", netD="basic", n_layers_D=3, norm="instance",
        no_dropout=True, init_type="normal", init_gain=0.02, lambda_A=10.0, lambda_B=10.0, lambda_identity=0.5,
        pool_size=0, gan_mode="lsgan", lr=0.0002, beta1=0.5, direction="AtoB",
    )
    model = CycleGANModel(opt)
    for name in model.model_names:
        state = torch.load(folder / f"latest_net_{name}.pth", weights_only=True)
        # what load_networks' __patch_instance_norm_state_dict drops: InstanceNorm buffers of older code
        getattr(model, "net" + name).load_state_dict({k: v for k, v in state.items() if "running" not in k and "num_batches" not in k})
    io = torch.load(folder / "io.pt", weights_only=True)
    batch = {"A": io["A"].float() / 127.5 - 1, "B": io["B"].float() / 127.5 - 1, "A_paths": ["a"], "B_paths": ["b"]}
    model.set_input(batch)
    model.optimize_parameters()
    (folder / "step").mkdir(exist_ok=True)
    model.save_dir = str(folder / "step")
    model.save_networks("latest")
    losses = {f"loss_{n}": getattr(model, f"loss_{n}").detach() for n in model.loss_names}
    torch.save(losses | {"loss_G": model.loss_G.detach()}, folder / "step" / "io.pt")


if __name__ == "__main__":
    main()
