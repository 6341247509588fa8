"""``genmodels train-damsm`` and ``genmodels r-precision`` end to end on tiny shapes data, and their errors."""

import warnings

import pytest
import torch

from genmodels import StackGAN
from genmodels.commands import main
from genmodels.commands import invoke
from genmodels.text.damsm import load_damsm
from tests.genmodels.gans.text_helpers import TINY_TEXT, fit, one_thread, shapes  # noqa: F401 (autouse fixture)

DATA = ["--dataset", "shapes", "--image-size", "16", "--synthetic-size", "32", "--batch-size", "8", "--num-workers", "0"]


def test_train_damsm_then_r_precision_of_a_stackgan(tmp_path, capsys):
    damsm = tmp_path / "damsm.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train-damsm", *DATA, "--epochs", "1", "--dim", "16", "--embedding-dim", "8", "--width", "4", "--out", str(damsm)])
        loaded = load_damsm(str(damsm))
        dm = shapes()
        assert loaded.vocab == dm.vocab
        model = StackGAN((3, 16, 16), dm.vocab, damsm_ckpt=str(damsm), gf_dim=4, df_dim=4, condition_dim=8,
                         **dict(TINY_TEXT, text_dim=16))
        trainer = fit(model, dm, 2, tmp_path)
        # the GAN's frozen text encoder is DAMSM's
        for key, value in loaded.text_encoder.state_dict().items():
            torch.testing.assert_close(model.text_encoder.state_dict()[key], value)
        trainer.save_checkpoint(tmp_path / "gan.ckpt")
        result = invoke(["r-precision", "--ckpt", str(tmp_path / "gan.ckpt"), "--damsm", str(damsm), *DATA, "--device", "cpu",
                         "--num-samples", "20"])
        any_caption = invoke(["r-precision", "--ckpt", str(tmp_path / "gan.ckpt"), "--damsm", str(damsm), *DATA,
                              "--device", "cpu", "--num-samples", "8", "--mismatched", "any"])
    out = capsys.readouterr().out
    # the common protocol: 20 queries cycling over the 8 val images, 1 true + 99 other-class captions, 10 folds
    assert "R-precision" in out and "top-1 among 100 captions, mismatched from other-classes, 20 generated" in out
    assert 0.0 <= result["r_precision"] <= 1.0 and result["n"] == 20 and result["r_precision_std"] >= 0
    assert any_caption["n"] == 8 and any_caption["candidates"] <= 8


def test_a_damsm_of_other_data_is_refused(tmp_path):
    from genmodels.conditioning import ConditionError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train-damsm", *DATA, "--epochs", "1", "--dim", "16", "--embedding-dim", "8", "--width", "4",
              "--min-word-count", "60", "--out", str(tmp_path / "d.ckpt")])  # another vocabulary
        model = StackGAN((3, 16, 16), shapes().vocab, damsm_ckpt=str(tmp_path / "d.ckpt"), gf_dim=4, df_dim=4,
                         condition_dim=8, **dict(TINY_TEXT, text_dim=16))
        with pytest.raises(ConditionError, match="another vocabulary"):
            fit(model, shapes(), 1, tmp_path)
        missing = StackGAN((3, 16, 16), shapes().vocab, damsm_ckpt=str(tmp_path / "nope.ckpt"), gf_dim=4, df_dim=4,
                           condition_dim=8, **TINY_TEXT)
        with pytest.raises(FileNotFoundError, match="genmodels train-damsm"):
            fit(missing, shapes(), 1, tmp_path)


def test_a_too_high_min_word_count_is_explained(capsys):
    with pytest.raises(SystemExit):
        main(["train-damsm", *DATA, "--min-word-count", "100000", "--out", "x.ckpt"])
    assert "lower --data.init_args.min_word_count" in capsys.readouterr().err


def test_inception_backbone_needs_local_weights(capsys):
    with pytest.raises(SystemExit):
        main(["train-damsm", *DATA, "--backbone", "inception_v3", "--out", "x.ckpt"])
    assert "needs --backbone-weights" in capsys.readouterr().err
