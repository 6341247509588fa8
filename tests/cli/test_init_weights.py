"""``genmodels fit --init_weights FILE``: a new run starts from a model file's weights (fine-tuning)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from genmodels import StyleGAN2
from genmodels.apps.export import export_weights
from tests.cli.common import fit, load

TINY_STYLEGAN2 = [str(a) for a in yaml.safe_load((Path(__file__).parent / "tiny" / "stylegan2.yaml").read_text())]
ARGS = ["--trainer.logger", "false", "--data.init_args.batch_size", "8", "--checkpoint.every_n_iterations", "100",
        "--sample_grid.every_n_iterations", "100", "--trainer.check_val_every_n_epoch", "1000", *TINY_STYLEGAN2]


def tiny_model_file(tmp_path: Path, **changes) -> Path:
    """A StyleGAN2 of the tiny CLI size with random weights, written as import-weights writes (D kept)."""
    options = dict(zip(TINY_STYLEGAN2[::2], TINY_STYLEGAN2[1::2]))
    kwargs = {k.rsplit(".", 1)[1]: yaml.safe_load(v) for k, v in options.items() if k.startswith("--model.init_args.")}
    torch.manual_seed(123)
    model = StyleGAN2(image_shape=(1, 16, 16), **{**kwargs, **changes})
    return export_weights(model, tmp_path / "imported.pt", keep_training_networks=True)


def test_fit_starts_from_the_given_weights(tmp_path):
    file = tiny_model_file(tmp_path)
    # lr 1e-30: the one iteration leaves the parameters where --init_weights put them (to 1e-20).
    fit("stylegan2/digits.yaml", tmp_path / "run", "--max_iterations", "1", "--init_weights", str(file),
        "--model.init_args.lr_g", "1e-30", "--model.init_args.lr_d", "1e-30", *ARGS)
    trained = load(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    given = load(file)["state_dict"]
    compared = [k for k in given if k.startswith(("generator.", "discriminator.")) and not k.endswith("w_avg")]
    assert len(compared) > 20 and all(torch.allclose(trained[k], given[k], rtol=0, atol=1e-20) for k in compared)
    fresh = StyleGAN2(image_shape=(1, 16, 16), **{k: given_kwargs for k, given_kwargs in load(file)["hyper_parameters"].items() if k != "image_shape"})
    assert not torch.equal(fresh.state_dict()["generator.synthesis.const"], trained["generator.synthesis.const"])


def test_a_file_of_another_architecture_or_a_resume_is_refused(tmp_path, capsys):
    file = tiny_model_file(tmp_path, w_dim=16)
    with pytest.raises(SystemExit) as exit_:
        fit("stylegan2/digits.yaml", tmp_path / "run", "--max_iterations", "1", "--init_weights", str(file), *ARGS)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "does not fit the configured model" in err[0] and "w_dim=16" in err[0], err
    with pytest.raises(SystemExit):
        fit("stylegan2/digits.yaml", tmp_path / "run2", "--max_iterations", "1", "--init_weights", str(file), "--ckpt_path",
            str(file), *ARGS)
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # a weights file is no checkpoint to resume
