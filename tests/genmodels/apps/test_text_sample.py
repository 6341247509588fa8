"""``genmodels sample --text``: captioned grids, one PNG per image with captions.txt, and the handling
of unknown words (warning, <unk>), over-long captions (warning, truncated), empty text and
non-text models (error, exit 2)."""

import warnings

import numpy as np
import pytest
from PIL import Image

from genmodels import StackGAN
from genmodels.commands import main
from tests.genmodels.gans.text_helpers import TINY_TEXT, fit, one_thread, shapes  # noqa: F401 (autouse fixture)


@pytest.fixture
def text_ckpt(tmp_path):
    dm = shapes()
    model = StackGAN((3, 16, 16), dm.vocab, gf_dim=4, df_dim=4, condition_dim=8, max_length=5, **TINY_TEXT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = fit(model, dm, 2, tmp_path)
    trainer.save_checkpoint(tmp_path / "t2i.ckpt")
    return tmp_path / "t2i.ckpt"


def test_sample_text_writes_a_captioned_grid_deterministically(text_ckpt, tmp_path, capsys):
    base = ["sample", "--ckpt", str(text_ckpt), "--device", "cpu", "--n", "3", "--text", "a red circle", "a blue square"]
    main(base + ["--out", str(tmp_path / "a.png")])
    main(base + ["--out", str(tmp_path / "b.png")])
    a = np.asarray(Image.open(tmp_path / "a.png"))
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "b.png")))
    # two rows of 16-px images (plus 2-px padding), each under a 12-px caption strip
    assert a.shape == (2 * (12 + 20), 3 * 18 + 2, 3)
    assert (a[:12] < 128).any()  # the caption text is drawn
    assert "6 images of StackGAN for 2 caption(s)" in capsys.readouterr().out


def test_sample_text_to_a_directory_lists_the_captions(text_ckpt, tmp_path):
    main(["sample", "--ckpt", str(text_ckpt), "--device", "cpu", "--n", "2", "--text", "a green triangle", "--out", str(tmp_path / "d")])
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["000000.png", "000001.png", "captions.txt"]
    assert (tmp_path / "d/captions.txt").read_text() == "000000.png\ta green triangle\n000001.png\ta green triangle\n"


def test_unknown_words_and_long_captions_warn(text_ckpt, tmp_path):
    out = ["--out", str(tmp_path / "x.png"), "--ckpt", str(text_ckpt), "--device", "cpu", "--n", "1"]
    with pytest.warns(UserWarning, match="read as <unk>: purple, hexagon"):
        main(["sample", *out, "--text", "a purple hexagon"])
    with pytest.warns(UserWarning, match="only the first 5 words"):
        main(["sample", *out, "--overwrite", "--text", "a small red circle on a black background"])


def test_text_for_a_model_without_text_is_an_error(tmp_path, capsys):
    from genmodels.apps.generation import generate_from_text
    from genmodels import DCGAN

    with pytest.raises(ValueError, match="not a text-to-image model"):
        generate_from_text(DCGAN(image_shape=(1, 16, 16), feature_maps=4, latent_dim=8), ["a red circle"], 1)


@pytest.mark.parametrize("text", ["", "  ", "?!"])
def test_empty_text_is_an_error(text_ckpt, tmp_path, capsys, text):
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt", str(text_ckpt), "--device", "cpu", "--text", text, "--out", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels: error:") and ("empty caption" in err or "holds no word" in err)
