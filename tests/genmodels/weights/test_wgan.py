"""wgan importer (genmodels/weights/wgan.py) against fixtures made by martinarjovsky/WassersteinGAN's classes.

tests/fixtures/official/wgan/ was written by scripts/official/make_fixtures_wgan.py: DCGAN_G and
DCGAN_D (every parameter and buffer perturbed) saved as main.py saves them, and io.pt, their
eval-mode outputs on fixed inputs.
"""

import pathlib

import pytest
import torch

from genmodels import WGAN
from genmodels.weights import WeightsError
from genmodels.weights.wgan import convert

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "official" / "wgan"
FILES = [FIXTURES / "netG_epoch_3.pth", FIXTURES / "netD_epoch_3.pth"]


def test_official_outputs_are_reproduced():
    model = convert("wgan", FILES, {}).eval()
    assert isinstance(model, WGAN)
    assert (model.hparams.image_shape, model.hparams.latent_dim, model.hparams.feature_maps) == ((3, 32, 32), 8, 8)
    io = torch.load(FIXTURES / "io.pt", weights_only=True)
    with torch.no_grad():
        scores = model.discriminator(io["x"])
        errors = {
            "G": (model.generator(io["z"]) - io["G"]).abs().max().item(),
            "D": (scores - io["D"]).abs().max().item(),
            "D_mean": (scores.mean() - io["D_mean"]).abs().max().item(),  # the official critic's output
            "sample": (model.sample_from(io["z"]) - io["G"]).abs().max().item(),
        }
    print(errors)
    assert max(errors.values()) <= 1e-4, errors


def test_bad_sources_are_refused_in_one_line(tmp_path):
    with pytest.raises(WeightsError, match="netG_epoch_N.pth"):
        convert("wgan", FILES[1:], {})
    with pytest.raises(WeightsError, match="not an option of WGAN"):
        convert("wgan", FILES, {"nz": "8"})
    assert convert("wgan", FILES, {"n_critic": "100"}).n_critic == 100
    # WGAN passes DCGAN's options on through **kwargs: they are options all the same
    assert convert("wgan", FILES, {"latent_distribution": "uniform"}).hparams.latent_distribution == "uniform"
    with pytest.raises(WeightsError, match="wgan reads feature_maps from the weights"):
        convert("wgan", FILES, {"feature_maps": "16"})
    state = torch.load(FILES[0], weights_only=True)
    state["main.extra-layers-0:8:conv.weight"] = torch.zeros(8, 8, 3, 3)
    torch.save(state, tmp_path / "netG_epoch_1.pth")
    with pytest.raises(WeightsError, match="n_extra_layers"):
        convert("wgan", [tmp_path / "netG_epoch_1.pth"], {})
    d = torch.load(FILES[1], weights_only=True)
    key = next(k for k in d if k.endswith("batchnorm.weight"))
    d[key] = d[key][:-1]
    torch.save(d, tmp_path / "netD_epoch_1.pth")
    with pytest.raises(WeightsError, match="has shape"):
        convert("wgan", [FILES[0], tmp_path / "netD_epoch_1.pth"], {})
