"""Checkpoints are verified before use: hash of the weights, finite weights, size before building, every key.

Before (issue #27): a bit-flipped checkpoint and NaN weights were sampled without a word; a
checkpoint with ``feature_maps: 200000`` allocated terabytes before any check; missing,
unexpected or mis-shaped weights and unknown hyperparameters were tracebacks.
"""

from __future__ import annotations

import pytest
import torch

from genmodels import DCGAN
from genmodels.commands import main


def _save(tmp_path, edit=None, name="m.ckpt"):
    """A DCGAN in the layout `genmodels fit` writes (with the weights' hash of `GenerativeModel.on_save_checkpoint`), then edited."""
    torch.manual_seed(0)
    model = DCGAN(image_shape=(1, 16, 16), latent_dim=8, feature_maps=4)
    from genmodels.checkpoints import weights_digest

    state = model.state_dict()
    checkpoint = {"state_dict": state, "hyper_parameters": dict(model.hparams),
                  "genmodels": {"model_class": "genmodels.gans.dcgan.DCGAN", "iteration": 7,
                                "weights_sha256": weights_digest(state)}}
    if edit is not None:
        edit(checkpoint)
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


def _sample_refused(capsys, path, tmp_path) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt", str(path), "--num-samples", "4", "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "g.png").exists()
    return err


def _first_weight(checkpoint) -> str:
    return next(k for k, v in checkpoint["state_dict"].items() if v.is_floating_point() and v.dim() > 1)


def test_a_clean_checkpoint_samples(tmp_path):
    path = _save(tmp_path)
    main(["sample", "--ckpt", str(path), "--num-samples", "4", "--out", str(tmp_path / "g.png"), "--device", "cpu"])
    assert (tmp_path / "g.png").stat().st_size > 0


def test_a_bit_flip_is_caught_by_the_hash_and_names_the_tensor(tmp_path, capsys):
    flipped = {}

    def flip(checkpoint):
        key = flipped["key"] = _first_weight(checkpoint)
        bits = checkpoint["state_dict"][key].view(-1).view(torch.int32)
        bits[0] ^= 1 << 20  # one bit of one float, after the hash was taken
    path = _save(tmp_path, flip)
    err = _sample_refused(capsys, path, tmp_path)
    assert f"tensor {flipped['key']} differs from the hash recorded when it was saved" in err


def test_non_finite_weights_are_refused_by_every_command(tmp_path, capsys):
    def poison(checkpoint):
        key = _first_weight(checkpoint)
        checkpoint["state_dict"][key][0] = float("nan")
        del checkpoint["genmodels"]["weights_sha256"]  # a file from before hashes: the finiteness check alone
    path = _save(tmp_path, poison)
    assert "NaN or infinite" in _sample_refused(capsys, path, tmp_path)
    for argv in (["export", "--ckpt", str(path), "--out", str(tmp_path / "e.pt")],
                 ["interpolate", "--ckpt", str(path), "--out", str(tmp_path / "i.png")]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and "NaN or infinite" in capsys.readouterr().err


def test_hyperparameters_that_would_allocate_terabytes_are_refused_before_building(tmp_path, capsys):
    """Built for real, this would try to allocate ~5 TB (a traceback or the OOM killer); the estimate comes first."""
    def huge(checkpoint):
        checkpoint["hyper_parameters"]["feature_maps"] = 200000
    err = _sample_refused(capsys, _save(tmp_path, huge), tmp_path)
    assert "GiB, over the --max-memory-gb 8 limit; nothing was allocated" in err


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["state_dict"].pop(_first_weight(c)), "is missing"),
    (lambda c: c["state_dict"].__setitem__("generator.extra.weight", torch.zeros(2)), "was not there when it was saved"),
    (lambda c: c["hyper_parameters"].__setitem__("not_an_option", 3), "not_an_option"),
    (lambda c: c["genmodels"].__setitem__("model_class", "genmodels.gans.dcgan.NoSuchGAN"), "NoSuchGAN"),
])
def test_every_mismatch_is_one_line_naming_the_key(tmp_path, capsys, edit, words):
    assert words in _sample_refused(capsys, _save(tmp_path, edit), tmp_path)


def test_mis_shaped_and_unexpected_weights_without_a_hash_name_the_key(tmp_path, capsys):
    def reshape(checkpoint):
        key = _first_weight(checkpoint)
        checkpoint["state_dict"][key] = torch.zeros(3, 3)
        del checkpoint["genmodels"]["weights_sha256"]
    assert "has shape [3, 3] in the checkpoint" in _sample_refused(capsys, _save(tmp_path, reshape), tmp_path)

    def extra(checkpoint):
        checkpoint["state_dict"]["generator.extra.weight"] = torch.zeros(2)
        del checkpoint["genmodels"]["weights_sha256"]
    assert "tensor generator.extra.weight in the checkpoint is not a DCGAN weight" in _sample_refused(
        capsys, _save(tmp_path, extra, "x.ckpt"), tmp_path)


def _rng_record() -> dict:
    """The RNG part of a genmodels record, captured as `GenerativeModel.on_save_checkpoint` does."""
    from genmodels.base import _capture_host_rng, _capture_torch_rng

    return {"torch_rng": [_capture_torch_rng()], "host_rng": _capture_host_rng()}


def _cut(record: dict, what: str) -> None:
    host = record["host_rng"]
    if what == "short torch state":
        record["torch_rng"] = [record["torch_rng"][0][:100]]
    elif what == "float torch state":
        record["torch_rng"] = [record["torch_rng"][0].float()]
    elif what == "odd CUDA tail":
        record["torch_rng"] = [torch.cat([record["torch_rng"][0], torch.zeros(5, dtype=torch.uint8)])]
    elif what == "short NumPy key":
        host["numpy"]["keys"] = host["numpy"]["keys"][:10]
    elif what == "short Python state":
        host["python"]["state"] = host["python"]["state"][:10]
    elif what == "no NumPy state":
        del host["numpy"]


@pytest.mark.parametrize("what, words", [
    ("short torch state", "RNG state 0 has 100 bytes, not the 5056"),
    ("float torch state", "RNG state 0 is not a 1-D byte tensor"),
    ("odd CUDA tail", "has 5061 bytes"),
    ("short NumPy key", "NumPy RNG state's key has shape (10,)"),
    ("short Python state", "Python RNG state is unusable (ValueError"),
    ("no NumPy state", "NumPy RNG state is unusable (KeyError"),
])
def test_a_damaged_rng_record_is_named_before_any_generator_is_touched(what, words):
    from genmodels.base import rng_record_problem

    assert rng_record_problem(_rng_record()) is None
    cuda_tail = _rng_record()  # a GPU run's record (CPU state + a 16-byte Philox seed/offset) resumes on a CPU too
    cuda_tail["torch_rng"] = [torch.cat([cuda_tail["torch_rng"][0], torch.zeros(16, dtype=torch.uint8)])]
    assert rng_record_problem(cuda_tail) is None
    record = _rng_record()
    _cut(record, what)
    before = torch.get_rng_state()
    problem = rng_record_problem(record)
    assert problem is not None and words in problem, problem
    assert torch.equal(torch.get_rng_state(), before)  # checked on scratch generators
