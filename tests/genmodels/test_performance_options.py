"""compile, channels_last and fused optimizers change speed, not results."""

import copy

import pytest
import pytorch_lightning as pl
import torch

from genmodels import DCGAN
from genmodels.callbacks import StopAtIteration
from tests.genmodels.helpers import loader


def _train(model, iterations=3):
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, max_epochs=-1, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[StopAtIteration(iterations)],
    )
    torch.manual_seed(1)
    trainer.fit(model, loader(32, model.image_shape, 8))
    return model


def _pair(**options):
    torch.manual_seed(0)
    reference = DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4)
    variant = DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, **options)
    variant.load_state_dict(reference.state_dict())
    return reference, variant


@pytest.mark.parametrize("options", [{"channels_last": True}, {"fused_optimizer": True}], ids=["channels_last", "fused"])
def test_option_matches_the_default_path(options):
    reference, variant = _pair(**options)
    _train(reference), _train(variant)
    for (name, p), q in zip(reference.named_parameters(), variant.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=name)
    if options.get("channels_last"):
        conv = variant.generator.net[3]
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones_and_keep_checkpoint_keys():
    reference, variant = _pair(compile=True)
    keys = set(variant.state_dict())
    _train(reference, 2), _train(variant, 2)
    assert set(variant.state_dict()) == keys  # no "_orig_mod." prefixes: checkpoints stay portable
    for (name, p), q in zip(reference.named_parameters(), variant.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-3, atol=1e-4, msg=name)


def test_compile_reaches_the_networks_inside_a_pair_container():
    # CycleGAN holds (G, F) and (D_X, D_Y) in containers without a forward of their own; compiling
    # a container would compile nothing that runs (torch.compile is lazy: nothing compiles here).
    from genmodels import CycleGAN

    model = CycleGAN(image_shape=(3, 16, 16), ngf=4, ndf=4, n_blocks=1, compile=True)
    model.configure_model()
    assert model.generator._compiled_call_impl is None and model.discriminator._compiled_call_impl is None
    for network in (model.generator.G, model.generator.F, model.discriminator.D_X, model.discriminator.D_Y):
        assert network._compiled_call_impl is not None
    dcgan = DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4, compile=True)
    dcgan.configure_model()
    assert dcgan.generator._compiled_call_impl is not None and dcgan.discriminator._compiled_call_impl is not None
