"""Extractors: the real InceptionV3 from a local file (random weights, real format), input checks,
weights resolution and the offline error."""

import pickle

import pytest
import torch

from genmodels.metrics.extractors import build_extractor, check_images, file_sha256, quantize
from genmodels.metrics.inception import (
    INCEPTION_FILENAME,
    INCEPTION_URL,
    InceptionExtractor,
    hub_weights_path,
    resolve_inception_weights,
)


@pytest.fixture(scope="module")
def inception(inception_weights):
    return InceptionExtractor(inception_weights)


@pytest.mark.parametrize("size", [28, 32, 64])
def test_inception_gives_2048_features_and_1008_logits_for_gray_and_rgb(inception, size):
    rgb = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1
    out_rgb, out_gray = inception(rgb), inception(rgb[:, :1])
    for out in (out_rgb, out_gray):
        assert out.features.shape == (1, 2048) and out.logits.shape == (1, 1008)
        assert out.features.dtype == torch.float32 and torch.isfinite(out.features).all()
    assert not torch.equal(out_rgb.features, out_gray.features)


def test_inception_runs_torch_fidelitys_network_on_rounded_uint8_pixels(inception, inception_weights):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    images = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pixels = ((images + 1) * 127.5).round().to(torch.uint8).expand(-1, 3, -1, -1)
    # torch-fidelity's own module, loading the same file itself: TF1 resize without antialias.
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(inception_weights)
    )
    with torch.no_grad():
        expected_pool, expected_logits = reference(pixels)
        # On a CPU our copy keeps its weights channels-last (faster kernels): the same up to ~1e-6,
        # and bit for bit the same once the reference uses that layout too.
        same_layout_pool, same_layout_logits = reference.to(memory_format=torch.channels_last)(pixels)
    # Grayscale in [-1, 1] = rounded pixels, gray repeated to RGB, through the same network.
    out = inception(images)
    assert torch.equal(out.features, same_layout_pool) and torch.equal(out.logits, same_layout_logits)
    torch.testing.assert_close(out.features, expected_pool, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.logits, expected_logits, rtol=1e-4, atol=1e-5)
    assert torch.equal(inception(pixels).features, out.features)  # uint8 input is used as is
    assert inception.sha256 == file_sha256(inception_weights)
    protocol = inception.protocol()
    assert protocol["extractor"] == "inception" and protocol["extractor_sha256"] == inception.sha256
    assert "antialias off" in protocol["preprocessing"]


def test_quantize_rounds_like_the_reference_and_roundtrips_real_pixels():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0])
    assert quantize(x.view(1, 1, 1, 5)).flatten().tolist() == [0, 0, 128, 191, 255]
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(quantize(pixels.float() / 127.5 - 1), pixels)


def test_images_outside_the_range_or_with_wrong_channels_are_refused():
    with pytest.raises(ValueError, match=r"images must lie in \[-1, 1\].*found values in \[0, 255\]"):
        check_images(torch.tensor([0.0, 255.0]).view(1, 1, 1, 2), (1, 3))
    with pytest.raises(ValueError, match="expected images with 1 or 3 channels, got 4"):
        check_images(torch.zeros(2, 4, 8, 8), (1, 3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        check_images(torch.zeros(8, 8), (1,))
    with pytest.raises(ValueError, match="must lie in"):
        check_images(torch.tensor([float("nan")]).view(1, 1, 1, 1), (1,))
    check_images(torch.full((1, 1, 2, 2), 1.00001), (1,))  # float rounding is tolerated
    check_images(torch.full((1, 3, 2, 2), 200, dtype=torch.uint8), (3,))


def test_missing_weights_offline_fail_fast_with_url_and_path(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        resolve_inception_weights()
    message = str(err.value)
    assert INCEPTION_URL in message and str(hub_weights_path()) in message and "prefetch-weights" in message
    assert str(tmp_path / "torch-home") in message  # the hub cache of this environment
    with pytest.raises(FileNotFoundError, match="GENMODELS_INCEPTION_WEIGHTS"):
        monkeypatch.setenv("GENMODELS_INCEPTION_WEIGHTS", str(tmp_path / "nope.pth"))
        build_extractor("inception")
    with pytest.raises(FileNotFoundError, match=r"--weights .*missing.pth does not exist"):
        build_extractor("inception", weights=tmp_path / "missing.pth")


def test_weights_are_found_through_env_and_hub_cache(tmp_path, monkeypatch, inception_weights):
    monkeypatch.setenv("GENMODELS_INCEPTION_WEIGHTS", str(inception_weights))
    state = torch.get_rng_state()
    assert build_extractor("inception").weights_path == inception_weights
    assert torch.equal(torch.get_rng_state(), state)  # the layers' throw-away init used a forked RNG
    monkeypatch.delenv("GENMODELS_INCEPTION_WEIGHTS")
    hub = hub_weights_path()
    assert hub.name == INCEPTION_FILENAME and hub.parent == tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.parent.mkdir(parents=True)
    hub.symlink_to(inception_weights)
    assert resolve_inception_weights() == hub


def test_bad_weight_files_and_hash_pins_are_refused(tmp_path, inception_weights):
    with pytest.raises(ValueError, match="expected 6726825d: it is not the pinned file"):
        InceptionExtractor(inception_weights, sha256="6726825d")
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="does not hold InceptionV3 weights"):
        InceptionExtractor(wrong)
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(print))  # a pickle that would import and call code
    with pytest.raises(ValueError, match="cannot read InceptionV3 weights .* as a plain state dict"):
        InceptionExtractor(evil)
    with pytest.raises(ValueError, match="unknown extractor 'vgg'"):
        build_extractor("vgg")
