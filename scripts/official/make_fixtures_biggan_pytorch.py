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


#: The step-equality fixture: train_fns.GAN_training_function, 4 D steps and 1 G step on batches
#: of 8, G orthogonal regularization on, the EMA from the first G step.
STEP_FLAGS = (
    "--dataset C10 --G_ch 4 --D_ch 4 --dim_z 16 --hier --G_shared --shared_dim 8 --G_attn 16 --D_attn 0 "
    "--G_init ortho --D_init ortho --batch_size 8 --num_D_steps 4 --G_lr 2e-4 --D_lr 2e-4 --G_ortho 1e-4 "
    "--ema --ema_start 0 --ema_decay 0.9999"
)


def make_step(checkout: pathlib.Path, out: pathlib.Path, seed: int = 7) -> None:
    """One call of train_fns.GAN_training_function's train(x, y) from saved weights and fixed draws.

    The D steps' z and fake labels are replayed from io.pt; the G step replays the last D step's
    (genmodels' G step reuses the fakes of its last D step). Spectral-norm vectors are converged
    first (2,000 steps of layers.power_iteration, as after a long run) so that one step more or
    less changes nothing: genmodels' D step runs D on the reals and the fakes separately (two
    steps), the official one on their concatenation (one).
    """
    BigGAN, utils, config = build(checkout, STEP_FLAGS)
    config["no_optim"] = False
    import train_fns  # the checkout's

    torch.manual_seed(seed)
    G, D = BigGAN.Generator(**config), BigGAN.Discriminator(**config)
    G_ema = BigGAN.Generator(**{**config, "skip_init": True, "no_optim": True})
    g = torch.Generator().manual_seed(seed)
    for network in (G, D):
        perturb(network, g)
    import layers  # the checkout's

    with torch.no_grad():
        for module in list(G.modules()) + list(D.modules()):
            if isinstance(module, layers.SN):
                for _ in range(2000):
                    layers.power_iteration(module.weight.view(module.weight.size(0), -1), module.u, update=True, eps=module.eps)
    ema = utils.ema(G, G_ema, config["ema_decay"], config["ema_start"])  # copies G into G_ema
    before, after = out / "before", out / "after"
    before.mkdir(parents=True, exist_ok=True), after.mkdir(parents=True, exist_ok=True)
    for name, network in (("G", G), ("G_ema", G_ema), ("D", D)):
        torch.save(network.state_dict(), before / f"{name}.pth")

    n, k = config["batch_size"], config["num_D_steps"]
    x = torch.rand(n * k, 3, 32, 32, generator=g) * 2 - 1
    y = torch.randint(0, config["n_classes"], (n * k,), generator=g)
    zs = [torch.randn(n, G.dim_z, generator=g) for _ in range(k)]
    ys = [torch.randint(0, config["n_classes"], (n,), generator=g) for _ in range(k)]
    z_, y_ = utils.prepare_z_y(n, G.dim_z, config["n_classes"], device="cpu")
    replay_z, replay_y = iter(zs + zs[-1:]), iter(ys + ys[-1:])
    z_.sample_ = lambda: z_.copy_(next(replay_z))
    y_.sample_ = lambda: y_.copy_(next(replay_y))
    GD = BigGAN.G_D(G, D)
    state_dict = {"itr": 1}  # train.py increments itr before calling train
    G.train(), D.train(), G_ema.train()
    metrics = train_fns.GAN_training_function(G, D, GD, z_, y_, ema, state_dict, config)(x, y)
    for name, network in (("G", G), ("G_ema", G_ema), ("D", D)):
        torch.save(network.state_dict(), after / f"{name}.pth")
    torch.save({"x": x, "y": y, "z": torch.stack(zs), "y_fake": torch.stack(ys),
                **{key: torch.tensor(value) for key, value in metrics.items()}}, out / "io.pt")
    (out / "flags.txt").write_text(STEP_FLAGS + "\n")
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
    make_step(args.checkout.resolve(), args.out / "step")
    print(f"{args.out / 'step'}: {STEP_FLAGS}")


if __name__ == "__main__":
    main()
