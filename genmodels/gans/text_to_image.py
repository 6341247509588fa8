"""What every text-to-image GAN shares: the vocabulary, a frozen text encoder, captions as conditions.

`TextToImageGAN` is an `AdversarialModel` (the loop is the base's) conditioned on captions:

- the text encoder (`genmodels.text.damsm`, a bidirectional LSTM by default) is pretrained with the
  DAMSM objective (``genmodels train-damsm``) and loaded from ``damsm_ckpt`` when fitting starts;
  it stays frozen, as in StackGAN-v2, AttnGAN and DF-GAN. Without ``damsm_ckpt`` it keeps its
  random initialization (still frozen, with a warning): distinct captions still get distinct
  embeddings, enough on small synthetic sets, not for real data;
- ``condition(batch)`` is the sentence embedding of the batch's captions (B, D);
- the discriminator is matching-aware (Reed et al. 2016, arXiv:1605.05396, GAN-CLS, as in
  StackGAN and DF-GAN): besides (real image, its text) and (fake image, its text) it sees
  (real image, mismatched text) as fake; the mismatched text is the batch's captions rolled by
  one (the authors' code pairs image i with caption i + 1 for the first B - 1 images: the same
  pairs but one, with the same weight). With an additive loss L(real) + L(fake) this gives
  L_D = L(D(x, t)) + 1/2 [L(D(G(z, t), t)) + L(D(x, t'))], and with an unconditional head beside
  the conditional one (StackGAN stage II, AttnGAN) the authors' averages of
  `matching_aware_d_loss`;
- ``sample(n, condition=...)`` takes a caption (every image), a list of ``n`` captions, or
  ``{"tokens", "lengths"}``; words outside the vocabulary become ``<unk>`` (one warning lists
  them), captions over ``max_length`` words keep their first ones (a warning), a caption without
  any word is a `ConditionError`. ``condition=None`` draws captions from a bank of captions kept
  in the checkpoint: the datamodule's validation captions (caption k of every image, k = 0, 1, ...,
  up to ``caption_bank``), filled when fitting starts, else the first training batches; before
  training, random words. So every consumer of ``sample(n)`` (SampleGrid, the GenerativeMetrics
  callback, ``genmodels evaluate``) samples text-conditionally on validation captions: IS and
  FID are those of AttnGAN's protocol (images generated from held-out captions). The IS
  these papers publish for CUB/Oxford-102 uses an Inception fine-tuned on the birds/flowers
  classes (StackGAN-inception-model); ``is_inception`` (ImageNet Inception-v3) is not comparable
  with it (`genmodels.text.metrics`).

The vocabulary is a list of strings in the hyperparameters (so checkpoints load with
``weights_only=True``) and must equal the datamodule's (checked when fitting).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.conditioning import ConditionError
from genmodels.gans.adversarial import Judged, Outputs
from genmodels.gans.gan import LatentGAN
from genmodels.text.damsm import load_damsm, make_text_encoder
from genmodels.text.vocabulary import TextError, Vocabulary, tokenize
from genmodels.errors import InvalidValue, MissingFile

__all__ = ["authors_weight_init", "TextToImageGAN", "ConditioningAugmentation", "kl_to_standard_normal", "matching_aware_d_loss",
           "matching_aware_g_loss", "matching_aware_term"]

DEFAULT_VOCAB = ("<pad>", "<unk>", "a", "caption")


class ConditioningAugmentation(nn.Module):
    """c ~ N(mu(t), diag(sigma(t)^2)) from a text embedding t (StackGAN, Zhang et al. 2017, Sec. 3.2).

    As in the authors' code (CA_NET in StackGAN-Pytorch and AttnGAN model.py), one fully connected
    layer and an activation give (mu, log sigma^2): ``activation="relu"`` is StackGAN's (its fc
    outputs 2 condition_dim), ``"glu"`` AttnGAN's (fc to 4 condition_dim, halved by the GLU),
    ``"none"`` a plain linear layer.
    """

    def __init__(self, text_dim: int, condition_dim: int, activation: Literal["relu", "glu", "none"] = "none") -> None:
        super().__init__()
        if activation not in ("relu", "glu", "none"):
            raise InvalidValue(f"activation must be 'relu', 'glu' or 'none', got {activation!r}")
        self.fc = nn.Linear(text_dim, (4 if activation == "glu" else 2) * condition_dim)
        self.activation = activation
        self.condition_dim = condition_dim

    def encode(self, text: Tensor) -> tuple[Tensor, Tensor]:
        """t (B, text_dim) -> (mu, log sigma^2), each (B, condition_dim)."""
        x = self.fc(text)
        if self.activation == "relu":
            x = torch.relu(x)
        elif self.activation == "glu":
            x = F.glu(x, dim=1)
        return x[:, : self.condition_dim], x[:, self.condition_dim :]

    def forward(self, text: Tensor, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor, Tensor]:
        """t (B, text_dim) -> (c, mu, log sigma^2), each (B, condition_dim); c = mu + sigma * eps."""
        mu, logvar = self.encode(text)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps, mu, logvar


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """D_KL(N(mu, sigma^2) || N(0, I)) per dimension, averaged over the batch AND the dimensions.

    The paper writes the sum over dimensions (StackGAN Eq. 3-4); the authors' code (KL_loss in
    StackGAN-Pytorch miscc/utils.py and AttnGAN miscc/losses.py) takes the mean over all elements,
    which is what the published weights (2 in StackGAN, 1 in AttnGAN) multiply.
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean()


