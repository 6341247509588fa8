"""Fixtures for the stackgan importer, made by hanzhanggit/StackGAN-Pytorch's own generators (code/model.py).

    python scripts/official/make_fixtures_stackgan.py --checkout /tmp/StackGAN-Pytorch --out tests/fixtures/official/stackgan

Builds STAGE1_G and STAGE2_G(STAGE1_G) at the smallest width whose channels genmodels' StackGAN
shares (GAN.GF_DIM 32: stage I 256 -> 16 channels, stage II 128 -> 8; Z_DIM 8, TEXT.DIMENSION 8,
GAN.CONDITION_DIM 8, GAN.R_NUM 1), sets every parameter and buffer, and saves them with the
checkout's ``miscc.utils.save_model`` (``netG_epoch_N.pth`` and ``netD_epoch_last.pth`` of STAGE1_D /
STAGE2_D, DF_DIM 8), in a temporary folder.

Even at that width the two files hold ~1.2 M floats (5 MB), over the fixture budget, so every tensor
is `value_of` its name and shape (a seeded, fan-in-scaled draw): ``io.pt`` keeps each file's tensor
names and shapes, and the test rebuilds the files the official code saved from them (this script
checks that the rebuilt tensors are the saved ones). ``io.pt`` also holds fixed sentence embeddings,
z, the seed of the global RNG that CA_NET's reparametrization draws from, and the eval-mode outputs:
stage I's image, mu, logvar and stage II's image, and D's conditional (and stage II's unconditional)
outputs on those images with mu, after the Sigmoid and before it.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import types
import zlib

import torch

#: cfg values of the fixture (the paper's: GF_DIM 128, Z_DIM 100, TEXT.DIMENSION 1024, CONDITION_DIM 128, R_NUM 4).
CONFIG = dict(GF_DIM=32, DF_DIM=8, Z_DIM=8, TEXT_DIMENSION=8, CONDITION_DIM=8, R_NUM=1)
SEED = 1234  # of the global RNG CA_NET draws eps from


def value_of(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A deterministic tensor for ``name`` (scaled so activations stay O(1) through the network)."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    if name.endswith("num_batches_tracked"):
        return torch.tensor(9)
    if name.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if name.endswith(("running_mean", ".bias")):
        return 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1:  # BatchNorm weight
        return 1 + 0.1 * torch.randn(shape, generator=g)
    fan_in = int(torch.tensor(shape[1:]).prod())
    return torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5


def _easydict() -> types.SimpleNamespace:
    """miscc/config.py needs easydict (attribute access to nested dicts); a minimal one if it is missing."""

    class EasyDict(dict):
        def __getattr__(self, name):
            try:
                return self[name]
            except KeyError:
                raise AttributeError(name) from None

        def __setattr__(self, name, value):
            self[name] = value

    return types.SimpleNamespace(EasyDict=EasyDict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=pathlib.Path, required=True, help="a checkout of hanzhanggit/StackGAN-Pytorch")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str((args.checkout / "code").resolve()))
    try:
        import easydict  # noqa: F401
    except ModuleNotFoundError:
        sys.modules["easydict"] = _easydict()
    from miscc.config import cfg

    c = CONFIG
    cfg.CUDA = False
    cfg.GAN.GF_DIM, cfg.GAN.DF_DIM, cfg.Z_DIM = c["GF_DIM"], c["DF_DIM"], c["Z_DIM"]
    cfg.TEXT.DIMENSION, cfg.GAN.CONDITION_DIM, cfg.GAN.R_NUM = c["TEXT_DIMENSION"], c["CONDITION_DIM"], c["R_NUM"]
    import model as official  # the checkout's code/model.py
    from miscc.utils import save_model

    stage1 = official.STAGE1_G()
    stage2 = official.STAGE2_G(official.STAGE1_G())
    discriminators = {"stage1": official.STAGE1_D(), "stage2": official.STAGE2_D()}
    layouts = {}
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        for stage, (netG, netD) in {"stage1": (stage1, discriminators["stage1"]), "stage2": (stage2, discriminators["stage2"])}.items():
            for net in (netG, netD):
                for name, tensor in list(net.named_parameters()) + list(net.named_buffers()):
                    tensor.copy_(value_of(name, tuple(tensor.shape)))
                net.eval()
            folder = pathlib.Path(tmp) / stage
            folder.mkdir()
            save_model(netG, netD, 7, str(folder))
            for kind, file in (("", "netG_epoch_7.pth"), ("_D", "netD_epoch_last.pth")):
                saved = torch.load(folder / file, weights_only=True)
                assert all(torch.equal(v, value_of(k, tuple(v.shape))) for k, v in saved.items())
                layouts[stage + kind] = {k: list(v.shape) for k, v in saved.items()}
    g = torch.Generator().manual_seed(0)
    text = torch.randn(2, c["TEXT_DIMENSION"], generator=g)
    z = torch.randn(2, c["Z_DIM"], generator=g)
    with torch.no_grad():
        torch.manual_seed(SEED)
        _, image1, mu, logvar = stage1(text, z)
        torch.manual_seed(SEED)
        low, image2, _, _ = stage2(text[:1], z[:1])  # one 256 px image: the fixture budget
    # D on the generated images, conditioned on mu (as the official train step does): sigmoid outputs and logits.
    d_out = {}
    with torch.no_grad():
        for stage, images, condition in (("stage1", image1, mu), ("stage2", image2, mu[:1])):
            netD = discriminators[stage]
            code = netD(images)
            d_out[f"{stage}_D_cond"] = netD.get_cond_logits(code, condition)
            joint = torch.cat([code, condition[:, :, None, None].repeat(1, 1, 4, 4)], 1)
            d_out[f"{stage}_D_cond_logit"] = netD.get_cond_logits.outlogits[:-1](joint).flatten()
            if netD.get_uncond_logits is not None:
                d_out[f"{stage}_D_uncond"] = netD.get_uncond_logits(code)
                d_out[f"{stage}_D_uncond_logit"] = netD.get_uncond_logits.outlogits[:-1](code).flatten()
    io = {**d_out, "layouts": layouts, "config": c, "seed": SEED, "text": text, "z": z, "stage1_image": image1, "stage1_mu": mu,
          "stage1_logvar": logvar, "stage2_stage1_image": low, "stage2_image": image2}
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(io, args.out / "io.pt")
    print(args.out, c, {k: float(v.abs().max()) for k, v in io.items() if isinstance(v, torch.Tensor)})


if __name__ == "__main__":
    main()
