"""CycleGAN: the paper's model by default, its objective, cycle loss going down, and the image pool resuming exactly."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml

from datamodules import UnpairedImageDataModule
from datamodules.synthetic_translation import write_red2blue
from genmodels import CycleGAN, Pix2Pix
from genmodels.callbacks import StopAtIteration
from genmodels.errors import UserError
from genmodels.gans.stabilization import lr_factor
from genmodels.nn.resnet_generator import ResnetBlock
from tests.cli.common import EXPERIMENTS, fit, load
from tests.datamodules.formats import experiment_fixture_red2blue
from tests.genmodels.apps.control_helpers import single_thread
from tests.genmodels.gans.schedule_helpers import official_lr_per_epoch


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


class Recording(CycleGAN):
    """Keeps every generator step's cycle loss."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.cycle_losses = []

    def generator_loss(self, batch, fakes):
        loss, logs = super().generator_loss(batch, fakes)
        self.cycle_losses.append(logs["train/loss_cycle"].item())
        return loss, logs


def red2blue(root, **kwargs):
    write_red2blue(root, {"trainA": 8, "trainB": 8, "testA": 2, "testB": 2}, size=32)
    options = dict(name="red2blue", data_dir=str(root), image_size=32, load_size=36, batch_size=4)
    return UnpairedImageDataModule(**{**options, **kwargs})


def test_defaults_are_the_papers_model():
    model = CycleGAN()
    assert model.loss_name == "least_squares" and model.lambda_cycle == 10.0 and model.lambda_identity == 0.5
    assert model.pool_A.size == model.pool_B.size == 50
    assert (model.lr_g, model.lr_d, model.betas) == (2e-4, 2e-4, (0.5, 0.999))
    G = model.generator.G
    assert sum(isinstance(m, ResnetBlock) for m in G.modules()) == 9
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in G.modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in model.discriminator.D_Y.modules())
    assert model.discriminator.D_X.patch_size == 70
    # 11.38M parameters per ResNet-9 generator and 2.76M per PatchGAN, as in the reference implementation.
    assert round(sum(p.numel() for p in G.parameters()) / 1e6, 2) == 11.38
    assert round(sum(p.numel() for p in model.discriminator.D_X.parameters()) / 1e6, 2) == 2.76


def test_feature_matching_is_refused_and_a_penalty_acts_on_both_discriminators():
    with pytest.raises(UserError, match="CycleGAN does not support feature_matching"):
        CycleGAN(image_shape=(3, 16, 16), feature_matching=True)
    model = CycleGAN(image_shape=(3, 16, 16), ngf=4, ndf=4, n_blocks=1, n_layers_d=1, penalty="r1", penalty_weight=2.0)
    batch = {"A": torch.rand(2, 3, 16, 16), "B": torch.rand(2, 3, 16, 16)}
    fakes = tuple(f.detach() for f in model.generate(batch))
    value, logs = model.discriminator_regularizer(batch, fakes)
    d = model.discriminator

    def r1(D, x):  # noqa: N803
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x)
        return grad.pow(2).flatten(1).sum(1).mean()

    expected = r1(d.D_Y, batch["B"]) + r1(d.D_X, batch["A"])
    torch.testing.assert_close(logs["train/penalty_r1"], expected)
    torch.testing.assert_close(value, expected)  # gamma / 2 = 1


def test_generator_objective_is_lsgan_plus_cycle_plus_identity():
    model = CycleGAN(image_shape=(3, 16, 16), ngf=4, ndf=4, n_blocks=1, n_layers_d=1)
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    fakes = model.generate({"A": x, "B": y})
    loss, logs = model.generator_loss({"A": x, "B": y}, fakes)
    G, F, d = model.generator.G, model.generator.F, model.discriminator
    adversarial = ((d.D_Y(fakes[0]) - 1) ** 2).mean() + ((d.D_X(fakes[1]) - 1) ** 2).mean()  # Sec. 4
    cycle = (F(fakes[0]) - x).abs().mean() + (G(fakes[1]) - y).abs().mean()  # Eq. 2
    identity = (G(y) - y).abs().mean() + (F(x) - x).abs().mean()
    assert torch.allclose(loss, adversarial + 10 * cycle + 5 * identity, atol=1e-5)
    assert logs["train/loss_cycle"] == pytest.approx(cycle.item(), rel=1e-5)