def matching_aware_d_loss(d_loss_fn: Callable[..., Tensor], real_out: Tensor, fake_out: Tensor, wrong_out: Tensor,
                          real_target: float = 1.0) -> Tensor:
    """D's loss with the averaging of the authors' code, for one discriminator.

    ``*_out`` are (B,) conditional scores, or (B, 2) with the unconditional score in column 1
    (StackGAN stage II, AttnGAN). With L(r, f) = A(r) + B(f) a mean over elements, the code's
    formulas are means over concatenated scores:

    - conditional only: A(r) + [B(f) + B(w)] / 2 (compute_discriminator_loss in StackGAN-Pytorch
      miscc/utils.py; DF-GAN's errD_real + (errD_fake + errD_mismatch) / 2);
    - with an unconditional head: [A(r_c) + A(r_u)] / 2 + [B(f_c) + B(f_u) + B(w_c)] / 3
      (the same function and AttnGAN's discriminator_loss in miscc/losses.py).
    """
    if real_out.dim() == 1:
        return d_loss_fn(real_out, torch.cat([fake_out, wrong_out]), real_target=real_target)
    real = torch.cat([real_out[:, 0], real_out[:, 1]])
    fake = torch.cat([fake_out[:, 0], fake_out[:, 1], wrong_out[:, 0]])
    return d_loss_fn(real, fake, real_target=real_target)


def matching_aware_term(d_loss: Callable[[Tensor, Tensor], Tensor], outputs: Sequence[Outputs]) -> Tensor:
    """`matching_aware_d_loss` of one discriminator from its heads' outputs: the loss of the real
    scores of every head against the fake scores of every head and the mismatched scores of the
    conditional heads (the same means over concatenated scores)."""
    real = torch.cat([o.real.flatten() for o in outputs])
    fake = torch.cat([o.fake.flatten() for o in outputs] + [o.wrong.flatten() for o in outputs if o.wrong is not None])
    return d_loss(real, fake)


def matching_aware_g_loss(g_loss_fn: Callable[[Tensor], Tensor], fake_out: Tensor) -> Tensor:
    """G's adversarial loss for one discriminator: conditional + unconditional (summed, as in the authors' code)."""
    if fake_out.dim() == 1:
        return g_loss_fn(fake_out)
    return g_loss_fn(fake_out[:, 0]) + g_loss_fn(fake_out[:, 1])


WeightInit = Literal["normal", "orthogonal", "pytorch"]
# Every layer whose class name holds "Conv", as the authors' class-name test matches.
_CONVS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)


