"""Fixtures for the damsm importer, made by taoxugit/AttnGAN's own DAMSM encoders (code/model.py).

    python scripts/official/make_fixtures_damsm.py --checkout /tmp/AttnGAN --out tests/fixtures/official/damsm

Builds RNN_ENCODER (bidirectional LSTM, cfg.RNN_TYPE 'LSTM') and CNN_ENCODER (on torchvision's
Inception v3) as pretrain_DAMSM.py does, at a small width (19 words, 12-d embeddings,
EMBEDDING_DIM 16), perturbs every parameter and buffer, and saves their state dicts under
pretrain_DAMSM.py's names (``text_encoder3.pth``, ``image_encoder3.pth``) beside a
``captions.pickle`` in the layout of AttnGAN's TextDataset.load_text_data ([train_captions,
test_captions, ixtoword, wordtoix]). ``io.pt`` holds fixed captions (sorted longest first, as the
official code needs) and images with the eval-mode outputs: words_emb, sent_emb, region features,
cnn_code.

CNN_ENCODER downloads ImageNet Inception weights; here ``model_zoo.load_url`` is replaced (in this
process only) by random weights, and every Inception tensor is then set by `inception_value`, a
function of its name and shape alone. ~95 MB of Inception tensors are too big to commit, so
``image_encoder3.pth`` keeps only the DAMSM projections (``emb_features``, ``emb_cnn_code``); the
test rebuilds the full file with `inception_value`. Only tensors are written.
"""

from __future__ import annotations

import argparse
import pathlib
import pickle
import sys
import types
import zlib

import torch

#: pretrain_DAMSM.py's shapes at a fixture's size.
CONFIG = dict(ninput=12, embedding_dim=16, words_num=6)
WORDS = ["<end>", "this", "bird", "has", "a", "red", "crown", "and", "white", "belly", "small", "yellow", "beak",
         "wings", "are", "black", "long", "tail", "brown"]


def inception_value(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A deterministic stand-in for one ImageNet Inception v3 tensor (scaled so activations stay O(1))."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    if name.endswith("num_batches_tracked"):
        return torch.tensor(5)
    if name.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if name.endswith(("running_mean", ".bias")):
        return 0.1 * torch.randn(shape, generator=g)
    if name.endswith("bn.weight"):
        return 1 + 0.1 * torch.randn(shape, generator=g)
    fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else shape[0]
    return torch.randn(shape, generator=g) * (1.0 / fan_in) ** 0.5


def _easydict() -> types.ModuleType:
    """miscc/config.py needs easydict (attribute access to nested dicts); a minimal one if it is missing."""

    class EasyDict(dict):
        def __getattr__(self, name):
            try:
                return self[name]
            except KeyError:
                raise AttributeError(name) from None

        def __setattr__(self, name, value):
            self[name] = value

    return types.SimpleNamespace(EasyDict=EasyDict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=pathlib.Path, required=True, help="a checkout of taoxugit/AttnGAN")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str((args.checkout / "code").resolve()))
    try:
        import easydict  # noqa: F401
    except ModuleNotFoundError:
        sys.modules["easydict"] = _easydict()
    import torch.utils.model_zoo
    import torchvision

    # No download: CNN_ENCODER's load_url gets Inception weights of the right names and shapes.
    torch.utils.model_zoo.load_url = lambda url, **_: torchvision.models.inception_v3(weights=None, init_weights=False, aux_logits=True).state_dict()
    import model as attngan  # the checkout's code/model.py
    from miscc.config import cfg

    c = CONFIG
    cfg.TEXT.WORDS_NUM, cfg.RNN_TYPE, cfg.TRAIN.FLAG = c["words_num"], "LSTM", True
    torch.manual_seed(0)
    text_encoder = attngan.RNN_ENCODER(len(WORDS), ninput=c["ninput"], nhidden=c["embedding_dim"])
    image_encoder = attngan.CNN_ENCODER(c["embedding_dim"])
    g = torch.Generator().manual_seed(0)
    projections = ("emb_features.", "emb_cnn_code.")
    with torch.no_grad():
        for net in (text_encoder, image_encoder):
            for name, tensor in list(net.named_parameters()) + list(net.named_buffers()):
                if net is image_encoder and not name.startswith(projections):
                    tensor.copy_(inception_value(name, tuple(tensor.shape)))
                else:
                    tensor.add_(0.1 * torch.randn(tensor.shape, generator=g))
    text_encoder.eval(), image_encoder.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(text_encoder.state_dict(), args.out / "text_encoder3.pth")
    heads = {k: v for k, v in image_encoder.state_dict().items() if k.startswith(projections)}
    torch.save(heads, args.out / "image_encoder3.projections.pth")
    ixtoword = dict(enumerate(WORDS))
    wordtoix = {w: i for i, w in ixtoword.items()}
    with open(args.out / "captions.pickle", "wb") as f:
        pickle.dump([[[1, 2, 3, 4, 5, 6]], [[2, 3, 7]], ixtoword, wordtoix], f, protocol=2)
    # Captions longest first (pack_padded_sequence in the official forward needs it), padded with 0.
    lengths = torch.tensor([6, 5, 3, 1])
    captions = torch.zeros(4, c["words_num"], dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        captions[row, :n] = torch.randint(1, len(WORDS), (n,), generator=g)
    images = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        words, sentence = text_encoder(captions, lengths, text_encoder.init_hidden(4))
        regions, code = image_encoder(images)
    io = {"captions": captions, "lengths": lengths, "images": images, "words": words, "sentence": sentence,
          "regions": regions, "cnn_code": code}
    torch.save(io, args.out / "io.pt")
    print(args.out, c, {k: tuple(v.shape) for k, v in io.items()})


if __name__ == "__main__":
    main()
