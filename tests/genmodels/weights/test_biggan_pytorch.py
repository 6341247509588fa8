"""biggan-pytorch importer (genmodels/weights/biggan_pytorch.py) against fixtures made by ajbrock's code.

tests/fixtures/official/biggan-pytorch/<variant>/ was written by
scripts/official/make_fixtures_biggan_pytorch.py from a checkout of ajbrock/BigGAN-PyTorch: G.pth,
G_ema.pth, D.pth as utils.save_weights saves them (every parameter and buffer perturbed) and io.pt,
the official eval-mode outputs on fixed inputs.
"""

import pathlib

import pytest
import torch

from genmodels import BigGAN
from genmodels.weights import WeightsError
from genmodels.weights.biggan_pytorch import convert

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "official" / "biggan-pytorch"
FILES = ("G.pth", "G_ema.pth", "D.pth")


def _convert(variant, files=FILES, options=None):
    return convert("biggan-pytorch", [FIXTURES / variant / f for f in files], options or {})


@pytest.mark.parametrize("variant, switches", [
    ("cifar", dict(hier=False, shared=False, attention_resolution=None, d_attention_blocks=[])),
    ("hier_shared_attn", dict(hier=True, shared=True, attention_resolution=16, d_attention_blocks=[0, 1, 2, 3])),
])
def test_official_outputs_are_reproduced(variant, switches):
    model = _convert(variant).eval()
    assert isinstance(model, BigGAN)
    assert {k: model.hparams[k] for k in switches} == switches
    io = torch.load(FIXTURES / variant / "io.pt", weights_only=True)
    with torch.no_grad():
        errors = {
            "G": (model.generator(io["z"], io["y"]) - io["G"]).abs().max().item(),
            "G_ema": (model.generator_ema(io["z"], io["y"]) - io["G_ema"]).abs().max().item(),
            "D": (model.discriminator(io["x"], io["y"]) - io["D"]).abs().max().item(),
            "sample": (model.decode(io["z"], io["y"]) - io["G_ema"]).abs().max().item(),  # samples use G_ema
        }
    print(variant, errors)
    assert max(errors.values()) <= 1e-4, errors
    assert (io["G"] - io["G_ema"]).abs().max() > 0.01  # the two generators really differ


def test_only_g_ema_builds_both_generators_from_it():
    model = _convert("cifar", files=("G_ema.pth",)).eval()
    io = torch.load(FIXTURES / "cifar" / "io.pt", weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(model.generator(io["z"], io["y"]), io["G_ema"], atol=1e-4, rtol=0)


def test_bad_sources_are_refused_in_one_line(tmp_path):
    with pytest.raises(WeightsError, match="G.pth or G_ema.pth"):
        _convert("cifar", files=("D.pth",))
    with pytest.raises(WeightsError, match="no option 'dim_z'"):
        _convert("cifar", options={"dim_z": "16"})
    with pytest.raises(WeightsError, match="different architectures"):
        convert("biggan-pytorch", [FIXTURES / "cifar" / "G.pth", FIXTURES / "hier_shared_attn" / "G_ema.pth"], {})
    bad = tmp_path / "G.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a PyTorch state dict"):
        convert("biggan-pytorch", [bad], {})
    state = torch.load(FIXTURES / "cifar" / "D.pth", weights_only=True)
    state["blocks.2.0.conv1.weight"] = state["blocks.2.0.conv1.weight"][:, :8]
    torch.save(state, tmp_path / "D.pth")
    with pytest.raises(WeightsError, match="blocks.2.0.conv1.weight"):
        convert("biggan-pytorch", [FIXTURES / "cifar" / "G.pth", tmp_path / "D.pth"], {})
    other = tmp_path / "netG_epoch_3.pth"
    torch.save({}, other)
    with pytest.raises(WeightsError, match="not a BigGAN-PyTorch network file"):
        convert("biggan-pytorch", [other], {})
