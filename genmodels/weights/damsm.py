"""taoxugit/AttnGAN DAMSM encoders (``text_encoder*.pth``, ``image_encoder*.pth`` of pretrain_DAMSM.py) into `DAMSM`.

pretrain_DAMSM.py saves the state dicts of RNN_ENCODER (word embeddings, one bidirectional LSTM
layer) and CNN_ENCODER (torchvision's Inception v3 up to Mixed_7c, with its ImageNet weights, plus
the 1x1 ``emb_features`` on Mixed_6e and the linear ``emb_cnn_code`` on the pooled 2048 features).
They become genmodels' `RNNEncoder` and `CNNEncoder` with ``backbone="inception_v3"`` inside a
`DAMSM`, whose file every ``damsm_ckpt`` option (AttnGAN, DF-GAN, StackGAN, the r-precision
metric) accepts. The vocabulary size, embedding size and D come from the tensors.

The words come from the dataset's ``captions.pickle`` (AttnGAN's TextDataset writes ``[train_captions,
test_captions, ixtoword, wordtoix]``), read by an unpickler that builds plain lists, dicts, strings
and numbers only. AttnGAN's index 0 is ``<end>`` (its padding) and it drops unknown words; genmodels'
vocabulary is ``[<pad>, <unk>, words...]``, so word i becomes i + 1, and ``<pad>`` and ``<unk>`` both
take the ``<end>`` embedding (a caption is cut where AttnGAN's padding starts either way).
CNN_ENCODER's ``emb_features`` has no bias; genmodels' region projection gets a zero bias.
"""

from __future__ import annotations

import io
import pathlib
import pickle
from typing import Any, Optional

import torch
from torch import Tensor, nn

from genmodels.weights import WeightsError
from genmodels.weights.common import build, load_mapped, option_value, read_state_dict

__all__ = ["convert", "write", "read_vocabulary"]

_PROJECTIONS = ("emb_features.", "emb_cnn_code.")


class _PlainUnpickler(pickle.Unpickler):
    """Lists, dicts, strings and numbers only: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it refers to {module}.{name}")


def read_vocabulary(path: pathlib.Path) -> list[str]:
    """AttnGAN's ixtoword from ``captions.pickle``, index order (``[0]`` is ``<end>``)."""
    try:
        with open(path, "rb") as f:
            data = _PlainUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise WeightsError(f"{path}: not an AttnGAN captions.pickle of plain lists and dicts ({str(err).splitlines()[0][:120]})") from None
    if not (isinstance(data, (list, tuple)) and len(data) == 4 and isinstance(data[2], dict)):
        raise WeightsError(f"{path}: not an AttnGAN captions.pickle (expected [train_captions, test_captions, ixtoword, wordtoix])")
    ixtoword = data[2]
    if sorted(ixtoword) != list(range(len(ixtoword))):
        raise WeightsError(f"{path}: ixtoword does not number its words 0..{len(ixtoword) - 1}")
    words = [ixtoword[i].decode("latin1") if isinstance(ixtoword[i], bytes) else str(ixtoword[i]) for i in range(len(ixtoword))]
    return words


def _classify(sources: list[pathlib.Path]) -> dict[str, Any]:
    """text / image state dicts and the vocabulary file, told apart by content."""
    found: dict[str, Any] = {}
    for path in map(pathlib.Path, sources):
        if path.suffix in (".pickle", ".pkl"):
            role, value = "captions", path
        else:
            state = read_state_dict(path)
            if "rnn.weight_ih_l0" in state or "encoder.weight" in state:
                role = "text"
            elif "emb_cnn_code.weight" in state:
                role = "image"
            else:
                raise WeightsError(f"{path}: neither an AttnGAN text_encoder*.pth (RNN_ENCODER) nor an image_encoder*.pth (CNN_ENCODER)")
            value = (path, state)
        if role in found:
            raise WeightsError(f"two {role} files: {found[role] if role == 'captions' else found[role][0]} and {path}")
        found[role] = value
    for role, what in (("text", "text_encoder*.pth"), ("image", "image_encoder*.pth"), ("captions", "the dataset's captions.pickle (its words)")):
        if role not in found:
            raise WeightsError(f"damsm needs {what}; give text_encoder*.pth, image_encoder*.pth and captions.pickle together")
    return found


