"""cyclegan and pix2pix importers (genmodels/weights/junyanz.py) against fixtures made by the authors' networks.

tests/fixtures/official/{cyclegan,pix2pix}/ were written by scripts/official/make_fixtures_junyanz.py
from junyanz/pytorch-CycleGAN-and-pix2pix's models/networks.py: ``latest_net_*.pth`` as
save_networks writes them (every parameter and buffer perturbed), ``pretrained/latest_net_G.pth``
as the download scripts publish them, and io.pt: the official outputs in test.py's default mode
(no --eval) on fixed uint8 images, pix2pix's dropout drawn after ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import CycleGAN, Pix2Pix
from genmodels.apps.export import load_generative_model
from genmodels.commands import invoke
from genmodels.weights import WeightsError
from genmodels.weights.junyanz import convert

ROOT = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "official"
CYCLE = [ROOT / "cyclegan" / f"latest_net_{n}.pth" for n in ("G_A", "G_B", "D_A", "D_B")]
PIX = [ROOT / "pix2pix" / f"latest_net_{n}.pth" for n in ("G", "D")]
TOLERANCE = 1e-4


def _float(u8: torch.Tensor) -> torch.Tensor:
    return u8.float() / 127.5 - 1


def _err(ours: torch.Tensor, official: torch.Tensor) -> float:
    assert ours.shape == official.shape
    assert float(official.abs().max()) > 0.1  # a fixture output that could not catch anything would pass any model
    return float((ours - official).abs().max())


def test_cyclegan_outputs_are_reproduced():
    model = convert("cyclegan", CYCLE, {}).eval()
    assert isinstance(model, CycleGAN)
    h = model.hparams
    assert (h.ngf, h.n_blocks, h.ndf, h.n_layers_d, h.norm, h.one_way, tuple(h.image_shape)) == (4, 6, 4, 3, "instance", False, (3, 256, 256))
    io = torch.load(ROOT / "cyclegan" / "io.pt", weights_only=True)
    A, B = _float(io["A"]), _float(io["B"])
    with torch.no_grad():
        errors = {
            "G_A(A)": _err(model.translate(A), io["fake_B"]),
            "G_B(B)": _err(model.translate(B, "BtoA"), io["fake_A"]),
            "G_B(G_A(A))": _err(model.translate(io["fake_B"], "BtoA"), io["rec_A"]),
            "D_A(B)": _err(model.discriminator.D_Y(B), io["D_A_real_B"]),
            "D_B(fake A)": _err(model.discriminator.D_X(io["fake_A"]), io["D_B_fake_A"]),
            "sample": _err(model.sample(2, condition=A), io["fake_B"]),
        }
    print("cyclegan", {k: f"{v:.2g}" for k, v in errors.items()})
    assert max(errors.values()) <= TOLERANCE, errors


def test_current_upstream_files_without_instance_norm_buffers_import_the_same(tmp_path):
    """The 2018 code saved InstanceNorm running buffers; today's saves none (load_networks deletes them)."""
    files = []
    for path in CYCLE:
        state = {k: v for k, v in torch.load(path, weights_only=True).items() if "running" not in k and "num_batches" not in k}
        torch.save(state, tmp_path / path.name)
        files.append(tmp_path / path.name)
    # and one saved from a DataParallel wrapper ('module.' keys) reads the same
    state = torch.load(CYCLE[0], weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, files[0])
    ours, reference = convert("cyclegan", files, {}), convert("cyclegan", CYCLE, {})
    for (name, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        if not name.startswith("example"):
            assert torch.equal(a, b), name


def test_a_lone_published_cyclegan_generator_makes_a_one_way_cyclegan():
    model = convert("cyclegan", [ROOT / "cyclegan" / "pretrained" / "latest_net_G.pth"], {"image_size": "32"}).eval()
    assert (model.hparams.n_blocks, model.hparams.ngf, model.one_way, model.bidirectional) == (9, 2, True, False)
    assert tuple(model.image_shape) == (3, 32, 32)
    io = torch.load(ROOT / "cyclegan" / "pretrained" / "io.pt", weights_only=True)
    with torch.no_grad():
        error = _err(model.translate(_float(io["A"])), io["fake_B"])
        print("cyclegan/pretrained G_A(A)", f"{error:.2g}")
        assert error <= TOLERANCE
        with pytest.raises(ValueError, match="only for AtoB"):
            model.translate(_float(io["A"]), "BtoA")
        batch = {"A": _float(io["A"]), "B": _float(io["A"])}
        assert len(model.grid_columns(batch)) == 2 and model.extra_metrics(batch, io["fake_B"]) == {}


@pytest.mark.parametrize("variant, files, arch", [
    ("pix2pix", PIX, dict(ngf=3, ndf=4, n_layers_d=3, norm="batch", image_shape=(3, 128, 128))),
    ("pix2pix/pretrained", [ROOT / "pix2pix" / "pretrained" / "latest_net_G.pth"], dict(ngf=2, norm="batch", image_shape=(3, 256, 256))),
])
def test_pix2pix_outputs_are_reproduced(variant, files, arch):
    model = convert("pix2pix", files, {}).eval()
    assert isinstance(model, Pix2Pix)
    assert {k: (tuple(v) if k == "image_shape" else v) for k, v in model.hparams.items() if k in arch} == arch
    io = torch.load(ROOT / variant / "io.pt", weights_only=True)
    A = _float(io["A"])
    errors = {}
    with torch.no_grad():
        torch.manual_seed(int(io["seed"]))  # the official dropout masks (dropout stays on, as test.py without --eval)
        fake = model.translate(A)
        errors["G(A)"] = _err(fake, io["fake_B"]) if "fake_B" in io else _err(fake[..., 96:160, 96:160], io["fake_B_crop"])
        if "D_real" in io:
            errors["D(A, B)"] = _err(model.discriminator(_float(io["B"]), A), io["D_real"])
            errors["D(A, G(A))"] = _err(model.discriminator(io["fake_B"], A), io["D_fake"])
        torch.manual_seed(int(io["seed"]) + 1)
        assert float((model.translate(A) - fake).abs().max()) > 0.01  # other dropout masks: the seed mattered
    print(variant, {k: f"{v:.2g}" for k, v in errors.items()})
    assert max(errors.values()) <= TOLERANCE, errors


def _saved(tmp_path, path, name=None, edit=None):
    state = torch.load(path, weights_only=True)
    if edit:
        edit(state)
    folder = tmp_path / str(len(list(tmp_path.iterdir())))  # one folder per file: the cases are built up front
    folder.mkdir()
    out = folder / (name or path.name)
    torch.save(state, out)
    return out


def test_misfits_are_refused_in_one_line(tmp_path):
    cases = [
        ("cyclegan", [ROOT / "cyclegan" / "io.pt"], "not a cyclegan network file"),
        ("pix2pix", [CYCLE[0]], "not a pix2pix network file"),
        ("cyclegan", [_saved(tmp_path, PIX[0], "latest_net_G_A.pth")], "--netG unet_128: genmodels' CycleGAN has ResNet generators only"),
        ("pix2pix", [_saved(tmp_path, CYCLE[0], "latest_net_G.pth")], "--netG resnet_6blocks: genmodels' Pix2Pix has a U-Net generator only"),
        ("cyclegan", [CYCLE[1]], "needs latest_net_G_A.pth"),
        ("cyclegan", [CYCLE[0], ROOT / "cyclegan" / "pretrained" / "latest_net_G.pth"], "lone generator"),
        ("cyclegan", [CYCLE[0], _saved(tmp_path, ROOT / "cyclegan" / "pretrained" / "latest_net_G.pth", "latest_net_G_B.pth")], "--ngf differs"),
        ("pix2pix", [_saved(tmp_path, PIX[1], "latest_net_G.pth")], "is this a D file?"),
        ("pix2pix", [PIX[0], _saved(tmp_path, CYCLE[2], "latest_net_D.pth")], "D sees 3 channels"),
        ("cyclegan", CYCLE[:2] + [_saved(tmp_path, CYCLE[2], edit=lambda s: s.update({"model.8.weight": s["model.8.weight"][:, :-1]}))],
         "tensor 'model.8.weight' has shape (32, 15, 4, 4), the network needs (32, 16, 4, 4)"),
        ("cyclegan", [_saved(tmp_path, CYCLE[0], edit=lambda s: s.pop("model.7.weight"))], "no tensor for 'net.7.weight'"),
        ("cyclegan", [CYCLE[0], _saved(tmp_path, CYCLE[2], "latest_net_D_B.pth",
                                       edit=lambda s: [s.pop(k) for k in list(s)] and s.update({"net.0.weight": torch.zeros(4, 3, 1, 1)}))],
         "--netD pixel"),
        ("cyclegan", [CYCLE[0]], "--option ngf"),
        ("cyclegan", [CYCLE[0]], "not an option of CycleGAN"),
        ("cyclegan", [CYCLE[0]], "image_size=30"),
        ("pix2pix", PIX, "pix2pix reads it from the U-Net's depth"),
    ]
    options = {"--option ngf": {"ngf": "8"}, "not an option of CycleGAN": {"which_model_netG": "unet_256"},
               "image_size=30": {"image_size": "30"}, "pix2pix reads it from the U-Net's depth": {"image_size": "64"}}
    for fmt, files, message in cases:
        with pytest.raises(WeightsError) as err:
            convert(fmt, files, options.get(message, {}))
        assert message in str(err.value) and "\n" not in str(err.value), (message, str(err.value))


def test_training_options_and_dropout_come_from_options():
    model = convert("pix2pix", PIX, {"dropout": "0", "lambda_l1": "50", "lr_g": "1e-4"})
    assert (model.hparams.dropout, model.lambda_l1, model.hparams.lr_g) == (0, 50, 1e-4)
    cycle = convert("cyclegan", CYCLE, {"image_size": "64", "pool_size": "0", "lambda_identity": "0"})
    assert tuple(cycle.image_shape) == (3, 64, 64) and cycle.lambda_identity == 0


def test_import_weights_then_translate_through_the_commands(tmp_path, capsys):
    out = tmp_path / "horse2zebra.pt"
    invoke(["import-weights", "cyclegan", *map(str, CYCLE), "--out", str(out), "--option", "image_size=32"])
    model = load_generative_model(out)
    assert isinstance(model, CycleGAN) and model.hparams.ngf == 4
    io = torch.load(ROOT / "cyclegan" / "io.pt", weights_only=True)
    source, target = tmp_path / "horses", tmp_path / "zebras"
    source.mkdir()
    Image.fromarray(io["A"][0].permute(1, 2, 0).numpy()).save(source / "a.png")
    invoke(["translate", "--ckpt", str(out), "--input", str(source), "--out", str(target)])
    written = torch.from_numpy(np.array(Image.open(target / "a.png"))).permute(2, 0, 1).float()
    official = (io["fake_B"][0] + 1) * 127.5
    assert float((written - official).abs().max()) <= 1.0  # the official translation, to 8-bit rounding

    lone = tmp_path / "lone.pt"
    invoke(["import-weights", "cyclegan", str(ROOT / "cyclegan" / "pretrained" / "latest_net_G.pth"), "--out", str(lone)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        invoke(["translate", "--ckpt", str(lone), "--input", str(source), "--out", str(tmp_path / "back"), "--direction", "BtoA"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "drop --direction BtoA" in err and len(err.splitlines()) == 1, err

    p2p = tmp_path / "facades.pt"
    invoke(["import-weights", "pix2pix", *map(str, PIX), "--out", str(p2p)])
    invoke(["sample", "--ckpt", str(p2p), "--num-samples", "2", "--out", str(tmp_path / "grid.png")])
    assert Image.open(tmp_path / "grid.png").size[0] >= 128


def test_a_misfit_through_the_command_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "model.pt"
    with pytest.raises(SystemExit) as exit_:
        invoke(["import-weights", "pix2pix", str(CYCLE[0]), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "not a pix2pix network file" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def _parameters(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def test_one_training_iteration_equals_the_official_optimize_parameters():
    """G and F step, then D_X and D_Y step on the same fakes (pool_size 0 on both sides), from the
    official weights and batch: the official losses and updated weights (cyclegan/step/, made by
    CycleGANModel.optimize_parameters in make_fixtures_junyanz.py --step-checkout)."""
    import pytorch_lightning as pl

    from genmodels.callbacks import StopAtIteration

    model = convert("cyclegan", CYCLE, {"image_size": "32", "pool_size": "0"})
    assert (model.lr_g, model.lr_d, tuple(model.betas), model.lambda_cycle, model.lambda_identity) == (2e-4, 2e-4, (0.5, 0.999), 10.0, 0.5)
    io = torch.load(ROOT / "cyclegan" / "io.pt", weights_only=True)
    official = torch.load(ROOT / "cyclegan" / "step" / "io.pt", weights_only=True)
    losses = {}
    d_loss, g_loss = model.discriminator_loss, model.generator_loss

    def record_d(batch, fake):
        loss, logs = d_loss(batch, fake)
        losses["D"] = loss.detach()
        return loss, logs

    def record_g(batch, fake):
        loss, logs = g_loss(batch, fake)
        losses["G"] = loss.detach()
        return loss, logs

    model.discriminator_loss, model.generator_loss = record_d, record_g
    before = {"G": _parameters(model.generator), "D": _parameters(model.discriminator)}
    loader = torch.utils.data.DataLoader([{"A": _float(io["A"]), "B": _float(io["B"])}], batch_size=None)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        max_epochs=-1, num_sanity_val_steps=0, callbacks=[StopAtIteration(1)],
    )
    trainer.fit(model, loader)
    assert model.iteration == 1

    after = convert("cyclegan", [ROOT / "cyclegan" / "step" / f"latest_net_{n}.pth" for n in ("G_A", "G_B", "D_A", "D_B")],
                    {"image_size": "32"})
    figures = {
        "loss_G": abs(float(losses["G"] - official["loss_G"])) / float(official["loss_G"]),
        "loss_D": abs(float(losses["D"] - (official["loss_D_A"] + official["loss_D_B"]))) / float(official["loss_D_A"] + official["loss_D_B"]),
    }
    for name, key in (("generator", "G"), ("discriminator", "D")):
        ours, theirs, start = _parameters(getattr(model, name)), _parameters(getattr(after, name)), before[key]
        cancelled = _biases_before_instance_norm(getattr(model, name))
        worst = {k: float((ours[k] - theirs[k]).abs().max()) for k in theirs}
        figures[f"{name}_max"] = max(v for k, v in worst.items() if k not in cancelled)
        figures[f"{name}_biases_before_norm_max"] = max(worst[k] for k in cancelled)
        figures[f"{name}_moved"] = min(float((theirs[k] - start[k]).abs().max()) for k in theirs)  # every tensor changed
    print("cyclegan step equality", {k: f"{v:.2g}" for k, v in figures.items()})
    assert figures["loss_G"] <= 1e-5 and figures["loss_D"] <= 1e-5, figures
    assert figures["generator_moved"] > 1e-5 and figures["discriminator_moved"] > 1e-5, figures
    assert figures["generator_max"] <= 1e-6 and figures["discriminator_max"] <= 1e-6, figures  # lr is 2e-4
    # A bias right before InstanceNorm is subtracted away again: its true gradient is 0, and Adam's
    # first step turns the float noise of either code into a step of up to lr of either sign.
    assert figures["generator_biases_before_norm_max"] <= 2 * 2e-4 and figures["discriminator_biases_before_norm_max"] <= 2 * 2e-4


def _biases_before_instance_norm(network):
    names = set()
    for prefix, module in network.named_modules():
        children = list(module.named_children())
        for (name, child), (_, following) in zip(children, children[1:]):
            if isinstance(following, torch.nn.InstanceNorm2d) and getattr(child, "bias", None) is not None:
                names.add(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    assert names
    return names
