"""The contract every exported model keeps, checked on a tiny instance of each (``Model.tiny()``).

For each model class in ``genmodels.__all__``: ``sample`` gives (n, C, H, W) in [-1, 1]; the same
generator seed gives the same images and the global RNG is left alone; a condition the model
cannot take is refused with a ConditionError/ValueError (never ignored); the model survives a
Lightning checkpoint through `genmodels.checkpoints.load_model` and a weights export through
`genmodels.apps.export` (both rebuild it from its saved hyperparameters, so a missing
``save_hyperparameters()`` fails here); and it is an instance of exactly the protocols it claims.
"""

from __future__ import annotations

import inspect

import pytest
import pytorch_lightning as pl
import torch

import genmodels
from genmodels import protocols
from genmodels.apps.export import export_weights, load_generative_model
from genmodels.base import GenerativeModel
from genmodels.checkpoints import load_model
from tests.genmodels.contract_configs import NOT_MODELS, TINY, bad_condition, tiny_args

# ImageSplits, LabelledData and NamedData describe what a datamodule offers, not what a model does.
DATA_PROTOCOLS = {protocols.ImageSplits, protocols.LabelledData, protocols.NamedData}
PROTOCOLS = [
    getattr(protocols, name) for name in protocols.__all__
    if inspect.isclass(getattr(protocols, name)) and getattr(protocols, name) not in DATA_PROTOCOLS
]
# Variants (a TINY entry with "class": another configuration of an exported class) are checked too.
MODELS = [name for name in genmodels.__all__ if name not in NOT_MODELS] + [name for name in TINY if "class" in TINY[name]]


def model_class(name: str) -> type:
    return getattr(genmodels, TINY.get(name, {}).get("class", name))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_exported_model_has_a_tiny_config():
    missing = [name for name in MODELS if name not in TINY]
    assert not missing, f"add a tiny config to tests/genmodels/contract_configs.py for {missing}"
    assert all(inspect.isclass(model_class(n)) and issubclass(model_class(n), GenerativeModel) for n in MODELS)
    assert not set(TINY) - set(MODELS), "configs for models genmodels no longer exports"
    # The test-size arguments live on each model (its last member); the base class has none.
    undefined = [name for name in MODELS if model_class(name).tiny.__func__ is GenerativeModel.tiny.__func__]
    assert undefined == [], f"define tiny() on {undefined}"
    with pytest.raises(NotImplementedError, match="defines no tiny"):
        GenerativeModel.tiny()


def build(name: str) -> GenerativeModel:
    torch.manual_seed(0)
    return model_class(name)(**tiny_args(name)).eval()


def draw(model: GenerativeModel, seed: int, n: int = 2, condition=None) -> torch.Tensor:
    with torch.no_grad():
        return model.sample(n, condition=condition, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODELS)
def test_samples_have_the_image_shape_and_range(name):
    model = build(name)
    images = draw(model, 0)
    assert images.shape == (2, *model.image_shape)
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    if "good_condition" in TINY[name]:
        conditioned = draw(model, 0, condition=TINY[name]["good_condition"])
        assert conditioned.shape == (2, *model.image_shape) and conditioned.abs().max() <= 1


@pytest.mark.parametrize("name", MODELS)
def test_a_seed_gives_the_same_images_and_leaves_the_global_rng_alone(name):
    model = build(name)
    state = torch.random.get_rng_state()
    first, again, other = draw(model, 1), draw(model, 1), draw(model, 2)
    assert torch.equal(torch.random.get_rng_state(), state), "sampling with a generator moved the global RNG"
    assert torch.equal(first, again)
    assert not torch.equal(first, other), "the seed does not reach the samples"


@pytest.mark.parametrize("name", MODELS)
def test_a_condition_the_model_cannot_take_is_refused(name):
    model = build(name)
    with pytest.raises(ValueError) as error:
        draw(model, 0, condition=bad_condition(name))
    message = str(error.value)
    assert message and "\n" not in message.strip()  # one clear line


@pytest.mark.parametrize("name", MODELS)
def test_load_model_round_trip(name, tmp_path):
    model = build(name)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.strategy.connect(model)
    model.trainer = trainer
    model.iteration = 7
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = load_model(tmp_path / "model.ckpt")
    assert type(loaded) is type(model) and loaded.iteration == 7 and not loaded.training
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert torch.equal(draw(loaded, 3), draw(model, 3))


@pytest.mark.parametrize("name", MODELS)
def test_export_round_trip(name, tmp_path):
    model = build(name)
    path = export_weights(model, tmp_path / "generator.pt")
    loaded = load_generative_model(path)
    assert type(loaded) is type(model)
    assert torch.equal(draw(loaded, 4), draw(model, 4))


@pytest.mark.parametrize("name", MODELS)
def test_protocol_membership(name):
    model = build(name)
    expected = TINY[name]["protocols"]
    for protocol in PROTOCOLS:
        assert isinstance(model, protocol) == (protocol in expected), f"{name} and {protocol.__name__}"


def test_latent_generators_generate_from_the_given_z():
    model = build("DCGAN")
    z = model.sample_latent(3, torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(model.sample_from(z), draw(model, 5, n=3))
    with pytest.raises(ValueError, match=r"z must have shape \(n, 8\)"):
        model.sample_from(torch.zeros(3, 4))
    assert model.fixed_latents is None  # the latents are held only during the call
