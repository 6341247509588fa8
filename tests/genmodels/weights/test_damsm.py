"""damsm importer (genmodels/weights/damsm.py) against fixtures made by taoxugit/AttnGAN's encoders.

tests/fixtures/official/damsm/ was written by scripts/official/make_fixtures_damsm.py: RNN_ENCODER
and CNN_ENCODER (every tensor perturbed) saved as pretrain_DAMSM.py saves them, a captions.pickle,
and io.pt, their eval-mode outputs on fixed captions and images. The Inception tensors of
image_encoder3.pth are a function of their names (the script's `inception_value`), so the committed
file holds only the projections and `image_encoder_file` rebuilds the official file.
"""

import importlib.util
import pathlib
import pickle

import pytest
import torch

from genmodels.commands import invoke
from genmodels.text.damsm import DAMSM, load_damsm
from genmodels.weights import WeightsError
from genmodels.weights.damsm import convert

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "official" / "damsm"
TOLERANCE = 1e-4


def _script():
    spec = importlib.util.spec_from_file_location("make_fixtures_damsm", ROOT / "scripts" / "official" / "make_fixtures_damsm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_sources(folder: pathlib.Path) -> list[pathlib.Path]:
    """text_encoder3.pth, image_encoder3.pth (whole, as pretrain_DAMSM.py saved it, written to ``folder``), captions.pickle."""
    from torchvision.models import inception_v3

    fill = _script().inception_value
    official_layers = ("Conv2d_", "Mixed_")  # CNN_ENCODER keeps these modules of inception_v3 (no AuxLogits, no fc)
    state = {k: fill(k, tuple(v.shape)) for k, v in inception_v3(weights=None, init_weights=False, aux_logits=False).state_dict().items()
             if k.startswith(official_layers)}
    state.update(torch.load(FIXTURES / "image_encoder3.projections.pth", weights_only=True))
    torch.save(state, folder / "image_encoder3.pth")
    return [FIXTURES / "text_encoder3.pth", folder / "image_encoder3.pth", FIXTURES / "captions.pickle"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[pathlib.Path]:
    return write_sources(tmp_path_factory.mktemp("damsm"))


def errors(model: DAMSM, io: dict) -> dict[str, float]:
    tokens = torch.where(io["captions"] > 0, io["captions"] + 1, 0)  # AttnGAN word i is genmodels' i + 1
    with torch.no_grad():
        words, sentence = model.text_encoder(tokens, io["lengths"])
        regions, global_ = model.image_encoder(io["images"])
    steps = io["words"].shape[2]  # the official output stops at the longest caption
    return {"words": (words[:, :, :steps] - io["words"]).abs().max().item(),
            "words_after_end": words[:, :, steps:].abs().max().item() if words.shape[2] > steps else 0.0,
            "sentence": (sentence - io["sentence"]).abs().max().item(),
            "regions": (regions - io["regions"].flatten(2)).abs().max().item(),
            "cnn_code": (global_ - io["cnn_code"]).abs().max().item()}


def test_official_outputs_are_reproduced(files):
    model = convert("damsm", files, {})
    assert isinstance(model, DAMSM) and not model.training
    assert (model.hparams.dim, model.hparams.embedding_dim, len(model.vocab)) == (16, 12, 20)
    assert model.vocab[:4] == ["<pad>", "<unk>", "this", "bird"]
    found = errors(model, torch.load(FIXTURES / "io.pt", weights_only=True))
    print(found)
    assert max(found.values()) <= TOLERANCE, found


def test_the_command_writes_a_file_damsm_ckpt_accepts(files, tmp_path):
    out = tmp_path / "damsm.pt"
    invoke(["import-weights", "damsm", *map(str, files), "--out", str(out)])
    model = load_damsm(str(out))
    assert max(errors(model, torch.load(FIXTURES / "io.pt", weights_only=True)).values()) <= TOLERANCE
    assert model.vocab[2] == "this" and model.hparams.backbone == "inception_v3"
    assert torch.load(out, weights_only=True)["imported_from"]["format"] == "damsm"


def test_misfits_are_refused_in_one_line(files, tmp_path, capsys):
    text = torch.load(files[0], weights_only=True)
    gru = {k: v[: v.shape[0] * 3 // 4] if k.startswith("rnn.") else v for k, v in text.items()}  # 3 gates, not 4
    torch.save(gru, tmp_path / "text_encoder_gru.pth")
    torch.save({k: v for k, v in text.items() if "reverse" not in k}, tmp_path / "text_encoder_one_way.pth")
    with open(tmp_path / "captions.pickle", "wb") as f:
        pickle.dump([[], [], {0: "<end>", 1: "bird"}, {}], f, protocol=2)
    with open(tmp_path / "evil.pickle", "wb") as f:
        pickle.dump([[], [], {0: pathlib.Path("x")}, {}], f)
    cases = [
        ([files[0], files[2]], "needs image_encoder*.pth"),
        ([tmp_path / "text_encoder_gru.pth", *files[1:]], "a GRU"),
        ([tmp_path / "text_encoder_one_way.pth", *files[1:]], "one-direction"),
        ([*files[:2], tmp_path / "captions.pickle"], "not the captions.pickle it was trained on"),
        ([*files[:2], tmp_path / "evil.pickle"], "refers to pathlib"),
        ([files[1], *files[1:]], "two image files"),
    ]
    out = tmp_path / "damsm.pt"
    for sources, message in cases:
        with pytest.raises(SystemExit) as exit_:
            invoke(["import-weights", "damsm", *map(str, sources), "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and message in err and len(err.splitlines()) == 1, (message, err)
        assert not out.exists()
    with pytest.raises(WeightsError, match="not a training option"):
        convert("damsm", files, {"dim": "8"})