def test_discriminators_see_pooled_fakes_and_halved_lsgan_loss():
    model = CycleGAN(image_shape=(3, 16, 16), ngf=4, ndf=4, n_blocks=1, n_layers_d=1, pool_size=4)
    batch = {"A": torch.rand(2, 3, 16, 16), "B": torch.rand(2, 3, 16, 16)}
    fakes = tuple(f.detach() for f in model.generate(batch))
    loss, logs = model.discriminator_loss(batch, model.discriminator_fakes(fakes))
    assert int(model.pool_A.count) == int(model.pool_B.count) == 2  # filling: stored and returned as is
    assert torch.equal(model.pool_B.images[:2], fakes[0]) and torch.equal(model.pool_A.images[:2], fakes[1])
    d = model.discriminator
    expected = sum(0.5 * ((D(real) - 1) ** 2).mean() + 0.5 * (D(fake) ** 2).mean()
                   for D, real, fake in ((d.D_Y, batch["B"], fakes[0]), (d.D_X, batch["A"], fakes[1])))
    assert torch.allclose(loss, expected, atol=1e-6)


def test_cycle_loss_decreases_in_a_short_run(tmp_path):
    """Measured: mean cycle loss (both directions, L1 in [-1, 1] units) 1.224 over the first 10 steps, 0.201 over the last 10."""
    pl.seed_everything(0)
    model = Recording(image_shape=(3, 32, 32), ngf=8, ndf=8, n_blocks=2, pool_size=4, lr_g=1e-3)
    pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
               callbacks=[StopAtIteration(60)]).fit(model, datamodule=red2blue(tmp_path))
    first, last = sum(model.cycle_losses[:10]) / 10, sum(model.cycle_losses[-10:]) / 10
    print(f"cycle loss {first:.3f} -> {last:.3f}")
    assert len(model.cycle_losses) == 60 and last < 0.5 * first, (first, last)


TINY = ["--model.init_args.ngf", "4", "--model.init_args.ndf", "4", "--model.init_args.n_blocks", "1",
        "--model.init_args.pool_size", "3", "--data.init_args.image_size", "32", "--data.init_args.load_size", "36",
        "--data.init_args.batch_size", "2", "--trainer.logger", "false", "--checkpoint.every_n_iterations", "3",
        "--model.init_args.lr_decay_start", "2", "--model.init_args.lr_decay_end", "10"]


def test_resumed_run_equals_uninterrupted_run_pool_included(tmp_path: Path):
    # 8 A images at batch 2: 4 batches per epoch, so the resume at 3 is mid-epoch. A pool of 3
    # fills in two batches, then swaps randomly: the resumed run must hold the same pool.
    data = experiment_fixture_red2blue(tmp_path / "data")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit("cyclegan/red2blue_cpu.yaml", straight, *TINY, *data, "--max_iterations", "6")
    fit("cyclegan/red2blue_cpu.yaml", resumed, *TINY, *data, "--max_iterations", "3")
    halfway = load(resumed / "checkpoints/last.ckpt")["state_dict"]
    fit("cyclegan/red2blue_cpu.yaml", resumed, *TINY, *data, "--max_iterations", "6", "--ckpt_path", "last")
    a, b = load(straight / "checkpoints/last.ckpt"), load(resumed / "checkpoints/last.ckpt")
    assert a["genmodels"]["iteration"] == b["genmodels"]["iteration"] == 6
    assert int(halfway["pool_A.count"]) == 3 and int(a["state_dict"]["pool_A.count"]) == 3
    assert not torch.equal(halfway["pool_B.images"], a["state_dict"]["pool_B.images"])  # the pool moved on
    for key in a["state_dict"]:  # G, F, D_X, D_Y, both pools (contents and fill), example sources
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert a["lr_schedulers"] == b["lr_schedulers"]
    assert a["lr_schedulers"][0]["_last_lr"][0] < 2e-4  # the linear decay is under way


