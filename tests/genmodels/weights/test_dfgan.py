"""dfgan importer (genmodels/weights/dfgan.py) against fixtures made by tobran/DF-GAN's classes.

tests/fixtures/official/dfgan/ was written by scripts/official/make_fixtures_dfgan.py: NetG, NetD,
NetC of the CVPR 2022 code (every parameter perturbed, one Adam step taken) saved by the checkout's
lib.utils.save_models, and io.pt, their eval-mode outputs on fixed inputs.
"""

import pathlib

import pytest
import torch

from genmodels import DFGAN
from genmodels.apps.export import load_generative_model
from genmodels.commands import invoke
from genmodels.weights import WeightsError
from genmodels.weights.dfgan import convert

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "official" / "dfgan"
FILE = FIXTURES / "state_epoch_003.pth"
TOLERANCE = 1e-4


def errors(model, io) -> dict[str, float]:
    with torch.no_grad():
        return {"G": (model.generator(io["z"], io["e"]) - io["G"]).abs().max().item(),
                "D": (model.discriminator(io["x"], io["e"]) - io["D"]).abs().max().item()}


def ddp_file(tmp_path: pathlib.Path) -> pathlib.Path:
    """The fixture as a multi-GPU run saves it: every key of netG/netD/netC under 'module.'."""
    record = torch.load(FILE, weights_only=True)
    record["model"] = {net: {f"module.{k}": v for k, v in state.items()} for net, state in record["model"].items()}
    torch.save(record, tmp_path / "state_epoch_004.pth")
    return tmp_path / "state_epoch_004.pth"


def test_official_outputs_are_reproduced(tmp_path):
    io = torch.load(FIXTURES / "io.pt", weights_only=True)
    for path in (FILE, ddp_file(tmp_path)):
        model = convert("dfgan", [path], {}).eval()
        assert isinstance(model, DFGAN)
        hp = model.hparams
        assert (hp.image_shape, hp.latent_dim, hp.ngf, hp.ndf, hp.text_dim) == ((3, 32, 32), 8, 4, 4, 16)
        found = errors(model, io)
        print(path.name, found)
        assert max(found.values()) <= TOLERANCE, found


def test_the_command_writes_a_model_every_ckpt_accepts(tmp_path):
    out = tmp_path / "dfgan.pt"
    invoke(["import-weights", "dfgan", str(ddp_file(tmp_path)), "--out", str(out), "--option", "ema_decay=0.999"])
    model = load_generative_model(out)
    io = torch.load(FIXTURES / "io.pt", weights_only=True)
    assert max(errors(model, io).values()) <= TOLERANCE
    with torch.no_grad():  # G's EMA starts as the official G
        assert (model.sampling_generator(io["z"], io["e"]) - io["G"]).abs().max().item() <= TOLERANCE
    record = torch.load(out, weights_only=True)
    assert record["imported_from"]["format"] == "dfgan"
    assert any(k.startswith("discriminator.joint.") for k in record["state_dict"])


def test_misfits_are_refused_in_one_line(tmp_path, capsys):
    record = torch.load(FILE, weights_only=True)
    cases = {}
    wrong = {**record, "model": {**record["model"], "netC": {**record["model"]["netC"]}}}
    wrong["model"]["netC"]["joint_conv.2.weight"] = wrong["model"]["netC"]["joint_conv.2.weight"][:, :-1]
    cases["shape.pth"] = (wrong, "has shape")
    old = {**record, "model": {**record["model"], "netG": {**record["model"]["netG"]}}}
    old["model"]["netG"]["GBlocks.0.gamma"] = torch.zeros(1)  # the 2020 code's learnable residual scale in G
    cases["old.pth"] = (old, "not one of DF-GAN's")
    cases["netG.pth"] = (record["model"]["netG"], "not a DF-GAN checkpoint")
    for name, (content, message) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(WeightsError, match=message):
            convert("dfgan", [tmp_path / name], {})
        out = tmp_path / "model.pt"
        with pytest.raises(SystemExit) as exit_:
            invoke(["import-weights", "dfgan", str(tmp_path / name), "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1, err
        assert not out.exists()
    with pytest.raises(WeightsError, match="reads ngf from the weights"):
        convert("dfgan", [FILE], {"ngf": "8"})


def test_the_authors_damsm_text_encoder_comes_with_damsm_ckpt(tmp_path):
    """import-weights damsm, then dfgan --option damsm_ckpt=...: the file conditions on the authors' text encoder."""
    from genmodels.text.damsm import load_damsm
    from tests.genmodels.weights.test_damsm import FIXTURES as DAMSM_FIXTURES, write_sources

    sources = write_sources(tmp_path)
    damsm = tmp_path / "damsm.pt"
    invoke(["import-weights", "damsm", *map(str, sources), "--out", str(damsm)])
    out = tmp_path / "dfgan.pt"
    invoke(["import-weights", "dfgan", str(FILE), "--out", str(out), "--option", f"damsm_ckpt={damsm}"])
    model = load_generative_model(out)
    encoder = load_damsm(str(damsm)).text_encoder.state_dict()
    assert model.vocab == load_damsm(str(damsm)).vocab and model.vocab[2:4] == ["this", "bird"]
    assert all(torch.equal(v, model.text_encoder.state_dict()[k]) for k, v in encoder.items())
    io = torch.load(DAMSM_FIXTURES / "io.pt", weights_only=True)
    tokens = torch.where(io["captions"] > 0, io["captions"] + 1, 0)
    assert (model.encode_text(tokens, io["lengths"])[1] - io["sentence"]).abs().max() <= TOLERANCE  # AttnGAN's sent_emb
    assert model.sample(2, condition="this bird has a red crown", generator=torch.Generator().manual_seed(0)).shape == (2, 3, 32, 32)
    with pytest.raises(WeightsError, match="damsm_ckpt=.*missing.pt"):
        convert("dfgan", [FILE], {"damsm_ckpt": str(tmp_path / "missing.pt")})
