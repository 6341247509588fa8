"""``stylegan2-ada`` import: the authors' networks give the authors' outputs.

The fixtures were made by NVlabs/stylegan2-ada-pytorch itself (scripts/official/make_fixtures_stylegan2_ada.py:
16x16 RGB networks, z = w = 32, channels 32/32/16, 2 G mapping layers, every parameter and learned
buffer perturbed; unconditional, and class-conditional with 10 classes). The test re-pickles them in
the official snapshot layout (tests/genmodels/weights/snapshots.py), imports them, and compares with
the official outputs: mapping, psi 0.7 truncation, G(z, c) with noise_mode='const' (G_ema and G),
and D's logits.
"""

from __future__ import annotations

import json

import pytest
import torch

from genmodels.apps.export import load_generative_model
from genmodels.commands import invoke
from genmodels.weights import WeightsError
from genmodels.weights.stylegan2_ada import convert
from tests.genmodels.weights.snapshots import FIXTURES, outputs, write_snapshot

TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def official_and_ours(model, expected):
    """(name, ours, official) for every stored official output."""
    z, c = expected["z"], expected["c"] if expected["c"].numel() else None
    pairs = []
    with torch.no_grad():
        for key, g in (("G_ema", model.generator_ema), ("G", model.generator)):
            w = g.map(z, c=c)
            truncated = g.truncate(w, 0.7)
            pairs += [
                (f"{key}.mapping", w, expected[f"{key}.mapping"][:, 0]),
                (f"{key}.mapping_psi0.7", truncated, expected[f"{key}.mapping_psi0.7"][:, 0]),
                (f"{key}.image", g.synthesis(g.broadcast(w), None, 1.0, "const"), expected[f"{key}.image"]),
                (f"{key}.image_psi0.7", g.synthesis(g.broadcast(truncated), None, 1.0, "const"), expected[f"{key}.image_psi0.7"]),
            ]
        d = model.discriminator
        pairs.append(("D.logits", d(expected["images_in"], c=c), expected["D.logits"].flatten()))
        pairs.append(("D.logits_of_G_ema", d(expected["G_ema.image"], c=c), expected["D.logits_of_G_ema"].flatten()))
    return pairs


@pytest.mark.parametrize("fixture", ["unconditional", "conditional"])
def test_imported_networks_give_the_official_outputs(fixture, tmp_path):
    model = convert("stylegan2-ada", [write_snapshot(fixture, tmp_path / "network-snapshot-000000.pkl")], {})
    assert model.hparams["num_classes"] == (10 if fixture == "conditional" else 0)
    for name, ours, official in official_and_ours(model, outputs(fixture)):
        assert ours.shape == official.shape, name
        assert float((ours - official).abs().max()) <= TOLERANCE, f"{fixture} {name}: {float((ours - official).abs().max()):.3g}"
        assert float(official.abs().max()) > 0.5, f"{fixture} {name}: the fixture output is too small to test anything"


def test_the_public_api_reproduces_the_official_images(tmp_path):
    """Through the command and the written file: model.mapping / truncate / synthesis, as the apps use them."""
    snapshot = write_snapshot("conditional", tmp_path / "network-snapshot-000000.pkl")
    out = tmp_path / "cifar.pt"
    invoke(["import-weights", "stylegan2-ada", str(snapshot), "--out", str(out)])
    model = load_generative_model(out)
    expected = outputs("conditional")
    labels = expected["c"].argmax(1)
    with torch.no_grad():
        w = model.mapping(expected["z"], labels)
        images = model.generator_ema.synthesis(model.generator_ema.broadcast(model.truncate(w, 0.7)), None, 1.0, "const")
        clamped = model.synthesis(model.truncate(w, 0.7))
    assert float((images - expected["G_ema.image_psi0.7"]).abs().max()) <= TOLERANCE
    assert torch.equal(clamped, images.clamp(-1, 1))  # synthesis: const noise, clamped to the image range
    assert model.sample(3, condition=2, generator=torch.Generator().manual_seed(0)).shape == (3, 3, 16, 16)
    record = torch.load(out, weights_only=True)
    assert record["imported_from"]["format"] == "stylegan2-ada" and len(record["imported_from"]["files"][0]["sha256"]) == 64
    assert any(k.startswith("discriminator.") for k in record["state_dict"])  # D kept: fine-tuning needs it