def authors_weight_init(scheme: WeightInit, *networks: nn.Module) -> tuple[nn.Module, ...]:
    """Initialize ``networks`` as the authors' ``weights_init`` (applied with ``net.apply``) does.

    ``normal`` (StackGAN: StackGAN-Pytorch code/miscc/utils.py, and the TF code's custom_ops):
    conv and linear weights N(0, 0.02). ``orthogonal`` (AttnGAN code/miscc/utils.py): conv and
    linear weights orthogonal with gain 1. Both: BatchNorm weight N(1, 0.02) and bias 0, linear
    bias 0; conv biases keep PyTorch's default. ``pytorch`` leaves PyTorch's defaults.
    """
    if scheme not in ("normal", "orthogonal", "pytorch"):
        raise InvalidValue(f"model option weight_init={scheme!r} is invalid: must be normal, orthogonal or pytorch")

    @torch.no_grad()
    def init(module: nn.Module) -> None:
        if isinstance(module, _CONVS + (nn.Linear,)):
            if scheme == "normal":
                module.weight.normal_(0.0, 0.02)
            else:
                nn.init.orthogonal_(module.weight, 1.0)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
            module.weight.normal_(1.0, 0.02)
            module.bias.zero_()

    if scheme != "pytorch":
        for network in networks:
            network.apply(init)  # post-order, as the authors' net.apply(weights_init)
    return networks


