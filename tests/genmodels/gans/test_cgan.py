"""ConditionalGAN: conditions reach G and D, samples follow the requested classes, errors are clear."""

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from genmodels import ConditionalGAN
from genmodels.callbacks import StopAtIteration
from genmodels.checkpoints import load_model
from genmodels.conditioning import ConditionError
from tests.genmodels.apps.control_helpers import save_model_checkpoint, single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def tiny(**kwargs):
    options = dict(image_shape=(1, 16, 16), num_classes=4, latent_dim=8, feature_maps=4)
    return ConditionalGAN(**{**options, **kwargs}).eval()


class Labelled(Dataset):
    """Class k is a constant image of value k / 2 - 1, with or without attributes."""

    def __init__(self, n=32, num_classes=4, attributes=0):
        self.labels = torch.arange(n) % num_classes
        self.images = (self.labels.float() / 2 - 1)[:, None, None, None].expand(n, 1, 16, 16)
        self.attributes = (torch.rand(n, attributes, generator=torch.Generator().manual_seed(0)) < 0.5).float()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": self.labels[i], "attributes": self.attributes[i]}


def fit(model, iterations=2, **data):
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
                         callbacks=[StopAtIteration(iterations)])
    trainer.fit(model, DataLoader(Labelled(**data), batch_size=8, shuffle=False))
    return trainer


def test_sample_follows_the_condition_and_reuses_the_noise():
    model = tiny()
    same_noise = [model.sample(3, condition=k, generator=torch.Generator().manual_seed(1)) for k in range(2)]
    z = model.sample_latent(3, torch.Generator().manual_seed(1))
    assert torch.equal(same_noise[0], model.decode(z, 0))
    assert torch.equal(same_noise[1], model.decode(z, torch.tensor([1, 1, 1])))
    assert not torch.allclose(same_noise[0], same_noise[1])  # the label changes G's output
    assert same_noise[0].min() >= -1 and same_noise[0].max() <= 1


def test_unconditioned_sample_draws_labels_with_the_generator():
    model = tiny()
    a = model.sample(5, generator=torch.Generator().manual_seed(3))
    b = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 4, (5,), generator=g)
    assert torch.equal(a, model.decode(model.sample_latent(5, g), labels))


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_discriminator_depends_on_the_condition(conditioning):
    model = tiny(discriminator_conditioning=conditioning)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    one_hot = model.conditioning.encode(torch.tensor([0, 1, 2, 3]))
    assert model.discriminator(images, one_hot).shape == (4,)
    assert not torch.allclose(model.discriminator(images, one_hot), model.discriminator(images, one_hot.roll(1, 0)))


def test_generate_conditions_fakes_on_the_batch_labels():
    model = tiny()
    batch = {"image": torch.zeros(4, 1, 16, 16), "label": torch.tensor([3, 0, 2, 1])}
    fake = model.generate(batch, generator=torch.Generator().manual_seed(0))
    z = model.sample_latent(4, torch.Generator().manual_seed(0))
    assert torch.equal(fake, model.generator(z, model.conditioning.encode(batch["label"])))


@pytest.mark.parametrize("options", [
    dict(penalty="gp", discriminator_norm="layer", n_critic=2),
    dict(discriminator_conditioning="projection", loss="hinge", spectral_norm=True, discriminator_norm="none",
         penalty="r1", feature_matching=True, ema_decay=0.9),
    dict(num_classes=0, attribute_names=["a", "b", "c"]),
], ids=["concat_gp_ncritic", "projection_hinge_sn_r1_fm_ema", "attributes"])
def test_training_steps_with_conditions_in_every_option(options):
    model = tiny(**options).train()
    before = [p.detach().clone() for p in model.generator.parameters()]
    fit(model, iterations=2, attributes=3)
    assert model.iteration == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters()))
    assert torch.isfinite(model.eval().sample(2)).all()


def test_attribute_model_samples_named_attributes():
    model = tiny(num_classes=0, attribute_names=["smile", "glasses"])
    z = model.sample_latent(2, torch.Generator().manual_seed(0))
    by_name = model.decode(z, {"glasses": 1.0})
    assert torch.equal(by_name, model.decode(z, torch.tensor([[0.0, 1.0], [0.0, 1.0]])))
    with pytest.raises(ConditionError, match="unknown attribute 'hat'"):
        model.sample(2, condition={"hat": 1})


@pytest.mark.parametrize("condition, match", [
    (4, "class 4 is out of range: this model has classes 0..3"),
    (torch.tensor([0, 1, 2]), r"2 integer labels \(shape \(2,\)\)"),
    (torch.zeros(2, 4), r"got torch.float32 of shape \(2, 4\)"),
])
def test_bad_conditions_are_refused(condition, match):
    with pytest.raises(ConditionError, match=match):
        tiny().sample(2, condition=condition)


def test_bad_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match="discriminator_conditioning must be one of"):
        tiny(discriminator_conditioning="auxiliary")
    with pytest.raises(ConditionError, match="not both"):
        tiny(attribute_names=["a"])
    with pytest.raises(ValueError, match="cannot produce image_size 24"):
        tiny(image_shape=(1, 24, 24))


def test_fit_refuses_a_datamodule_with_other_classes():
    from datamodules import DigitsDataModule

    model = tiny(num_classes=5)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_steps=1)
    with pytest.raises(ConditionError, match="num_classes=5 but DigitsDataModule has 10 classes"):
        trainer.fit(model, datamodule=DigitsDataModule(image_size=16, batch_size=8))


def test_first_batch_with_labels_out_of_range_is_refused():
    with pytest.raises(ConditionError, match="class 3 is out of range: this model has classes 0..2"):
        fit(tiny(num_classes=3).train(), num_classes=4)


def test_checkpoint_round_trip(tmp_path):
    model = tiny(num_classes=0, attribute_names=["smile", "glasses"], discriminator_conditioning="projection")
    loaded = load_model(save_model_checkpoint(model, tmp_path / "cgan.ckpt"))
    assert loaded.attribute_names == ["smile", "glasses"]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(loaded.sample(3, generator=g()), model.sample(3, generator=g()))


@pytest.mark.slow
def test_samples_are_classified_as_their_condition_after_a_short_run():
    """16 px digits, 350 iterations of batch 64 (about 10 s of one CPU core).

    A held-out LeNet classifier labels ~0.9 of the samples as the class they were drawn for
    (chance: 0.1); the bound leaves room for other machines' numerics.
    """
    from datamodules import DigitsDataModule
    from genmodels.apps.controllable import edit_latents, latent_decoder
    from genmodels.apps.scores import class_accuracy, class_scorer
    from genmodels.metrics.classifier import train_classifier

    classifier = train_classifier(DigitsDataModule(image_size=16, batch_size=64), epochs=3, log=lambda line: None)
    pl.seed_everything(0)
    model = ConditionalGAN(image_shape=(1, 16, 16), num_classes=10, latent_dim=64, feature_maps=32)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=-1, limit_val_batches=0, callbacks=[StopAtIteration(350)])
    trainer.fit(model, datamodule=DigitsDataModule(image_size=16, batch_size=64))
    accuracy, per_class = class_accuracy(model.eval(), classifier, samples_per_class=50,
                                         generator=torch.Generator().manual_seed(0))
    assert accuracy > 0.6, per_class

    # Editing z toward another class raises that class's log-probability at every step.
    z = model.sample_latent(16, torch.Generator().manual_seed(1))
    edit = edit_latents(latent_decoder(model, condition=1), class_scorer(classifier), z, target=7, steps=4, step_size=1.0)
    assert (edit.target_scores.mean(dim=1).diff() > 0).all()
