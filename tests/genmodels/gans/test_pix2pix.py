"""Pix2Pix: the paper's model by default, its objective, the sampling contract, and overfitting a tiny paired set."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml

from datamodules import PairedImageDataModule
from datamodules.synthetic_translation import write_edges2shapes
from genmodels import Pix2Pix
from genmodels.callbacks import StopAtIteration
from genmodels.checkpoints import load_model
from genmodels.conditioning import ConditionError
from genmodels.gans.stabilization import lr_factor
from genmodels.metrics.classifier import save_classifier
from genmodels.nn.unet import AlwaysDropout
from tests.cli.common import EXPERIMENTS
from tests.genmodels.apps.control_helpers import save_model_checkpoint, single_thread
from tests.genmodels.gans.schedule_helpers import official_lr_per_epoch
from tests.genmodels.metrics.fixtures import make_classifier


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def tiny(**kwargs):
    return Pix2Pix(**{**dict(image_shape=(3, 32, 32), ngf=8, ndf=8, dropout_layers="paper"), **kwargs})  # 5 levels: junyanz has no dropout


def edges2shapes(root, **kwargs):
    write_edges2shapes(root, {"train": 4, "val": 4}, size=32)
    options = dict(name="edges2shapes", data_dir=str(root), image_size=32, load_size=32, flip=False, batch_size=4)
    return PairedImageDataModule(**{**options, **kwargs})


def trainer(iterations, **kwargs):
    options = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
                   callbacks=[StopAtIteration(iterations)])
    return pl.Trainer(**{**options, **kwargs})


def test_defaults_are_the_papers_model():
    model = Pix2Pix()
    assert model.image_shape == (3, 256, 256) and model.generator.num_downs == 8  # U-Net-256
    assert model.discriminator.net.patch_size == 70
    assert model.lambda_l1 == 100.0 and model.loss_name == "nonsaturating"
    assert (model.lr_g, model.lr_d, model.betas) == (2e-4, 2e-4, (0.5, 0.999))
    dropouts = [m for m in model.generator.modules() if isinstance(m, AlwaysDropout)]
    assert len(dropouts) == 3 and all(m.p == 0.5 and m.at_test for m in dropouts)  # CD512-CD1024-CD1024
    # Parameter counts of the reference architecture: 54.41M for U-Net-256, 2.77M for the 70x70 PatchGAN.
    assert round(sum(p.numel() for p in model.generator.parameters()) / 1e6, 2) == 54.41
    assert round(sum(p.numel() for p in model.discriminator.parameters()) / 1e6, 2) == 2.77


def test_discriminator_objective_is_halved_and_conditioned_on_the_source():
    model = tiny().train()
    batch = {k: torch.rand(2, 3, 32, 32) * 2 - 1 for k in ("A", "B")}
    batch["image"] = batch["B"]
    fake = torch.rand(2, 3, 32, 32) * 2 - 1
    loss, _ = model.discriminator_loss(batch, fake)
    with torch.random.fork_rng():  # BatchNorm on batch statistics: same outputs for the same inputs
        real_out = model.discriminator.net(torch.cat([batch["A"], batch["B"]], 1))
        fake_out = model.discriminator.net(torch.cat([batch["A"], fake], 1))
    expected = 0.5 * (F.softplus(-real_out).mean() + F.softplus(fake_out).mean())
    assert torch.allclose(loss, expected, atol=1e-6)


def test_generator_objective_is_gan_plus_100_l1():
    model = tiny().train()
    batch = {"A": torch.zeros(1, 3, 32, 32), "B": torch.ones(1, 3, 32, 32)}
    batch["image"] = batch["B"]
    fake = torch.full((1, 3, 32, 32), 0.5)
    loss, logs = model.generator_loss(batch, fake)
    assert logs["train/l1"] == pytest.approx(0.5)
    assert loss.item() == pytest.approx(logs["train/loss_g_gan"].item() + 100 * 0.5, rel=1e-5)


def test_sample_translates_the_condition_with_seeded_dropout_noise():
    model = tiny().eval()
    sources = torch.rand(3, 3, 32, 32) * 2 - 1
    state = torch.get_rng_state()
    a = model.sample(3, condition=sources, generator=torch.Generator().manual_seed(1))
    b = model.sample(3, condition=sources, generator=torch.Generator().manual_seed(1))
    c = model.sample(3, condition=sources, generator=torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
    assert torch.equal(a, b) and not torch.equal(a, c)  # dropout stays on at test time: the noise z
    assert a.shape == (3, 3, 32, 32) and a.abs().max() <= 1
    assert model.sample(2, condition=sources[0]).shape == (2, 3, 32, 32)  # one source, repeated
    with pytest.raises(ConditionError, match="source images"):
        model.sample(2, condition=3)
    with pytest.raises(ConditionError, match=r"2 source images \(2, 3, H, W\)"):
        model.sample(2, condition=sources)
    with pytest.raises(ConditionError, match="got shape \\(3, 1, 32, 32\\)"):
        model.sample(3, condition=sources[:, :1])


def test_overfits_a_tiny_paired_set(tmp_path):
    """Measured: L1 0.025 after 400 iterations (~6 s); predicting white scores 0.26 and the outline itself 0.20."""
    pl.seed_everything(0)
    dm = edges2shapes(tmp_path)
    model = tiny(lr_g=2e-3)
    trainer(400).fit(model, datamodule=dm)
    batch = dm.example_batch(4, split="train")
    with torch.no_grad():
        fake = model.eval().sample(4, condition=batch["A"], generator=torch.Generator().manual_seed(0))
    l1 = (fake - batch["B"]).abs().mean().item()
    white = (1 - batch["B"]).abs().mean().item()
    print(f"pix2pix train L1 {l1:.4f} (all-white baseline {white:.4f})")
    assert l1 < 0.06 and white > 0.2, (l1, white)
    # The example sources (for sample() without a condition) are the val sources, kept in checkpoints.
    assert torch.equal(model.example_sources, dm.example_batch(4)["A"])
    restored = load_model(save_model_checkpoint(model, tmp_path / "m.ckpt"))
    assert torch.equal(restored.example_sources, model.example_sources)
    assert torch.equal(restored.sample(2, generator=torch.Generator().manual_seed(0)),
                       model.sample(2, generator=torch.Generator().manual_seed(0)))


def test_validation_logs_l1_psnr_ssim_and_fid(tmp_path):
    classifier = tmp_path / "lenet.pt"
    save_classifier(make_classifier(channels=3), classifier)
    dm = edges2shapes(tmp_path)
    model = tiny(fid_extractor=f"classifier:{classifier}")
    (metrics,) = trainer(1, limit_val_batches=None).validate(model, datamodule=dm, verbose=False)
    assert set(metrics) == {"val/l1", "val/psnr", "val/ssim", "val/fid_lenet"}
    batch = dm.example_batch(4)
    with torch.no_grad():  # the same seeded translation as validation's first batch
        from genmodels.gans.translation import seeded_noise
        with seeded_noise(torch.Generator().manual_seed(model.val_seed), model.device):
            fake = model.translate(batch["A"])
    assert metrics["val/l1"] == pytest.approx((fake - batch["B"]).abs().mean().item(), rel=1e-4)
    assert metrics["val/psnr"] > 0 and -1 <= metrics["val/ssim"] <= 1 and metrics["val/fid_lenet"] > 0
    assert not any(k.startswith("_fid") or "extractor" in k for k in model.state_dict())  # never checkpointed


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="square"):
        Pix2Pix(image_shape=(3, 32, 64))
    with pytest.raises(ValueError, match="power-of-two"):
        Pix2Pix(image_shape=(3, 48, 48))


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    # Dropout noise and the jitter must continue exactly: 8 pairs at batch 2, resumed mid-epoch at 3.
    from tests.cli.common import fit, load
    from tests.datamodules.formats import experiment_fixture_edges2shapes

    args = [*experiment_fixture_edges2shapes(tmp_path / "data"), "--model.init_args.ngf", "4", "--model.init_args.ndf", "4",
            "--data.init_args.image_size", "32", "--data.init_args.load_size", "36", "--data.init_args.batch_size", "2",
            "--trainer.logger", "false", "--checkpoint.every_n_iterations", "3"]
    fit("pix2pix/edges2shapes_cpu.yaml", tmp_path / "straight", *args, "--max_iterations", "6")
    fit("pix2pix/edges2shapes_cpu.yaml", tmp_path / "resumed", *args, "--max_iterations", "3")
    fit("pix2pix/edges2shapes_cpu.yaml", tmp_path / "resumed", *args, "--max_iterations", "6", "--ckpt_path", "last")
    a, b = (load(tmp_path / run / "checkpoints/last.ckpt") for run in ("straight", "resumed"))
    assert a["genmodels"]["iteration"] == b["genmodels"]["iteration"] == 6
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert a["PairedImageDataModule"] == b["PairedImageDataModule"]


def test_maps_schedule_equals_the_authors_per_epoch_rule():
    config = yaml.safe_load((EXPERIMENTS / "pix2pix/maps.yaml").read_text())
    model, epoch = config["model"]["init_args"], 1096  # maps training pairs at batch 1
    assert config["data"]["init_args"]["batch_size"] == 1 and config["max_iterations"] == 200 * epoch
    schedule = (model["lr_schedule"], 0, model["lr_decay_start"], model["lr_decay_end"], model["lr_decay_every"])
    for k, rate in enumerate(official_lr_per_epoch(100, 100)):
        for i in (k * epoch, (k + 1) * epoch - 1):
            assert lr_factor(i, *schedule) == pytest.approx(rate, abs=1e-12), (k, i)
    assert not Pix2Pix.generator_first  # pix2pix_model.py optimize_parameters: D, then G
