"""DAMSM: the Deep Attentional Multimodal Similarity Model of AttnGAN (Xu et al. 2018, arXiv:1711.10485, Sec. 3.3).

Two encoders map captions and images into one space of dimension D (256 in the paper):

- `RNNEncoder` (the text encoder): word embeddings, then a bidirectional LSTM (D/2 units per
  direction); the hidden states of each word are its word features ``e`` (B, D, T) and the last
  hidden states of both directions form the sentence feature ``ē`` (B, D).
- `CNNEncoder` (the image encoder): a backbone gives a map of local features and a global
  feature; 1x1 / linear projections map them to D: region features ``v`` (B, D, h*w) and the
  global ``v̄`` (B, D). The paper's backbone is an ImageNet Inception-v3 (``Mixed_6e`` regions,
  17x17; the pooled 2048-d feature), frozen. Its weights cannot be downloaded on offline nodes, so
  the default backbone is `SmallCNN`, trained from scratch, and ``backbone="inception_v3"``
  takes torchvision's architecture with weights from a local file (``backbone_weights``).

The DAMSM objective (Eq. 7-11) matches each word to an attention-weighted context of the image
regions (gamma1 sharpens the attention, gamma2 the aggregation over words, gamma3 the softmax
over the batch), plus the same softmax matching of sentence and global image features:
L = L1_w + L2_w + L1_s + L2_s. As in the authors' code (words_loss in AttnGAN miscc/losses.py),
the word-level score is log(sum_t exp(gamma2 R(c_t, e_t))), without the paper's 1/gamma2 power
of Eq. 10; the sentence score is gamma3 times the cosine similarity (sent_loss). As in the AttnGAN code, a mismatched pair whose image has the
same class as the caption's is left out of the softmax (it is not a true negative).

Pluggable text encoders: a text-to-image model builds its encoder by name from `TEXT_ENCODERS`.
An encoder is an ``nn.Module`` constructed as ``cls(vocab_size=..., embedding_dim=..., dim=...)``
whose ``forward(tokens (B, T) long, lengths (B,) long)`` returns ``(words (B, dim, T),
sentence (B, dim))``; register another one with ``@register_text_encoder("name")`` in code that
runs before the model is built (names, not import paths, are stored in checkpoints, so a
checkpoint can only select code you registered).

Training: ``genmodels train-damsm`` (`genmodels.text.commands`) fits `DAMSM` on a
`TextImageDataModule` and writes a checkpoint the GANs load with ``damsm_ckpt``.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from genmodels.errors import InvalidValue

__all__ = [
    "RNNEncoder", "CNNEncoder", "SmallCNN", "InceptionBackbone", "DAMSM", "TEXT_ENCODERS", "register_text_encoder",
    "word_region_similarity", "matching_loss", "damsm_loss", "load_damsm",
]  # fmt: skip

TEXT_ENCODERS: dict[str, type] = {}


def register_text_encoder(name: str) -> Callable[[type], type]:
    """Class decorator: make a text encoder selectable by ``text_encoder: <name>`` (see module docstring)."""

    def register(cls: type) -> type:
        TEXT_ENCODERS[name] = cls
        return cls

    return register


def make_text_encoder(name: str, vocab_size: int, embedding_dim: int, dim: int) -> nn.Module:
    if name not in TEXT_ENCODERS:
        raise InvalidValue(f"unknown text_encoder {name!r}; registered: {sorted(TEXT_ENCODERS)} (see genmodels.text.damsm)")
    return TEXT_ENCODERS[name](vocab_size=vocab_size, embedding_dim=embedding_dim, dim=dim)


# ---------------------------------------------------------------------------------------------
# Encoders


@register_text_encoder("rnn")
class RNNEncoder(nn.Module):
    """Bidirectional LSTM over word embeddings (AttnGAN's text encoder).

    Args:
        vocab_size: number of words (index 0 is padding).
        embedding_dim: word embedding size (300 in AttnGAN).
        dim: D, the feature size (each direction has D/2 units; 256 in AttnGAN).
        dropout: on the embeddings (0.5 in AttnGAN).
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 300, dim: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        if dim % 2:
            raise InvalidValue(f"the text feature size must be even (two LSTM directions), got {dim}")
        self.dim = dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embedding_dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B, T), lengths (B,) -> words (B, D, T) (0 after each caption's end), sentence (B, D)."""
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        output, (hidden, _) = self.lstm(packed)
        words, _ = pad_packed_sequence(output, batch_first=True, total_length=tokens.shape[1])
        sentence = torch.cat([hidden[0], hidden[1]], dim=1)  # last state of the forward and backward passes
        return words.transpose(1, 2), sentence


class SmallCNN(nn.Module):
    """A small trainable backbone: regions at 1/8 of the input side, a pooled global feature."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()

        def down(cin: int, cout: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True))

        self.local = nn.Sequential(down(3, width), down(width, 2 * width), down(2 * width, 4 * width))
        self.top = nn.Sequential(nn.Conv2d(4 * width, 8 * width, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
        self.local_channels, self.global_channels = 4 * width, 8 * width

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        local = self.local(images)
        return local, self.top(local).mean(dim=(2, 3))


class InceptionBackbone(nn.Module):
    """torchvision's Inception-v3 (Szegedy et al. 2016): Mixed_6e regions (768 x 17 x 17), pooled 2048-d.

    Args:
        weights: path of a local ``inception_v3`` state dict (ImageNet weights, e.g.
            ``inception_v3_google-0cc3c7bd.pth``); None leaves it random (tests only).
    """

    def __init__(self, weights: Optional[str] = None) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict({k: v for k, v in state.items() if not k.startswith("AuxLogits")}, strict=False)
        self.net = net
        self.local_channels, self.global_channels = 768, 2048

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        # Images in [-1, 1] are what the Google Inception weights expect (transform_input off).
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        n = self.net
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1, n.Conv2d_4a_3x3,
                      n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e):
            x = layer(x)
        local = x
        for layer in (n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        return local, x.mean(dim=(2, 3))


class CNNEncoder(nn.Module):
    """Backbone + projections to D: regions (B, D, h*w) and global (B, D) image features.

    Args:
        dim: D (256 in AttnGAN).
        backbone: ``small`` (`SmallCNN`, trainable) or ``inception_v3`` (frozen, local weights).
        backbone_weights: ``inception_v3`` weights file.
        width: `SmallCNN` width.
    """

    def __init__(self, dim: int = 256, backbone: Literal["small", "inception_v3"] = "small",
                 backbone_weights: Optional[str] = None, width: int = 64,
                 backbone_batchnorm: Literal["train", "eval"] = "train") -> None:
        super().__init__()
        if backbone == "small":
            self.backbone: nn.Module = SmallCNN(width)
        elif backbone == "inception_v3":
            self.backbone = InceptionBackbone(backbone_weights)
            self.backbone.requires_grad_(False)  # the paper keeps the ImageNet features fixed
        else:
            raise InvalidValue(f"backbone must be 'small' or 'inception_v3', got {backbone!r}")
        self.frozen_backbone = backbone == "inception_v3"
        # AttnGAN's pretrain_DAMSM.py calls cnn_model.train(): the frozen Inception's BatchNorm
        # layers normalize with batch statistics and update their running averages in training.
        self.backbone_batchnorm = backbone_batchnorm
        self.regions = nn.Conv2d(self.backbone.local_channels, dim, 1)
        self.global_ = nn.Linear(self.backbone.global_channels, dim)

    def train(self, mode: bool = True) -> "CNNEncoder":
        super().train(mode)
        if self.frozen_backbone and self.backbone_batchnorm == "eval":
            self.backbone.eval()  # frozen BatchNorm statistics too
        return self

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        local, pooled = self.backbone(images)
        return self.regions(local).flatten(2), self.global_(pooled)


# ---------------------------------------------------------------------------------------------
# The DAMSM objective (pure functions)


def word_region_similarity(words: Tensor, lengths: Tensor, regions: Tensor, gamma1: float, gamma2: float) -> Tensor:
    """R(Q_j, D_i) of every image j and caption i (Eq. 7-10 as in the authors' code): (B_images, B_captions).

    Args:
        words: e, (B, D, T); lengths (B,): valid words per caption.
        regions: v, (B', D, N).
    """
    T = words.shape[2]
    valid = torch.arange(T, device=words.device)[None, :] < lengths[:, None]  # (B, T)
    # s = e^T v for every (image j, caption i, word t, region n)
    s = torch.einsum("idt,jdn->jitn", words, regions)
    # Eq. 8: normalize over the words of the caption for each region
    s = s.masked_fill(~valid[None, :, :, None], float("-inf")).softmax(dim=2)
    # Eq. 9: attention of each word over the regions, sharpened by gamma1; c = sum_n alpha v_n
    alpha = (gamma1 * s).softmax(dim=3)
    context = torch.einsum("jitn,jdn->jitd", alpha, regions)
    relevance = F.cosine_similarity(context, words.transpose(1, 2)[None], dim=3)  # R(c_t, e_t)
    # Eq. 10 as the authors' code computes it (words_loss in miscc/losses.py):
    # R(Q, D) = log(sum_t exp(gamma2 R(c_t, e_t))) over the valid words. The paper's exponent
    # 1/gamma2 is not applied, so gamma3 multiplies a score gamma2 times larger than the paper's.
    relevance = (gamma2 * relevance).masked_fill(~valid[None], float("-inf"))
    return torch.logsumexp(relevance, dim=2)


def matching_loss(scores: Tensor, gamma3: float, labels: Optional[Tensor] = None) -> Tensor:
    """L1 + L2 (Eq. 11-12) of a (B_images, B_captions) similarity whose diagonal holds the true pairs.

    Pairs off the diagonal whose two sides share a class (``labels`` >= 0) are masked out.
    """
    logits = gamma3 * scores
    if labels is not None:
        same = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(scores.shape[0], device=scores.device)
    # P(D_i | Q_i): captions given an image (rows); P(Q_i | D_i): images given a caption (columns)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)


def damsm_loss(words: Tensor, sentence: Tensor, lengths: Tensor, regions: Tensor, global_: Tensor,
               gammas: Sequence[float] = (4.0, 5.0, 10.0), labels: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """(word loss L1_w + L2_w, sentence loss L1_s + L2_s) of a batch of matching captions and images."""
    gamma1, gamma2, gamma3 = gammas
    word_scores = word_region_similarity(words, lengths, regions, gamma1, gamma2)
    sentence_scores = F.cosine_similarity(global_[:, None, :], sentence[None, :, :], dim=2)
    return matching_loss(word_scores, gamma3, labels), matching_loss(sentence_scores, gamma3, labels)


# ---------------------------------------------------------------------------------------------


class DAMSM(pl.LightningModule):
    """Pretraining of the text and image encoders with the DAMSM loss (AttnGAN, Sec. 3.3).

    Args:
        vocab: the vocabulary (``[<pad>, <unk>, words...]``), linked from the datamodule.
        dim: D, the common feature size (256).
        embedding_dim: word embedding size (300).
        text_encoder: registered text encoder name (`TEXT_ENCODERS`).
        backbone, backbone_weights, width: of the `CNNEncoder`.
        gammas: (gamma1, gamma2, gamma3) = (4, 5, 10) (the paper's CUB values; 5, 5, 50 for COCO).
        lr: Adam learning rate (AttnGAN: 0.002, betas (0.5, 0.999)).
        rnn_grad_clip: gradient-norm clip of the text encoder (AttnGAN: 0.25).
        lr_decay: per-epoch factor of the learning rate while it is above lr / 10 (AttnGAN
            pretrain_DAMSM.py: ``if lr > ENCODER_LR / 10.: lr *= 0.98``); 1 keeps it constant.
        new_optimizer_each_epoch: start every epoch with a fresh Adam (the authors build
            ``optim.Adam(para, lr=lr, ...)`` inside the epoch loop: moments and bias correction restart).
        backbone_batchnorm: ``train`` (the authors': the frozen Inception's BatchNorm in train mode)
            or ``eval`` (fixed ImageNet statistics).
    """

    def __init__(self, vocab: Sequence[str] = ("<pad>", "<unk>", "word"), dim: int = 256, embedding_dim: int = 300,
                 text_encoder: str = "rnn", backbone: Literal["small", "inception_v3"] = "small",
                 backbone_weights: Optional[str] = None, width: int = 64,
                 gammas: tuple[float, float, float] = (4.0, 5.0, 10.0), lr: float = 0.002,
                 rnn_grad_clip: float = 0.25, lr_decay: float = 0.98, new_optimizer_each_epoch: bool = True,
                 backbone_batchnorm: Literal["train", "eval"] = "train") -> None:
        super().__init__()
        vocab = [str(w) for w in vocab]
        if not 0 < lr_decay <= 1:
            raise InvalidValue(f"DAMSM lr_decay={lr_decay!r} is invalid: must be in (0, 1]")
        if backbone_batchnorm not in ("train", "eval"):
            raise InvalidValue(f"DAMSM backbone_batchnorm={backbone_batchnorm!r} is invalid: must be train or eval")
        self.save_hyperparameters({"vocab": vocab, "dim": dim, "embedding_dim": embedding_dim, "text_encoder": text_encoder,
                                   "backbone": backbone, "backbone_weights": backbone_weights, "width": width,
                                   "gammas": list(gammas), "lr": lr, "rnn_grad_clip": rnn_grad_clip,
                                   "lr_decay": lr_decay, "new_optimizer_each_epoch": new_optimizer_each_epoch,
                                   "backbone_batchnorm": backbone_batchnorm})
        self.vocab, self.gammas, self.lr, self.rnn_grad_clip = vocab, tuple(gammas), lr, rnn_grad_clip
        self.lr_decay, self.new_optimizer_each_epoch = lr_decay, new_optimizer_each_epoch
        self.text_encoder = make_text_encoder(text_encoder, len(vocab), embedding_dim, dim)
        self.image_encoder = CNNEncoder(dim, backbone, backbone_weights, width, backbone_batchnorm)

    def epoch_lr(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0-based): lr x decay^k, decayed after each epoch while above lr / 10."""
        lr = self.lr
        for _ in range(epoch):
            if lr > self.lr / 10.0:
                lr *= self.lr_decay
        return lr

    def on_train_epoch_start(self) -> None:
        for optimizer in self.trainer.optimizers:
            if self.new_optimizer_each_epoch:
                optimizer.state.clear()  # a new Adam: zero moments, step count restarts
            for group in optimizer.param_groups:
                group["lr"] = self.epoch_lr(self.current_epoch)

    def losses(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        words, sentence = self.text_encoder(batch["tokens"], batch["lengths"])
        regions, global_ = self.image_encoder(batch["image"])
        return damsm_loss(words, sentence, batch["lengths"], regions, global_, self.gammas, batch.get("label"))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        word_loss, sentence_loss = self.losses(batch)
        size = batch["image"].shape[0]
        self.log_dict({"train/damsm_word": word_loss, "train/damsm_sentence": sentence_loss}, batch_size=size)
        return word_loss + sentence_loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        word_loss, sentence_loss = self.losses(batch)
        self.log_dict({"val/damsm_word": word_loss, "val/damsm_sentence": sentence_loss}, batch_size=batch["image"].shape[0])

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # AttnGAN clips the RNN's gradients only (LSTM gradients explode early in training).
        torch.nn.utils.clip_grad_norm_(self.text_encoder.parameters(), self.rnn_grad_clip)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr, betas=(0.5, 0.999))


def load_damsm(path: str, map_location: Any = "cpu") -> DAMSM:
    """A `DAMSM` from its training checkpoint (opened with ``weights_only=True``), in eval mode."""
    from genmodels.checkpoints import CheckpointError, load_checkpoint_safely

    checkpoint = load_checkpoint_safely(path, map_location)
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict) or "vocab" not in hparams or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a DAMSM checkpoint (written by `genmodels train-damsm`)")
    hparams = dict(hparams, backbone_weights=None)  # the weights are in the state dict
    model = DAMSM(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
