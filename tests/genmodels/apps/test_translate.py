"""``genmodels translate``: any size that fits the stride, reproducible, safe loading, clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import DCGAN, CycleGAN, Pix2Pix
from genmodels.apps.translate import load_source
from genmodels.commands import main
from genmodels.gans.translation import seeded_noise
from genmodels.images import to_uint8
from tests.genmodels.apps.control_helpers import save_model_checkpoint, single_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture
def pix2pix_ckpt(tmp_path):
    torch.manual_seed(0)
    return save_model_checkpoint(Pix2Pix(image_shape=(3, 32, 32), ngf=4, ndf=4), tmp_path / "pix2pix.ckpt")


def write_inputs(folder, sizes):
    paths = []
    for k, (w, h) in enumerate(sizes):
        path = folder / ("sub" if k % 2 else "") / f"img{k}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def translate(*args):
    return main(["translate", *map(str, args)])


def test_translates_every_image_at_its_own_size_reproducibly(tmp_path, pix2pix_ckpt, capsys):
    inputs = write_inputs(tmp_path / "in", [(32, 32), (64, 32), (32, 96)])
    translate("--ckpt", pix2pix_ckpt, "--input", tmp_path / "in", "--out", tmp_path / "out", "--seed", "3", "--device", "cpu")
    outputs = [tmp_path / "out" / "img0.png", tmp_path / "out/sub/img1.png", tmp_path / "out/img2.png"]
    assert [Image.open(p).size for p in outputs] == [(32, 32), (64, 32), (32, 96)]
    assert "3 images translated by Pix2Pix" in capsys.readouterr().out
    # The k-th image in sorted path order (img0, img2, sub/img1) is G(A) with dropout seeded by seed + k.
    from genmodels.apps.export import load_generative_model

    model = load_generative_model(pix2pix_ckpt)
    with torch.no_grad(), seeded_noise(torch.Generator().manual_seed(3 + 2), model.device):
        expected = to_uint8(model.translate(load_source(inputs[1], 3, None, 32)))[0].permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(outputs[1])), expected)
    first = outputs[0].read_bytes()
    translate("--ckpt", pix2pix_ckpt, "--input", tmp_path / "in", "--out", tmp_path / "out", "--seed", "3", "--device", "cpu",
              "--overwrite")
    assert outputs[0].read_bytes() == first


def test_a_size_off_the_stride_names_the_file_unless_resized(tmp_path, pix2pix_ckpt, capsys):
    write_inputs(tmp_path / "in", [(40, 32)])
    with pytest.raises(SystemExit) as exit_info:
        translate("--ckpt", pix2pix_ckpt, "--input", tmp_path / "in", "--out", tmp_path / "out", "--device", "cpu")
    assert exit_info.value.code == 2
    assert "img0.jpg is 40x32; this network needs sides that are multiples of 32" in capsys.readouterr().err
    translate("--ckpt", pix2pix_ckpt, "--input", tmp_path / "in", "--out", tmp_path / "out", "--resize", "64", "--device", "cpu")
    assert Image.open(tmp_path / "out/img0.png").size == (64, 64)


@pytest.mark.parametrize("problem", ["not_an_image", "empty", "direction", "not_translation", "unsafe"])
def test_bad_inputs_exit_2_with_a_message(tmp_path, pix2pix_ckpt, capsys, problem):
    (tmp_path / "in").mkdir()
    ckpt, extra = pix2pix_ckpt, []
    if problem == "not_an_image":
        write_inputs(tmp_path / "in", [(32, 32)])
        (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
        expected = "broken.png: not a readable image"
    elif problem == "empty":
        expected = "no images"
    elif problem == "direction":
        write_inputs(tmp_path / "in", [(32, 32)])
        extra, expected = ["--direction", "BtoA"], "only in the direction it was trained in"
    elif problem == "not_translation":
        write_inputs(tmp_path / "in", [(32, 32)])
        ckpt = save_model_checkpoint(DCGAN(image_shape=(1, 16, 16), feature_maps=4, latent_dim=4), tmp_path / "dcgan.ckpt")
        expected = "needs an image-to-image model"
    else:
        write_inputs(tmp_path / "in", [(32, 32)])
        checkpoint = torch.load(pix2pix_ckpt, weights_only=True)
        checkpoint["payload"] = np.random.default_rng(0)  # an arbitrary object: needs unpickling code
        torch.save(checkpoint, tmp_path / "unsafe.ckpt")
        ckpt, expected = tmp_path / "unsafe.ckpt", "refusing to load"
    with pytest.raises(SystemExit) as exit_info:
        translate("--ckpt", ckpt, "--input", tmp_path / "in", "--out", tmp_path / "out", "--device", "cpu", *extra)
    assert exit_info.value.code == 2 and expected in capsys.readouterr().err


def test_cyclegan_translates_both_ways(tmp_path):
    ckpt = save_model_checkpoint(CycleGAN(image_shape=(3, 16, 16), ngf=4, ndf=4, n_blocks=1, n_layers_d=1, pool_size=2),
                                 tmp_path / "cyclegan.ckpt")
    write_inputs(tmp_path / "in", [(20, 12)])  # any multiple of 4
    for direction in ("AtoB", "BtoA"):
        translate("--ckpt", ckpt, "--input", tmp_path / "in", "--out", tmp_path / direction, "--direction", direction, "--device", "cpu")
    a, b = (np.asarray(Image.open(tmp_path / d / "img0.png")) for d in ("AtoB", "BtoA"))
    assert a.shape == b.shape == (12, 20, 3) and not np.array_equal(a, b)  # G and F differ
    # A `genmodels export` file (generators only: no discriminators, no image pools) translates the same.
    main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path / "g.pt")])
    assert not any(k.startswith(("discriminator", "pool_")) for k in torch.load(tmp_path / "g.pt", weights_only=True)["state_dict"])
    translate("--ckpt", tmp_path / "g.pt", "--input", tmp_path / "in", "--out", tmp_path / "exported", "--device", "cpu")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "exported/img0.png")), a)
