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
    with pytest.raises(WeightsError, match="not an option of BigGAN"):
        _convert("cifar", options={"dim_z": "16"})
    with pytest.raises(WeightsError, match="reads latent_dim from the weights"):
        _convert("cifar", options={"latent_dim": "16"})
    tuned = _convert("cifar", options={"bn_eps": "1e-4", "n_critic": "5", "betas": "[0.5, 0.999]"})
    assert (tuned.generator.output_bn.eps, tuned.n_critic, tuple(tuned.betas)) == (1e-4, 5, (0.5, 0.999))
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


# -- step equality with train_fns.GAN_training_function -----------------------------------------
def _parameters(module):
    return {name: p.detach() for name, p in module.named_parameters()}


def test_one_training_iteration_equals_the_official_train_fns_step():
    """4 D steps and 1 G step (hinge, Adam (0, 0.999), G ortho 1e-4, EMA) from the official weights
    and draws give the official losses and updated weights (fixture: make_fixtures_biggan_pytorch.py)."""
    import pytorch_lightning as pl

    from genmodels.callbacks import StopAtIteration

    step = FIXTURES / "step"
    io = torch.load(step / "io.pt", weights_only=True)
    model = convert("biggan-pytorch", [step / "before" / f for f in FILES], {})
    model.ema_start = 0  # the fixture's --ema_start 0
    assert (model.n_critic, model.lr_g, model.lr_d, tuple(model.betas), model.orthogonal_reg) == (4, 2e-4, 2e-4, (0.0, 0.999), 1e-4)
    # Replay the official draws: each D step's z and fake labels (the G step reuses the last ones).
    zs, ys = iter(io["z"]), iter(io["y_fake"])
    model.sample_latent = lambda n, generator=None: next(zs).clone()
    model.conditioning.draw = lambda n, generator=None, device=None: next(ys).clone()
    losses = {}
    d_loss, g_loss = model.discriminator_loss, model.generator_loss

    def record_d(batch, fake):
        loss, logs = d_loss(batch, fake)
        losses["D"] = loss.detach()
        return loss, logs

    def record_g(batch, fake):
        loss, logs = g_loss(batch, fake)
        losses["G"] = (loss - logs["train/orthogonal_reg"]).detach()  # the official G_loss excludes it
        return loss, logs

    model.discriminator_loss, model.generator_loss = record_d, record_g
    data = [{"image": x, "label": y} for x, y in zip(io["x"], io["y"])]
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=False)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        max_epochs=-1, num_sanity_val_steps=0, callbacks=[StopAtIteration(4)],
    )
    trainer.fit(model, loader)
    assert model.iteration == 4

    official = convert("biggan-pytorch", [step / "after" / f for f in FILES], {})
    before = convert("biggan-pytorch", [step / "before" / f for f in FILES], {})
    figures = {"loss_D": (losses["D"] - (io["D_loss_real"] + io["D_loss_fake"])).abs().item() / losses["D"].abs().item(),
               "loss_G": (losses["G"] - io["G_loss"]).abs().item() / losses["G"].abs().item()}
    for name in ("generator", "discriminator", "generator_ema"):
        ours, theirs, start = (_parameters(getattr(m, name)) for m in (model, official, before))
        diff = torch.cat([(ours[k] - theirs[k]).abs().flatten() for k in theirs])
        moved = torch.cat([(theirs[k] - start[k]).abs().flatten() for k in theirs])
        figures[f"{name}_max"] = diff.max().item()
        figures[f"{name}_equal"] = (diff <= 1e-5).float().mean().item()  # fraction equal to 1e-5 (lr / 20)
        figures[f"{name}_moved"] = (moved > 1e-6).float().mean().item()  # fraction the step changed
    print("step equality", figures)
    assert figures["loss_D"] <= 1e-4 and figures["loss_G"] <= 1e-4, figures
    # Adam with beta1 = 0 turns any gradient into a step of about lr: where the true gradient is
    # ~0 (biases before BatchNorm, dead units) float noise of either code decides the sign, so a
    # few elements differ by up to 2 lr per step. Every other element is equal.
    for name in ("generator", "discriminator"):
        assert figures[f"{name}_moved"] > 0.5, figures
        assert figures[f"{name}_equal"] >= 0.97 and figures[f"{name}_max"] <= 2 * 2e-4 * 4 + 1e-6, figures
    assert figures["generator_ema_max"] <= 1e-6, figures