class TextToImageGAN(LatentGAN):
    """Base of StackGAN and DF-GAN (see the module docstring).

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        vocab: the vocabulary, linked from the datamodule (``data.vocab``).
        latent_dim: size of z.
        text_dim: D, the text encoder's feature size (256 for AttnGAN's DAMSM encoder).
        word_embedding_dim: the text encoder's word embedding size (300).
        text_encoder: registered text encoder name (see `genmodels.text.damsm.TEXT_ENCODERS`).
        damsm_ckpt: DAMSM checkpoint (``genmodels train-damsm``) whose text encoder is loaded when fitting starts.
        max_length: words per caption given to `sample` (longer captions keep their first words).
        caption_bank: captions kept for ``sample(condition=None)`` (validation captions, see the module docstring).
        **kwargs: training options of `AdversarialModel`.
    """

    refused_options = {"feature_matching": "its discriminators have no features()"}

    # Whether the model reads the batch's caption means / wrong images (the TF StackGAN's features).
    averages_caption_embeddings = False
    judges_wrong_images = False

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 64, 64),
        vocab: Optional[Sequence[str]] = None,
        latent_dim: int = 100,
        text_dim: int = 256,
        word_embedding_dim: int = 300,
        text_encoder: str = "rnn",
        damsm_ckpt: Optional[str] = None,
        max_length: int = 18,
        caption_bank: int = 4096,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_shape, latent_dim, "normal", **kwargs)
        self.vocabulary = Vocabulary(list(vocab) if vocab is not None else list(DEFAULT_VOCAB))
        self.vocab = self.vocabulary.words
        # Here, not in each family: Lightning reads the arguments of every __init__ up the call chain,
        # so the family's own and the text options it passes on in **kwargs (defaults included).
        self.save_hyperparameters()
        self.hparams["vocab"] = self.vocab  # a plain list of strings (weights_only-loadable)
        self.text_dim, self.damsm_ckpt, self.max_length = text_dim, damsm_ckpt, max_length
        self.text_encoder = make_text_encoder(text_encoder, len(self.vocab), word_embedding_dim, text_dim)
        self.text_encoder.requires_grad_(False)
        self.register_buffer("bank_tokens", torch.zeros(caption_bank, max_length, dtype=torch.long))
        self.register_buffer("bank_lengths", torch.zeros(caption_bank, dtype=torch.long))
        self._damsm_loaded = False
        self._first_batch_checked = False
        self._condition_cache: Optional[tuple[Tensor, Tensor]] = None

    # -- the frozen text encoder ----------------------------------------------------------------
    def train(self, mode: bool = True) -> "TextToImageGAN":
        super().train(mode)
        self.text_encoder.eval()  # frozen: no dropout, whatever the mode of the rest
        return self

    def setup(self, stage: str) -> None:
        # Loaded here, before a resumed checkpoint's weights are restored (which then win).
        if stage == "fit" and not self._damsm_loaded:
            self.load_text_encoder()

    def load_text_encoder(self) -> Optional[Any]:
        """Copy the text encoder of ``damsm_ckpt`` (checking that its vocabulary is the model's).

        Returns the loaded `DAMSM` (None without ``damsm_ckpt``), for models that also use its image encoder.
        """
        if self.damsm_ckpt is None:
            warnings.warn(f"{type(self).__name__}: no damsm_ckpt, the text encoder stays randomly initialized "
                          "(train one with `genmodels train-damsm` for real data)", stacklevel=2)
            return None
        if not Path(self.damsm_ckpt).is_file():
            raise MissingFile(f"damsm_ckpt {self.damsm_ckpt} not found; train the text encoder first with "
                                    "`genmodels train-damsm --dataset <cub|oxford102|shapes> --out <path>` "
                                    "(see the README, Text-to-image), or set --model.init_args.damsm_ckpt null")
        damsm = load_damsm(self.damsm_ckpt)
        if damsm.vocab != self.vocab:
            raise ConditionError(f"the DAMSM checkpoint {self.damsm_ckpt} has another vocabulary ({len(damsm.vocab)} words) "
                                 f"than the datamodule ({len(self.vocab)} words); train DAMSM on the same data and min_word_count")
        try:
            self.text_encoder.load_state_dict(damsm.text_encoder.state_dict())
        except RuntimeError as err:
            raise ConditionError(f"the text encoder of {self.damsm_ckpt} does not fit the model's text_dim/word_embedding_dim: {err}") from None
        self._damsm_loaded = True
        return damsm

    @torch.no_grad()
    def encode_text(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(words (B, D, T), sentence (B, D)) from the frozen text encoder."""
        # Eval mode here, not only in train(): Lightning restores saved per-module modes directly.
        self.text_encoder.eval()
        # In fp32 whatever the precision: oneDNN has no bf16 LSTM on some CPUs, and the frozen
        # encoder is a small share of the step.
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return self.text_encoder(tokens, lengths)

    def condition(self, batch: dict[str, Any]) -> Tensor:
        """The sentence embeddings of the batch's captions, (B, D).

        With ``embedding_tokens`` in the batch (the datamodule's ``captions_per_embedding`` K > 1),
        each image's embedding is the mean of its K captions' embeddings (`mean_sentence_embedding`).
        The training step asks for them up to four times per batch (G, D, wrong pairs, KL or
        penalty); the frozen encoder's answer for the last batch is reused.
        """
        tokens = batch["tokens"]
        if self._condition_cache is None or self._condition_cache[0] is not tokens:
            if "embedding_tokens" in batch:
                text = self.mean_sentence_embedding(batch["embedding_tokens"], batch["embedding_lengths"])
            else:
                text = self.encode_text(tokens, batch["lengths"])[1]
            self._condition_cache = (tokens, text)
        return self._condition_cache[1]

    def mean_sentence_embedding(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """(B, K, T) tokens and (B, K) lengths -> (B, D): per image, the mean sentence embedding of
        its captions of nonzero length (the TF StackGAN's mean of NUM_EMBEDDING embeddings)."""
        b, k, t = tokens.shape
        valid = lengths.flatten() > 0
        sentences = self.encode_text(tokens.reshape(b * k, t)[valid], lengths.flatten()[valid])[1]
        per_caption = sentences.new_zeros(b * k, sentences.shape[1])
        per_caption[valid] = sentences
        weights = (lengths > 0).to(sentences.dtype)
        return (per_caption.view(b, k, -1) * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)

    # -- captions from users --------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Captions -> (tokens, lengths) on the model's device, warning about unknown words and truncation."""
        if isinstance(texts, str):
            texts = [texts]
        try:
            encoded = self.vocabulary.encode(list(texts), self.max_length)
        except TextError as err:
            raise ConditionError(str(err)) from None
        if encoded.unknown:
            warnings.warn(f"words not in the model's vocabulary, read as <unk>: {', '.join(encoded.unknown)}", stacklevel=2)
        if encoded.truncated:
            warnings.warn(f"{len(encoded.truncated)} caption(s) longer than {self.max_length} words: only the first "
                          f"{self.max_length} words are used", stacklevel=2)
        return encoded.tokens.to(self.device), encoded.lengths.to(self.device)

    def caption_tokens(self, n: int, condition: Any, generator: Optional[torch.Generator]) -> tuple[Tensor, Tensor]:
        """(tokens, lengths) of ``n`` captions from a `sample` condition (see the module docstring)."""
        if condition is None:
            return self._bank_draw(n, generator)
        if isinstance(condition, dict):
            tokens, lengths = condition["tokens"].to(self.device), condition["lengths"].to(self.device)
        elif isinstance(condition, str):
            tokens, lengths = self.tokenize([condition])
        elif isinstance(condition, (list, tuple)) and all(isinstance(c, str) for c in condition):
            tokens, lengths = self.tokenize(condition)
        else:
            raise ConditionError(f"a text condition is a caption, a list of captions or {{'tokens', 'lengths'}}, got {type(condition).__name__}")
        if tokens.shape[0] == 1:
            tokens, lengths = tokens.expand(n, -1), lengths.expand(n)
        if tokens.shape[0] != n:
            raise ConditionError(f"{tokens.shape[0]} captions for {n} images: give one caption or {n}")
        return tokens, lengths

    def _bank_draw(self, n: int, generator: Optional[torch.Generator]) -> tuple[Tensor, Tensor]:
        filled = self._bank_size()
        if filled == 0:  # untrained: random words, so sampling works before the first batch
            tokens = torch.randint(2, len(self.vocab), (n, 4), generator=generator, device=self.device)
            return tokens, torch.full((n,), 4, dtype=torch.long, device=self.device)
        index = torch.randint(0, filled, (n,), generator=generator, device=self.device)
        return self.bank_tokens[index], self.bank_lengths[index]

    # -- fitting checks and the caption bank -------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = self.trainer.datamodule
        # getattr: text-image datamodules have a vocabulary; a model may be fit on any datamodule.
        found = getattr(datamodule, "vocab", None) if datamodule is not None else None
        if found is not None and list(found) != self.vocab:
            raise ConditionError(f"the model's vocabulary ({len(self.vocab)} words) differs from the datamodule's "
                                 f"({len(found)}); let the CLI link data.vocab, or give the same vocabulary")
        # getattr: caption records exist on text-image datamodules only (genmodels never imports datamodules).
        if datamodule is not None and callable(getattr(datamodule, "records", None)) and self._bank_size() == 0:
            self.set_caption_bank(_round_robin(datamodule.records("val").captions))

    def _bank_size(self) -> int:
        return int((self.bank_lengths > 0).sum())

    def set_caption_bank(self, captions: Sequence[str]) -> None:
        """Keep the first ``caption_bank`` of ``captions`` for ``sample(condition=None)``."""
        captions = [c for c in captions if tokenize(c)][: self.bank_lengths.shape[0]]  # a line of punctuation has no word
        if not captions:
            return
        encoded = self.vocabulary.encode(captions, self.max_length)  # unknown words silently -> <unk>
        self.bank_tokens.zero_()
        self.bank_lengths.zero_()
        self.bank_tokens[: len(captions)] = encoded.tokens.to(self.bank_tokens.device)
        self.bank_lengths[: len(captions)] = encoded.lengths.to(self.bank_lengths.device)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Once per run (one host sync): the batch carries text, and the bank has captions even
        # without a TextImageDataModule (then those of the first training batch).
        if self._first_batch_checked:
            return
        if "tokens" not in batch or "lengths" not in batch:
            raise ConditionError(f"{type(self).__name__} needs batches with 'tokens' and 'lengths' (a TextImageDataModule)")
        # The TF StackGAN's two data features are read by StackGAN only: refused rather than ignored.
        if "embedding_tokens" in batch and not self.averages_caption_embeddings:
            raise ConditionError(f"{type(self).__name__} uses one caption per image; set --data.init_args.captions_per_embedding 1")
        if "wrong_image" in batch and not self.judges_wrong_images:
            raise ConditionError(f"{type(self).__name__} pairs real images with rolled captions; set --data.init_args.wrong_images none")
        if self._bank_size() == 0:
            take = min(self.bank_lengths.shape[0], batch["tokens"].shape[0])
            width = min(self.max_length, batch["tokens"].shape[1])
            self.bank_tokens[:take, :width] = batch["tokens"][:take, :width]
            self.bank_lengths[:take] = batch["lengths"][:take].clamp(max=width)
        self._first_batch_checked = True

    # -- matching-aware discriminator ---------------------------------------------------------
    def judged(self, batch: dict[str, Any], fake: Any) -> dict[str, Judged]:
        """(real, t) and (G(z, t), t), and (real, t') with t' the captions rolled by one."""
        text = self.condition(batch)
        return {"d": Judged(batch["image"], fake, text, text.roll(1, dims=0))}

    def discriminator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """`matching_aware_term` over the discriminator's heads."""
        return matching_aware_term(self.d_loss, list(outputs.values()))


def _round_robin(captions: Sequence[Sequence[str]]) -> list[str]:
    """Caption 0 of every image, then caption 1 of every image, ..."""
    longest = max((len(c) for c in captions), default=0)
    return [caps[k] for k in range(longest) for caps in captions if k < len(caps)]
