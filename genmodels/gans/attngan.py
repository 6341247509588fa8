"""AttnGAN: fine-grained text to image generation with attentional GANs (Xu et al. 2018, arXiv:1711.10485).

The attentional generative network (Sec. 3.1) draws the image in m = 3 stages, at S/4, S/2 and S
(64, 128, 256 for S = 256):

- h0 = F0(z, F^ca(ē)): conditioning augmentation of the sentence feature ē (as in StackGAN), then a
  fully connected layer to 4x4 x 16 ngf and upsampling blocks (x2 nearest, 3x3 conv, BatchNorm,
  GLU, as in the authors' code) to S/4 with ngf channels;
- h_i = F_i(h_{i-1}, F_i^attn(e, h_{i-1})) for i = 1, 2: the attention model (Eq. 2) projects the
  word features e (D x T) into h's space (e' = U e) and gives every sub-region j a word-context
  vector c_j = sum_i beta_{j,i} e'_i with beta_{j,i} = softmax_i(h_j^T e'_i); [h, c] (2 ngf
  channels) goes through the residual blocks and an upsampling block back to ngf (NEXT_STAGE_G);
- x̂_i = G_i(h_i): a 3x3 conv and tanh at each stage.

Each stage has its discriminator (D_NET64/128/256 of the authors' code): the image code at 4x4
(8 ndf), a conditional head (the sentence feature replicated, a 3x3 conv, a 4x4 conv) and an
unconditional head (a 4x4 conv on the code); `StackGANDiscriminator` with ``unconditional``. The
three discriminators are one module here (`MultiScaleDiscriminator`) with one Adam optimizer:
Adam's update is per parameter, so one optimizer over the three networks equals three optimizers
with the same settings, and the `AdversarialModel` loop applies unchanged. Each stage's D loss is
the code's (discriminator_loss in miscc/losses.py): [A(r_c) + A(r_u)] / 2 + [B(f_c) + B(f_u) +
B(w_c)] / 3 (`genmodels.gans.text_to_image.matching_aware_d_loss`), summed over the stages.

G's objective (Eq. 3; generator_loss in miscc/losses.py): sum over the stages of the conditional
plus the unconditional adversarial loss, + lambda L_DAMSM (lambda = 5 for CUB) + the KL term of
conditioning augmentation (the code's KL_loss: the mean over batch and dimensions, weight 1).
L_DAMSM (Eq. 7-12) compares the final image, through the frozen DAMSM image encoder, with the
caption's word and sentence features; both DAMSM encoders come from ``damsm_ckpt`` (``genmodels
train-damsm``). The image encoder is loaded when fitting starts and is not saved in the model's
checkpoints (sampling does not need it); without ``damsm_ckpt`` the DAMSM term is left out (with a
warning). Conditioning augmentation is the code's CA_NET (a fully connected layer to 4 x 100 and a
GLU).

Differences from the paper: training images are flipped (``random_flip``) but not randomly cropped.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.gans.stackgan import StackGANDiscriminator
from genmodels.gans.adversarial import Head, Outputs, total
from genmodels.gans.text_to_image import (ConditioningAugmentation, TextToImageGAN, authors_weight_init, kl_to_standard_normal,
                                          matching_aware_term)
from genmodels.text.damsm import damsm_loss
from genmodels.errors import InvalidValue

__all__ = ["AttnGAN", "AttentionalGenerator", "WordAttention", "MultiScaleDiscriminator"]


def _up(cin: int, cout: int) -> nn.Sequential:
    """x2 nearest, 3x3 conv to 2 cout, BatchNorm, GLU (halves the channels back to cout)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, 2 * cout, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(2 * cout), nn.GLU(dim=1))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, 2 * channels, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * channels),
                                  nn.GLU(dim=1), nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class WordAttention(nn.Module):
    """F^attn (Eq. 2): word-context vectors for every sub-region of h."""

    def __init__(self, channels: int, text_dim: int) -> None:
        super().__init__()
        self.project = nn.Conv1d(text_dim, channels, 1, bias=False)  # U: word features into h's space

    def forward(self, h: Tensor, words: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """h (B, C, H, W), words (B, D, T) -> (context (B, C, H, W), attention (B, H*W, T))."""
        e = self.project(words.to(h.dtype))
        scores = torch.einsum("bcn,bct->bnt", h.flatten(2), e)
        valid = torch.arange(words.shape[2], device=h.device)[None, :] < lengths[:, None]
        beta = scores.masked_fill(~valid[:, None, :], float("-inf")).softmax(dim=2)
        return torch.einsum("bnt,bct->bcn", beta, e).view_as(h), beta


class _NextStage(nn.Module):
    """F_i (NEXT_STAGE_G): [h, attention context] (2 ngf channels) -> residual blocks -> x2 upsampling to ngf."""

    def __init__(self, channels: int, text_dim: int, residual_blocks: int) -> None:
        super().__init__()
        self.attention = WordAttention(channels, text_dim)
        self.residual = nn.Sequential(*[_Residual(2 * channels) for _ in range(residual_blocks)])
        self.up = _up(2 * channels, channels)

    def forward(self, h: Tensor, words: Tensor, lengths: Tensor) -> Tensor:
        context, _ = self.attention(h, words, lengths)
        return self.up(self.residual(torch.cat([h, context], dim=1)))


class AttentionalGenerator(nn.Module):
    """The attentional generative network: images at S/4, S/2 and S from (z, sentence, words)."""

    def __init__(self, image_size: int, latent_dim: int, text_dim: int, condition_dim: int, ngf: int,
                 residual_blocks: int = 2) -> None:
        super().__init__()
        first = image_size // 4
        ups = math.log2(first / 4)
        if image_size % 4 or ups < 1 or ups != int(ups):
            raise InvalidValue(f"AttnGAN image size must be 4 * 2^k >= 32 (stages at S/4, S/2, S), got {image_size}")
        self.ca = ConditioningAugmentation(text_dim, condition_dim, "glu")
        channels = 16 * ngf
        self.fc = nn.Sequential(nn.Linear(latent_dim + condition_dim, 2 * channels * 16, bias=False),
                                nn.BatchNorm1d(2 * channels * 16), nn.GLU(dim=1))
        blocks = []
        for _ in range(int(ups)):
            blocks.append(_up(channels, max(channels // 2, ngf)))
            channels = max(channels // 2, ngf)
        self.stage0 = nn.Sequential(*blocks, *([] if channels == ngf else [nn.Conv2d(channels, ngf, 1)]))
        self.stages = nn.ModuleList([_NextStage(ngf, text_dim, residual_blocks) for _ in range(2)])
        self.to_image = nn.ModuleList([nn.Sequential(nn.Conv2d(ngf, 3, 3, 1, 1, bias=False), nn.Tanh()) for _ in range(3)])

    def forward(self, z: Tensor, sentence: Tensor, words: Tensor, lengths: Tensor,
                generator: Optional[torch.Generator] = None) -> tuple[tuple[Tensor, ...], Tensor, Tensor]:
        """-> ((x̂_0, x̂_1, x̂_2), mu, log sigma^2)."""
        c, mu, logvar = self.ca(sentence, generator)
        h = self.stage0(self.fc(torch.cat([c, z], dim=1)).view(z.shape[0], -1, 4, 4))
        images = [self.to_image[0](h)]
        for stage, head in zip(self.stages, self.to_image[1:]):
            h = stage(h, words, lengths)
            images.append(head(h))
        return tuple(images), mu, logvar


class MultiScaleDiscriminator(nn.Module):
    """One D per stage (conditional and unconditional heads); scores (B, 3, 2): stage, [cond, uncond].

    Takes the three images of a generated pyramid, or one real image, which it resizes to the
    stages' sizes itself.
    """

    def __init__(self, image_size: int, text_dim: int, df_dim: int) -> None:
        super().__init__()
        self.sizes = (image_size // 4, image_size // 2, image_size)
        self.nets = nn.ModuleList([StackGANDiscriminator(size, text_dim, df_dim, unconditional=True) for size in self.sizes])

    def pyramid(self, images: Any) -> Sequence[Tensor]:
        if isinstance(images, Tensor):
            return [images if images.shape[-1] == s else F.interpolate(images, size=(s, s), mode="bilinear",
                                                                       align_corners=False, antialias=True)
                    for s in self.sizes]
        return images

    def forward(self, images: Any, text: Tensor) -> Tensor:
        return torch.stack([net(x, text) for net, x in zip(self.nets, self.pyramid(images))], dim=1)


class AttnGAN(TextToImageGAN):
    """AttnGAN (see the module docstring).

    Args:
        image_shape: ``(3, S, S)`` of the last stage (256 in the paper), linked from the datamodule.
        vocab: linked from the datamodule.
        latent_dim: size of z (100).
        condition_dim: size of the conditioning-augmentation code (100).
        ngf: G's width at the attention stages (32; 16 ngf at 4x4).
        df_dim: each D's first-layer width (64).
        residual_blocks: per attention stage (2).
        damsm_weight: lambda of L_DAMSM (5 for CUB; 50 for COCO).
        kl_weight: weight of the conditioning-augmentation KL term, a mean over batch and dimensions (1,
            as in the code's trainer: errG_total += KL_loss(mu, logvar)).
        gammas: DAMSM's (gamma1, gamma2, gamma3) for L_DAMSM (4, 5, 10).
        text_dim, word_embedding_dim, text_encoder, damsm_ckpt, max_length, caption_bank: of `TextToImageGAN`.
        weight_init: ``orthogonal`` (the code's ``weights_init``), ``normal`` or ``pytorch``: `authors_weight_init`.
        **kwargs: training options of `AdversarialModel` (paper: Adam 2e-4, betas (0.5, 0.999)). With
            ``ema_decay`` the moving average of G is the code's (trainer.py: 0.999 per G step from the
            initial weights, no warm-up; BatchNorm statistics are the live G's), and it is what is
            sampled and evaluated (the code saves and tests ``avg_param_G``).

    Example:
        >>> vocab = ["<pad>", "<unk>", "a", "red", "bird"]
        >>> model = AttnGAN(**AttnGAN.tiny(), vocab=vocab).eval()
        >>> model.sample(2, condition="a red bird").shape
        torch.Size([2, 3, 32, 32])
    """

    refused_options = {"feature_matching": "its discriminators have no features()",
                       "penalty": "its discriminators judge three stages' images at once"}

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 256, 256),
        vocab: Optional[Sequence[str]] = None,
        latent_dim: int = 100,
        condition_dim: int = 100,
        ngf: int = 32,
        df_dim: int = 64,
        residual_blocks: int = 2,
        damsm_weight: float = 5.0,
        kl_weight: float = 1.0,
        gammas: tuple[float, float, float] = (4.0, 5.0, 10.0),
        weight_init: Literal["normal", "orthogonal", "pytorch"] = "orthogonal",
        **kwargs: Any,
    ) -> None:
        if image_shape[0] != 3 or image_shape[1] != image_shape[2]:
            raise InvalidValue(f"AttnGAN makes square RGB images, got image_shape {tuple(image_shape)}")
        super().__init__(image_shape, vocab, latent_dim, **kwargs)  # text options in kwargs; hparams saved there
        self.damsm_weight, self.kl_weight, self.gammas = damsm_weight, kl_weight, tuple(gammas)
        size = self.image_shape[1]
        self.build(*authors_weight_init(weight_init, AttentionalGenerator(size, latent_dim, self.text_dim, condition_dim, ngf,
                                                                         residual_blocks),
                                        MultiScaleDiscriminator(size, self.text_dim, df_dim)))
        # The frozen DAMSM image encoder for L_DAMSM: in a tuple, so it is not a submodule (not in
        # checkpoints, not in an optimizer); loaded when fitting starts.
        self._image_encoder: tuple[nn.Module, ...] = ()

    # -- the DAMSM image encoder ----------------------------------------------------------------
    def load_text_encoder(self) -> Optional[Any]:
        damsm = super().load_text_encoder()
        if damsm is None:
            warnings.warn("AttnGAN without damsm_ckpt: the DAMSM term of G's loss is left out", stacklevel=2)
            return None
        self._image_encoder = (damsm.image_encoder.requires_grad_(False).eval(),)
        return damsm

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self._image_encoder:
            self._image_encoder[0].to(self.device)

    # -- G and the losses -----------------------------------------------------------------------
    def _text(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        words, sentence = self.encode_text(batch["tokens"], batch["lengths"])
        return words, sentence

    def generate(self, batch: dict[str, Any], generator: Optional[torch.Generator] = None) -> tuple[Tensor, ...]:
        """The three stages' fakes for the batch's captions."""
        words, sentence = self._text(batch)
        z = self.sample_latent(sentence.shape[0], generator)
        return self.generator(z, sentence, words, batch["lengths"], generator)[0]

    def heads(self) -> dict[str, Head]:
        """Each stage's D scores the pair (conditional) and the image alone (unconditional)."""
        return {f"stage{k}_{kind}": Head("d", (slice(None), k, column), matching=kind == "cond")
                for k in range(3) for column, kind in enumerate(("cond", "uncond"))}

    def ema_beta(self, micro_batches: list[dict[str, Tensor]]) -> float:
        """The code's average of G: a constant decay from the first G step (no warm-up ramp)."""
        return 0.0 if self.iteration < self.ema_start else float(self.ema_decay)

    def discriminator_term(self, outputs: dict[str, Outputs]) -> Tensor:
        """Sum over the stages of the code's matching-aware loss with unconditional heads (`matching_aware_term`)."""
        return total(matching_aware_term(self.d_loss, [outputs[f"stage{k}_cond"], outputs[f"stage{k}_uncond"]]) for k in range(3))

    def generator_extras(self, batch: dict[str, Any], fake: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 3 beside the adversarial terms of every head: KL + lambda L_DAMSM(final image)."""
        words, sentence = self._text(batch)
        kl = kl_to_standard_normal(*self.generator.ca.encode(sentence))
        logs = {"train/kl": kl.detach()}
        loss = self.kl_weight * kl
        if self._image_encoder and self.damsm_weight > 0:
            regions, global_ = self._image_encoder[0](fake[-1])
            word_loss, sentence_loss = damsm_loss(words, sentence, batch["lengths"], regions, global_, self.gammas,
                                                  batch.get("label"))
            loss = loss + self.damsm_weight * (word_loss + sentence_loss)
            logs.update({"train/damsm_word": word_loss.detach(), "train/damsm_sentence": sentence_loss.detach()})
        return loss, logs

    @torch.no_grad()
    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` final-stage images for captions (see `TextToImageGAN`), ``(n, 3, S, S)`` in [-1, 1]."""
        tokens, lengths = self.caption_tokens(n, condition, generator)
        words, sentence = self.encode_text(tokens, lengths)
        return self.sampling_generator(self.sample_latent(n, generator), sentence, words, lengths, generator)[0][-1]

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size AttnGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(3, 32, 32), ngf=4, df_dim=4, condition_dim=8, latent_dim=8, text_dim=16,
                    word_embedding_dim=8, damsm_ckpt=None)
