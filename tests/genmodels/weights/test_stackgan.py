"""stackgan importer (genmodels/weights/stackgan.py) against outputs of hanzhanggit/StackGAN-Pytorch's generators.

tests/fixtures/official/stackgan/io.pt was written by scripts/official/make_fixtures_stackgan.py:
STAGE1_G and STAGE2_G, every tensor set to the script's `value_of(name, shape)`, saved by the
checkout's miscc.utils.save_model with STAGE1_D / STAGE2_D (too big to commit: `netG_file` rebuilds them from the names and
shapes io.pt keeps), and their eval-mode outputs on fixed embeddings and z, with CA_NET's eps drawn
from the global RNG seeded io["seed"] (genmodels' CA draws the same numbers from a generator
seeded alike).
"""

import importlib.util
import pathlib

import pytest
import torch

from genmodels import StackGAN
from genmodels.apps.export import load_generative_model
from genmodels.commands import invoke
from genmodels.weights import WeightsError
from genmodels.weights.stackgan import convert

ROOT = pathlib.Path(__file__).resolve().parents[3]
IO = torch.load(ROOT / "tests" / "fixtures" / "official" / "stackgan" / "io.pt", weights_only=True)
TOLERANCE = 1e-4


def netG_file(stage: str, folder: pathlib.Path, network: str = "G") -> pathlib.Path:
    """netG_epoch_7.pth (or netD_epoch_last.pth) of ``stage`` exactly as the official save_model wrote it."""
    spec = importlib.util.spec_from_file_location("make_fixtures_stackgan", ROOT / "scripts" / "official" / "make_fixtures_stackgan.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = folder / stage / ("netG_epoch_7.pth" if network == "G" else "netD_epoch_last.pth")
    path.parent.mkdir(exist_ok=True)
    layout = IO["layouts"][stage if network == "G" else f"{stage}_D"]
    torch.save({k: script.value_of(k, tuple(shape)) for k, shape in layout.items()}, path)
    return path


def d_errors(model: StackGAN, stage: str) -> dict[str, float]:
    """D on the official G's images with mu: logits against the official pre-Sigmoid values, sigmoid against its outputs."""
    images, mu = (IO["stage1_image"], IO["stage1_mu"]) if stage == "stage1" else (IO["stage2_image"], IO["stage1_mu"][:1])
    with torch.no_grad():
        scores = model.discriminator(images, mu)
    scores = scores if scores.dim() == 2 else scores[:, None]
    found = {"cond_logit": (scores[:, 0] - IO[f"{stage}_D_cond_logit"]).abs().max().item(),
             "cond": (scores[:, 0].sigmoid() - IO[f"{stage}_D_cond"]).abs().max().item()}
    if scores.shape[1] == 2:
        found["uncond_logit"] = (scores[:, 1] - IO[f"{stage}_D_uncond_logit"]).abs().max().item()
        found["uncond"] = (scores[:, 1].sigmoid() - IO[f"{stage}_D_uncond"]).abs().max().item()
    return found


def stage1_errors(model: StackGAN) -> dict[str, float]:
    rng = torch.Generator().manual_seed(IO["seed"])
    with torch.no_grad():
        image, mu, logvar = model.generator(IO["z"], IO["text"], rng)
    return {"image": (image - IO["stage1_image"]).abs().max().item(), "mu": (mu - IO["stage1_mu"]).abs().max().item(),
            "logvar": (logvar - IO["stage1_logvar"]).abs().max().item()}


def stage2_errors(model: StackGAN) -> dict[str, float]:
    rng = torch.Generator().manual_seed(IO["seed"])
    with torch.no_grad():  # STAGE2_G.forward: its STAGE1_G, then its own CA (eps drawn in that order)
        low = model.stage1(IO["z"][:1], IO["text"][:1], rng)[0]
        image = model.generator(low, IO["text"][:1], rng)[0]
    return {"stage1_image": (low - IO["stage2_stage1_image"]).abs().max().item(),
            "image": (image - IO["stage2_image"]).abs().max().item()}


def test_official_outputs_are_reproduced(tmp_path):
    first = convert("stackgan", [netG_file("stage1", tmp_path), netG_file("stage1", tmp_path, "D")], {}).eval()
    hp = first.hparams
    assert (hp.stage, hp.image_shape, hp.gf_dim, hp.latent_dim, hp.condition_dim, hp.text_dim) == (1, (3, 64, 64), 32, 8, 8, 8)
    second = convert("stackgan", [netG_file("stage2", tmp_path, "D"), netG_file("stage2", tmp_path)], {}).eval()
    assert (second.hparams.stage, second.hparams.image_shape, second.hparams.residual_blocks) == (2, (3, 256, 256), 1)
    found = {"stage1": stage1_errors(first), "stage2": stage2_errors(second),
             "stage1_D": d_errors(first, "stage1"), "stage2_D": d_errors(second, "stage2")}
    assert len(found["stage2_D"]) == 4  # the unconditional head too
    print(found)
    assert max(max(f.values()) for f in found.values()) <= TOLERANCE, found


def test_the_command_writes_a_model_every_ckpt_accepts(tmp_path):
    out = tmp_path / "stackgan2.pt"
    invoke(["import-weights", "stackgan", str(netG_file("stage2", tmp_path)), "--out", str(out), "--option", "df_dim=4"])
    model = load_generative_model(out)
    assert max(stage2_errors(model).values()) <= TOLERANCE
    assert model.hparams.df_dim == 4
    assert model.sample(2, condition="a small bird", generator=torch.Generator().manual_seed(0)).shape == (2, 3, 256, 256)


def test_misfits_are_refused_in_one_line(tmp_path, capsys):
    stage2 = torch.load(netG_file("stage2", tmp_path), weights_only=True)
    bad_shape = dict(stage2, **{"hr_joint.0.weight": stage2["hr_joint.0.weight"][:, :-1]})
    unknown = dict(stage2, **{"attention.weight": torch.zeros(2)})
    two_widths = dict(stage2, **{"encoder.0.weight": torch.zeros(16, 3, 3, 3)})
    cases = {"shape.pth": (bad_shape, "has shape"), "unknown.pth": (unknown, "not one of StackGAN-Pytorch's"),
             "widths.pth": (two_widths, "one gf_dim for both"),
             "netD_epoch_last.pth": ({"encode_img.0.weight": torch.zeros(8, 3, 4, 4)}, "a generator is needed")}
    out = tmp_path / "model.pt"
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / name)
        with pytest.raises(SystemExit) as exit_:
            invoke(["import-weights", "stackgan", str(tmp_path / name), "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1, (name, err)
        assert not out.exists()
    g2, d2 = tmp_path / "stage2" / "netG_epoch_7.pth", netG_file("stage2", tmp_path, "D")
    with pytest.raises(WeightsError, match="layers with weights"):  # a stage-I D beside a stage-II G
        convert("stackgan", [g2, netG_file("stage1", tmp_path, "D")], {})
    d = torch.load(d2, weights_only=True)
    d["get_cond_logits.outlogits.1.running_mean"] = d["get_cond_logits.outlogits.1.running_mean"][:-1]
    torch.save(d, tmp_path / "netD_epoch_1.pth")
    with pytest.raises(WeightsError, match="outlogits.1.running_mean' has shape"):
        convert("stackgan", [g2, tmp_path / "netD_epoch_1.pth"], {})
    with pytest.raises(WeightsError, match="reads df_dim from the weights"):
        convert("stackgan", [g2, d2], {"df_dim": "4"})
    with pytest.raises(WeightsError, match="reads gf_dim from the weights"):
        convert("stackgan", [tmp_path / "stage2" / "netG_epoch_7.pth"], {"gf_dim": "8"})