def test_horse2zebra_schedule_equals_the_authors_per_epoch_rule():
    config = yaml.safe_load((EXPERIMENTS / "cyclegan/horse2zebra.yaml").read_text())
    model = config["model"]["init_args"]
    epoch = max(1067, 1334)  # horse2zebra trainA / trainB sizes; the reference code's epoch at batch 1
    assert model["lr_schedule"] == "linear" and config["data"]["init_args"]["batch_size"] == 1
    assert config["max_iterations"] == 200 * epoch and model["lr_decay_every"] == epoch
    official = official_lr_per_epoch(100, 100)
    assert official[98] == 1.0 and official[99] == pytest.approx(100 / 101) and official[199] == 0.0
    schedule = ("linear", 0, model["lr_decay_start"], model["lr_decay_end"], model["lr_decay_every"])
    for k, rate in enumerate(official):
        for i in (k * epoch, k * epoch + epoch // 2, (k + 1) * epoch - 1):  # first, middle, last iteration
            assert lr_factor(i, *schedule) == pytest.approx(rate, abs=1e-12), (k, i)


class LRProbe(pl.Callback):
    def __init__(self):
        self.rates = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates.append((trainer.optimizers[0].param_groups[0]["lr"], trainer.optimizers[1].param_groups[0]["lr"]))


def test_training_follows_the_authors_schedule_iteration_by_iteration(tmp_path):
    # 8 images at batch 4: 2 iterations per epoch; n_epochs = n_epochs_decay = 2 -> 4 epochs.
    per_epoch, n_epochs, n_decay = 2, 2, 2
    model = CycleGAN(image_shape=(3, 32, 32), ngf=4, ndf=4, n_blocks=1, pool_size=2, lr_schedule="linear",
                     lr_decay_start=(n_epochs - 2) * per_epoch, lr_decay_end=(n_epochs + n_decay - 1) * per_epoch,
                     lr_decay_every=per_epoch)
    probe = LRProbe()
    pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
               callbacks=[probe, StopAtIteration(8)]).fit(model, datamodule=red2blue(tmp_path))
    expected = [rate * 2e-4 for rate in official_lr_per_epoch(n_epochs, n_decay) for _ in range(per_epoch)]
    assert [g for g, _ in probe.rates] == pytest.approx(expected) and [d for _, d in probe.rates] == pytest.approx(expected)
    assert expected[-1] == 0.0  # the authors' last epoch trains at rate 0


class Order(CycleGAN):
    """Records which player steps first and what D is trained on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def generator_loss(self, batch, fakes):
        self.calls.append("g")
        return super().generator_loss(batch, fakes)

    def discriminator_loss(self, batch, fakes):
        self.calls.append("d")
        with torch.no_grad():  # G has already stepped, so it no longer produces the fakes D sees
            self.d_sees_pre_update_fakes = not torch.allclose(self.generator.G(batch["A"]), fakes[0])
        return super().discriminator_loss(batch, fakes)


def test_generator_is_updated_before_the_discriminator_on_the_same_fakes(tmp_path):
    # models/cycle_gan_model.py optimize_parameters: forward, G step (D frozen), then D step on
    # the fakes of that forward pass (through the image pool).
    model = Order(image_shape=(3, 32, 32), ngf=4, ndf=4, n_blocks=1, pool_size=0, lr_g=1e-2)
    pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
               callbacks=[StopAtIteration(3)]).fit(model, datamodule=red2blue(tmp_path))
    assert model.calls == ["g", "d"] * 3 and model.d_sees_pre_update_fakes
    assert CycleGAN.generator_first and not Pix2Pix.generator_first  # pix2pix's authors update D first


def test_diffaugment_on_red2blue_reaches_both_discriminators(tmp_path):
    """experiments/cyclegan/red2blue_cpu.yaml + ``augment: diffaugment``: D_X and D_Y see augmented images."""
    config = yaml.safe_load((EXPERIMENTS / "cyclegan" / "red2blue_cpu.yaml").read_text())
    write_red2blue(tmp_path / "data", {"trainA": 4, "trainB": 4, "testA": 2, "testB": 2})
    data_args = {**config["data"]["init_args"], "data_dir": str(tmp_path / "data")}
    data_args.pop("name")

    def run(augment):
        torch.manual_seed(0)
        model = CycleGAN(image_shape=(3, 64, 64), **{**config["model"]["init_args"], "n_blocks": 1}, augment=augment)
        seen = {"d_x": [], "d_y": [], "batches": []}
        model.discriminator.D_X.register_forward_pre_hook(lambda m, a: seen["d_x"].append(a[0].detach().clone()))
        model.discriminator.D_Y.register_forward_pre_hook(lambda m, a: seen["d_y"].append(a[0].detach().clone()))
        step = model.training_step
        model.training_step = lambda batch, batch_idx: (seen["batches"].append({k: v.clone() for k, v in batch.items()}), step(batch, batch_idx))[1]
        data = UnpairedImageDataModule("red2blue", **data_args)
        pl.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                   default_root_dir=tmp_path).fit(model, data)
        return seen

    plain, augmented = run(None), run("diffaugment")
    first = plain["batches"][0]
    # Order per iteration (G first): G step D_Y(G(A)), D_X(F(B)); D step D_Y(B), D_Y(pooled G(A)), D_X(A), D_X(pooled F(B)).
    assert torch.equal(plain["d_y"][1], first["B"]) and torch.equal(plain["d_x"][1], first["A"])
    assert not torch.allclose(augmented["d_y"][1], first["B"]) and not torch.allclose(augmented["d_x"][1], first["A"])
    for name in ("d_x", "d_y"):  # every image either D judged, fakes included, went through T
        assert len(augmented[name]) == len(plain[name])
        assert all(not torch.allclose(a, p) for a, p in zip(augmented[name], plain[name]))