def _text_tensors(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """RNN_ENCODER's tensors under RNNEncoder's names; refuses what RNNEncoder cannot hold."""
    if any(k.endswith("_l1") or k.endswith("_l1_reverse") for k in state):
        raise WeightsError(f"{source}: a {1 + max(int(k.split('_l')[1].split('_')[0]) for k in state if '_l' in k)}-layer RNN; genmodels' RNNEncoder has one layer (nlayers 1, pretrain_DAMSM.py's)")
    if "rnn.weight_ih_l0_reverse" not in state:
        raise WeightsError(f"{source}: a one-direction RNN; genmodels' RNNEncoder is bidirectional (RNN_ENCODER's default)")
    hidden = state["rnn.weight_hh_l0"].shape[1]
    if state["rnn.weight_ih_l0"].shape[0] != 4 * hidden:
        raise WeightsError(f"{source}: rnn.weight_ih_l0 has {state['rnn.weight_ih_l0'].shape[0]} rows, not 4 x {hidden}: a GRU (RNN_TYPE 'GRU'); genmodels' RNNEncoder is an LSTM")
    out = {}
    for key, value in state.items():
        if key == "encoder.weight":
            out["embedding.weight"] = torch.cat([value[:1], value])  # <pad>, <unk> <- <end>; word i -> i + 1
        elif key.startswith("rnn."):
            out["lstm." + key[4:]] = value
        else:
            raise WeightsError(f"{source}: tensor {key} is not one of RNN_ENCODER's")
    return out


def _image_tensors(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        if key == "emb_features.weight":
            out["regions.weight"] = value
            out["regions.bias"] = torch.zeros(value.shape[0])
        elif key.startswith("emb_cnn_code."):
            out["global_." + key.split(".", 1)[1]] = value
        else:
            out["backbone.net." + key] = value
    return out


def _load(module: nn.Module, tensors: dict[str, Tensor], source: str, official_name: Any) -> None:
    load_mapped(module, ((name, official_name(name), value) for name, value in tensors.items()), source, fill=_not_in_encoder)


def _not_in_encoder(name: str, own: Tensor) -> Optional[Tensor]:
    """The Inception classifier (fc) and num_batches_tracked are not in CNN_ENCODER: they keep genmodels' values."""
    return own if name.startswith("backbone.net.fc.") or name.endswith("num_batches_tracked") else None


def convert(fmt: str, sources: list[pathlib.Path], options: dict[str, str]) -> nn.Module:
    """A `DAMSM` (eval mode) with the official text and image encoders and the dataset's words."""
    from genmodels.text.damsm import DAMSM
    from genmodels.text.vocabulary import PAD, UNK, TextError

    allowed = {"gammas", "lr", "rnn_grad_clip", "lr_decay", "new_optimizer_each_epoch", "backbone_batchnorm"}
    extra: dict[str, Any] = {}
    for key, text in options.items():
        if key not in allowed:
            raise WeightsError(f"--option {key}: not a training option of DAMSM here (options: {', '.join(sorted(allowed))}); the rest comes from the files")
        extra[key] = option_value(key, text)
    found = _classify(sources)
    (text_path, text_state), (image_path, image_state) = found["text"], found["image"]
    words = read_vocabulary(found["captions"])
    text = _text_tensors(text_state, text_path.name)
    vocab_size, embedding_dim = text["embedding.weight"].shape
    dim = 2 * text["lstm.weight_hh_l0"].shape[1]
    if vocab_size - 1 != len(words):
        raise WeightsError(f"{found['captions']}: {len(words)} words, {text_path.name} embeds {vocab_size - 1}; not the captions.pickle it was trained on")
    if image_state["emb_cnn_code.weight"].shape[0] != dim:
        raise WeightsError(f"{image_path.name}: image features of size {image_state['emb_cnn_code.weight'].shape[0]}, the text encoder's are {dim}; not a pair from one pretrain_DAMSM.py run")
    model = build(DAMSM, (TextError, ValueError, TypeError), vocab=[PAD, UNK, *words[1:]], dim=int(dim),
                  embedding_dim=int(embedding_dim), backbone="inception_v3", **extra)

    def text_name(name: str) -> str:
        return "encoder.weight" if name.startswith("embedding.") else "rnn." + name.split(".", 1)[1]

    def image_name(name: str) -> str:
        for ours, theirs in (("backbone.net.", ""), ("regions.", "emb_features."), ("global_.", "emb_cnn_code.")):
            if name.startswith(ours):
                return theirs + name[len(ours):]
        return name

    _load(model.text_encoder, text, text_path.name, text_name)
    _load(model.image_encoder, _image_tensors(image_state, image_path.name), image_path.name, image_name)
    return model.eval()


def write(model: nn.Module, out: pathlib.Path, extra: dict[str, Any]) -> pathlib.Path:
    """The DAMSM file ``damsm_ckpt`` options read (`genmodels.text.damsm.load_damsm`), written atomically."""
    from genmodels.atomic import atomic_write
    from genmodels.text.damsm import load_damsm

    payload = {"hyper_parameters": dict(model.hparams), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    atomic_write(out, lambda f: torch.save(payload, f))
    load_damsm(str(out))  # fails here, not at the user's, if it does not reopen
    return out