def _kwargs_edit(tmp_path, fixture, edit):
    """A snapshot whose stored init kwargs are edited (the fixture's kwargs.json is copied, not changed)."""
    import tests.genmodels.weights.snapshots as snapshots

    directory = tmp_path / "fixture" / fixture
    directory.mkdir(parents=True)
    for name in ("state.pt", "outputs.pt"):
        (directory / name).write_bytes((FIXTURES / fixture / name).read_bytes())
    kwargs = json.loads((FIXTURES / fixture / "kwargs.json").read_text())
    edit(kwargs)
    (directory / "kwargs.json").write_text(json.dumps(kwargs))
    original = snapshots.FIXTURES
    snapshots.FIXTURES = tmp_path / "fixture"
    try:
        return write_snapshot(fixture, tmp_path / "edited.pkl")
    finally:
        snapshots.FIXTURES = original


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda k: k["G_ema"]["synthesis_kwargs"].update(architecture="resnet"), "G architecture='resnet'"),
        (lambda k: k["G_ema"].update(w_dim=16), "has shape"),  # tensors that do not fit the kwargs
        (lambda k: k["G_ema"].pop("z_dim"), "no init kwarg 'z_dim'"),
    ],
)
def test_unsupported_or_inconsistent_snapshots_are_refused_in_one_line(tmp_path, capsys, edit, message):
    snapshot = _kwargs_edit(tmp_path, "unconditional", edit)
    out = tmp_path / "model.pt"
    with pytest.raises(SystemExit) as exit_:
        invoke(["import-weights", "stylegan2-ada", str(snapshot), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_other_files_and_bad_options_are_refused_before_anything_is_written(tmp_path, capsys):
    snapshot = write_snapshot("unconditional", tmp_path / "network-snapshot-000000.pkl")
    out = tmp_path / "model.pt"
    cases = [
        (["stylegan2-ada", str(FIXTURES / "unconditional" / "state.pt")], "torch.save (zip) file"),
        (["stylegan2-ada", str(snapshot), str(snapshot)], "takes one network pickle"),
        (["stylegan2-ada", str(snapshot), "--option", "w_dim=64"], "architecture comes from the snapshot"),
        (["stylegan2-ada", str(snapshot), "--option", "no_such_option=1"], "not a StyleGAN2 option"),
        (["stylegan2-ada", str(snapshot), "--option", "penalty_weight"], "give key=value"),
        (["stylegan2-ada", str(tmp_path / "missing.pkl")], "is not a file"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_:
            invoke(["import-weights", *argv, "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1, (argv, err)
        assert not out.exists()
    (tmp_path / "taken.pt").write_bytes(b"keep")
    with pytest.raises(SystemExit):
        invoke(["import-weights", "stylegan2-ada", str(snapshot), "--out", str(tmp_path / "taken.pt")])
    assert (tmp_path / "taken.pt").read_bytes() == b"keep"


def test_training_options_the_snapshot_does_not_record_are_taken_from_options(tmp_path):
    snapshot = write_snapshot("unconditional", tmp_path / "network-snapshot-000000.pkl")
    model = convert("stylegan2-ada", [snapshot], {"penalty_weight": "0.01", "ema_kimg": "500", "style_mixing": "0"})
    assert model.hparams["penalty_weight"] == 0.01 and model.hparams["ema_kimg"] == 500 and model.style_mixing == 0
    with pytest.raises(WeightsError, match="ema_decay=null"):
        convert("stylegan2-ada", [snapshot], {"ema_decay": "null"})
