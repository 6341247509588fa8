"""StackGAN: text to photo-realistic images in two stages (Zhang et al. 2017, arXiv:1612.03242).

Stage I (Sec. 3.3) sketches a low-resolution image (64x64) from the caption: conditioning
augmentation (Sec. 3.2) turns the text embedding t into c ~ N(mu(t), sigma(t)^2), the generator
maps [c, z] through a fully connected layer to 4x4 features (8 gf_dim = 1024 channels) and upsampling blocks
(nearest-neighbour x2, 3x3 convolution, BatchNorm, ReLU) to the image; the discriminator
downsamples the image to 4x4 (4x4 stride-2 convolutions, BatchNorm, LeakyReLU), concatenates the
condition replicated spatially, and scores the pair with a 3x3 convolution (BatchNorm, LeakyReLU)
and a 4x4 convolution. Stage II (Sec. 3.4) takes the stage-I image s0 and a new c (its own
conditioning augmentation; no z): a downsampling encoder to 16x16, the replicated c concatenated,
residual blocks, and upsampling blocks to 256x256; its discriminator has more downsampling
layers and, beside the conditional score, an unconditional one (real vs fake, text ignored).
Stage II trains with the stage-I generator frozen (loaded from ``stage1_ckpt``).

Objective (Eq. 3-6): the matching-aware discriminator of `TextToImageGAN` (real/right text, fake/
right text, real/wrong text), and for G the adversarial loss plus lambda * D_KL(N(mu, sigma^2) ||
N(0, I)). Adam 2e-4 for both players, beta1 0.5 (Sec. 4).

Where the paper and the authors' code (hanzhanggit/StackGAN-Pytorch: code/model.py, code/trainer.py,
code/miscc/utils.py, code/miscc/config.py) differ, this follows the code:

- the KL term is the mean over batch AND dimensions (KL_loss), weighted by TRAIN.COEFF.KL = 2
  (the paper: a sum over dimensions, lambda = 1);
- conditioning augmentation is a fully connected layer followed by a ReLU (CA_NET);
- D is conditioned on the detached conditioning-augmentation mean mu(t) of G (the code passes
  ``mu`` to compute_discriminator_loss / compute_generator_loss), not on a compressed t;
- stage II's D has an unconditional head (get_uncond_logits), with the code's averaging:
  L_D = [A(r_c) + A(r_u)] / 2 + [B(f_c) + B(f_u) + B(w_c)] / 3, L_G = L_c + L_u
  (`genmodels.gans.text_to_image.matching_aware_d_loss`); stage I's D has none (STAGE1_D).

Two data features of the TF StackGAN (hanzhanggit/StackGAN misc/datasets.py, the code whose
schedule the CUB and Oxford-102 configs follow) come from `datamodules.text_image.TextImageDataModule`
and are read here: with ``captions_per_embedding: 4`` an image's text embedding is the mean of 4
of its captions' sentence embeddings (TRAIN.NUM_EMBEDDING), and with ``wrong_images: other_class``
D's mismatched pair is (an image of another class, the real image's text) instead of StackGAN-Pytorch's
(real image, the batch's texts rolled by one).

Differences from the paper: the text embedding is the sentence feature of AttnGAN's DAMSM text
encoder (Xu et al. 2018; `genmodels.text.damsm`), as StackGAN-v2 and later work do, instead of the
char-CNN-RNN embeddings of Reed et al. (not trainable here); the learning-rate halving every 100
epochs is the base's ``lr_schedule`` option; training images are flipped (``random_flip``) but not
randomly cropped.
Not implemented: StackGAN-v2's tree of generators and its unconditional loss terms.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from genmodels.checkpoints import CheckpointError, load_checkpoint_safely
from genmodels.conditioning import ConditionError
from genmodels.errors import InvalidValue
from genmodels.gans.adversarial import Head, Judged
from genmodels.gans.text_to_image import ConditioningAugmentation, TextToImageGAN, authors_weight_init, kl_to_standard_normal

__all__ = ["StackGAN", "StageIGenerator", "StageIIGenerator", "StackGANDiscriminator"]


def _upsample(cin: int, cout: int) -> nn.Sequential:
    """Nearest-neighbour x2, 3x3 convolution, BatchNorm, ReLU (the paper's upsampling block)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _upsampling_to_image(channels: int, doublings: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Both stages' generator ends: ``doublings`` upsampling blocks halving the width (8 at least),
    then a 3x3 convolution to RGB and tanh."""
    blocks = []
    for _ in range(doublings):
        blocks.append(_upsample(channels, max(channels // 2, 8)))
        channels = max(channels // 2, 8)
    return nn.Sequential(*blocks), nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1, bias=False), nn.Tanh())


def _downsample(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    """4x4 stride-2 convolution, BatchNorm (not on the first layer), LeakyReLU 0.2."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))


def _doublings(start: int, end: int, what: str) -> int:
    steps = math.log2(end / start)
    if steps < 1 or steps != int(steps):
        raise InvalidValue(f"{what}: {end} must be a power-of-two multiple of {start}")
    return int(steps)


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the input, then ReLU (stage II's residual blocks)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class StageIGenerator(nn.Module):
    """[c, z] -> 4x4 x (8 gf_dim) -> upsampling blocks -> tanh image of side ``image_size``."""

    def __init__(self, image_size: int, text_dim: int, condition_dim: int, latent_dim: int, gf_dim: int) -> None:
        super().__init__()
        self.ca = ConditioningAugmentation(text_dim, condition_dim, "relu")
        channels = 8 * gf_dim
        self.fc = nn.Sequential(nn.Linear(condition_dim + latent_dim, channels * 16, bias=False),
                                nn.BatchNorm1d(channels * 16), nn.ReLU(inplace=True))
        self.up, self.to_image = _upsampling_to_image(channels, _doublings(4, image_size, "StackGAN stage-I image size"))

    def forward(self, z: Tensor, text: Tensor, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor, Tensor]:
        """-> (image, mu, log sigma^2)."""
        c, mu, logvar = self.ca(text, generator)
        h = self.fc(torch.cat([c, z], dim=1)).view(z.shape[0], -1, 4, 4)
        return self.to_image(self.up(h)), mu, logvar


class StageIIGenerator(nn.Module):
    """(s0, t) -> encoder to 16x16, [features, c] -> residual blocks -> upsampling to ``image_size``."""

    def __init__(self, image_size: int, stage1_size: int, text_dim: int, condition_dim: int, gf_dim: int,
                 residual_blocks: int = 4) -> None:
        super().__init__()
        self.ca = ConditioningAugmentation(text_dim, condition_dim, "relu")
        downs = _doublings(16, stage1_size, "StackGAN stage-I size (>= 16)") if stage1_size > 16 else 0
        layers: list[nn.Module] = [nn.Conv2d(3, gf_dim, 3, 1, 1, bias=False), nn.ReLU(inplace=True)]
        channels = gf_dim
        for _ in range(downs):
            layers += [nn.Conv2d(channels, 2 * channels, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * channels), nn.ReLU(inplace=True)]
            channels *= 2
        self.encode = nn.Sequential(*layers)
        self.joint = nn.Sequential(nn.Conv2d(channels + condition_dim, channels, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.residual = nn.Sequential(*[ResidualBlock(channels) for _ in range(residual_blocks)])
        self.up, self.to_image = _upsampling_to_image(channels, _doublings(stage1_size // 2**downs, image_size, "StackGAN stage-II image size"))

    def forward(self, stage1: Tensor, text: Tensor, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor, Tensor]:
        c, mu, logvar = self.ca(text, generator)
        h = self.encode(stage1)
        h = self.joint(torch.cat([h, c[:, :, None, None].expand(-1, -1, *h.shape[2:])], dim=1))
        return self.to_image(self.up(self.residual(h))), mu, logvar


class StackGANDiscriminator(nn.Module):
    """Image -> 4x4 x (8 df_dim) code; [code, condition replicated] -> 3x3 conv -> 4x4 conv -> logit.

    Images larger than 64 get more downsampling layers (stage II), whose extra channels are brought
    back to 8 df_dim by 3x3 convolutions (STAGE2_D; AttnGAN's D_NET128/256 likewise). With
    ``unconditional`` a second head (a 4x4 convolution on the code alone) scores real vs fake
    whatever the text, and the output is (B, 2): [conditional, unconditional].
    """

    def __init__(self, image_size: int, condition_dim: int, df_dim: int, unconditional: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, cin = df_dim, 3
        for k in range(_doublings(4, image_size, "StackGAN discriminator image size")):
            layers.append(_downsample(cin, channels, norm=k > 0))
            cin, channels = channels, channels * 2
        while cin > 8 * df_dim:
            layers += [nn.Conv2d(cin, cin // 2, 3, 1, 1, bias=False), nn.BatchNorm2d(cin // 2), nn.LeakyReLU(0.2, inplace=True)]
            cin //= 2
        self.encode = nn.Sequential(*layers)
        self.joint = nn.Sequential(nn.Conv2d(cin + condition_dim, cin, 3, 1, 1, bias=False), nn.BatchNorm2d(cin),
                                   nn.LeakyReLU(0.2, inplace=True))
        self.logit = nn.Conv2d(cin, 1, 4, 4)
        self.unconditional_logit = nn.Conv2d(cin, 1, 4, 4) if unconditional else None

    def forward(self, images: Tensor, condition: Tensor) -> Tensor:
        """Scores of (image, condition) pairs: (B,), or (B, 2) with the unconditional head."""
        code = self.encode(images)
        c = condition.to(code.dtype)[:, :, None, None].expand(-1, -1, *code.shape[2:])
        conditional = self.logit(self.joint(torch.cat([code, c], dim=1))).flatten()
        if self.unconditional_logit is None:
            return conditional
        return torch.stack([conditional, self.unconditional_logit(code).flatten()], dim=1)


class StackGAN(TextToImageGAN):
    """StackGAN stage I (64x64) or stage II (256x256 from a frozen stage I); see the module docstring.

    Args:
        image_shape: ``(3, S, S)``, linked from the datamodule (S = 64 for stage I, 256 for stage II).
        vocab: linked from the datamodule.
        stage: 1 or 2.
        stage1_ckpt: stage II: the stage-I training checkpoint whose generator is loaded (frozen)
            when fitting starts. Its sizes (``gf_dim``, ``condition_dim``, ``latent_dim``,
            ``text_dim``) must equal this model's.
        stage1_size: stage II: the stage-I resolution (S / 4 in the paper: 64 for 256).
        latent_dim: size of z (100).
        condition_dim: N_g, the size of c (128).
        gf_dim: G's base width: stage I starts at 8 gf_dim channels (128 * 8 = 1024), stage II's
            encoder ends at 4 gf_dim (512).
        df_dim: D's first-layer width (64); the 4x4 code has 8 df_dim channels.
        kl_weight: weight of the KL term, a mean over batch and dimensions (2, the code's
            TRAIN.COEFF.KL; see the module docstring).
        residual_blocks: stage II's residual blocks (4 in the code of the paper's authors).
        text_dim, word_embedding_dim, text_encoder, damsm_ckpt, max_length, caption_bank: of `TextToImageGAN`.
        weight_init: ``normal`` (N(0, 0.02), the code's ``weights_init``), ``orthogonal`` or ``pytorch``:
            `authors_weight_init`.
        **kwargs: training options of `AdversarialModel` (loss, lr_g, lr_d, betas, ema_decay, ...).

    Example:
        >>> vocab = ["<pad>", "<unk>", "a", "red", "bird"]
        >>> model = StackGAN(**StackGAN.tiny(), vocab=vocab).eval()
        >>> model.sample(2, condition="a red bird").shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (3, 64, 64),
        vocab: Optional[Sequence[str]] = None,
        stage: Literal[1, 2] = 1,
        stage1_ckpt: Optional[str] = None,
        stage1_size: int = 64,
        latent_dim: int = 100,
        condition_dim: int = 128,
        gf_dim: int = 128,
        df_dim: int = 64,
        kl_weight: float = 2.0,
        residual_blocks: int = 4,
        weight_init: Literal["normal", "orthogonal", "pytorch"] = "normal",
        **kwargs: Any,
    ) -> None:
        if stage not in (1, 2):
            raise InvalidValue(f"stage must be 1 or 2, got {stage!r}")
        if image_shape[0] != 3 or image_shape[1] != image_shape[2]:
            raise InvalidValue(f"StackGAN makes square RGB images, got image_shape {tuple(image_shape)}")
        super().__init__(image_shape, vocab, latent_dim, **kwargs)  # text options in kwargs; hparams saved there
        self.stage, self.stage1_ckpt, self.kl_weight = stage, stage1_ckpt, kl_weight
        size = self.image_shape[1]
        if stage == 1:
            generator: nn.Module = StageIGenerator(size, self.text_dim, condition_dim, latent_dim, gf_dim)
            self.stage1: Optional[nn.Module] = None
        else:
            if size <= stage1_size:
                raise InvalidValue(f"stage 2 refines stage-I images of {stage1_size} px to larger ones; image size is {size}")
            self.stage1 = StageIGenerator(stage1_size, self.text_dim, condition_dim, latent_dim, gf_dim).requires_grad_(False)
            generator = StageIIGenerator(size, stage1_size, self.text_dim, condition_dim, gf_dim, residual_blocks)
        # As in the authors' code: no unconditional head in stage I (STAGE1_D), one in stage II (STAGE2_D).
        discriminator = StackGANDiscriminator(size, condition_dim, df_dim, unconditional=stage == 2)
        self.build(*authors_weight_init(weight_init, generator, discriminator))
        self._stage1_loaded = False

    # -- stage II: the frozen stage-I generator ----------------------------------------------------
    averages_caption_embeddings = True  # the datamodule's captions_per_embedding (TF NUM_EMBEDDING)
    judges_wrong_images = True  # the datamodule's wrong_images: other_class (TF misc/datasets.py)

    def train(self, mode: bool = True) -> "StackGAN":
        super().train(mode)
        if self.stage1 is not None:
            self.stage1.eval()  # frozen, BatchNorm statistics included
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.stage1 is not None and not self._stage1_loaded:
            self.load_stage1()

    def load_stage1(self) -> None:
        """Load the generator (EMA if it has one) of the stage-I checkpoint into the frozen stage I."""
        if self.stage1_ckpt is None:
            raise ConditionError("StackGAN stage 2 needs stage1_ckpt: the checkpoint of a trained stage-I StackGAN "
                                 "(--model.init_args.stage1_ckpt runs/stackgan/cub/checkpoints/last.ckpt)")
        checkpoint = load_checkpoint_safely(self.stage1_ckpt)
        state = checkpoint.get("state_dict", {})
        prefix = "generator_ema." if any(k.startswith("generator_ema.") for k in state) else "generator."
        weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if checkpoint.get("hyper_parameters", {}).get("stage", 1) != 1 or not weights:
            raise CheckpointError(f"{self.stage1_ckpt} is not a stage-I StackGAN checkpoint")
        try:
            self.stage1.load_state_dict(weights)
        except RuntimeError as err:
            raise CheckpointError(f"the stage-I generator of {self.stage1_ckpt} has other sizes than this model's "
                                  f"(gf_dim, condition_dim, latent_dim, text_dim, stage1_size must match): {err}") from None
        # The text encoder must be the one stage I was trained with.
        encoder = {k[len("text_encoder."):]: v for k, v in state.items() if k.startswith("text_encoder.")}
        if encoder:
            self.text_encoder.load_state_dict(encoder)
        self._stage1_loaded = True

    # -- G ------------------------------------------------------------------------------------
    def synthesize(self, generator: nn.Module, text: Tensor, n: int, rng: Optional[torch.Generator]) -> tuple[Tensor, Tensor, Tensor]:
        """(image, mu, log sigma^2) of ``generator`` (stage I or II) for sentence embeddings ``text``."""
        z = self.sample_latent(n, rng)
        if self.stage1 is None:
            return generator(z, text, rng)
        with torch.no_grad():
            s0 = self.stage1.eval()(z, text, rng)[0]  # frozen, BatchNorm statistics included
        return generator(s0, text, rng)

    def generate(self, batch: dict[str, Any], generator: Optional[torch.Generator] = None) -> Tensor:
        """Fakes for the batch's captions."""
        text = self.condition(batch)
        return self.synthesize(self.generator, text, text.shape[0], generator)[0]

    def judged(self, batch: dict[str, Any], fake: Tensor) -> dict[str, Judged]:
        """D's pairs conditioned, as in the authors' code, on G's detached conditioning mean mu(t).

        Mismatched pairs: (real image, the text rolled by one) as StackGAN-Pytorch, or, when the
        batch has ``wrong_image`` (the datamodule's ``wrong_images: other_class``, the TF code),
        (wrong image, the real image's text), added by `judge`.
        """
        mu = self.generator.ca.encode(self.condition(batch))[0].detach()
        return {"d": Judged(batch["image"], fake, mu, None if "wrong_image" in batch else mu.roll(1, dims=0))}

    def judge(self, batch: dict[str, Any], fake: Any, real: bool = True) -> dict[str, Any]:
        """The base's outputs, plus D(wrong image, mu(t)) on the matching heads when the batch has wrong images."""
        outputs = super().judge(batch, fake, real)
        if real and "wrong_image" in batch:
            mu = self.generator.ca.encode(self.condition(batch))[0].detach()
            wrong = self.discriminate(batch["wrong_image"], mu, "d")
            for name, head in self.heads().items():
                if head.matching:
                    outputs[name].wrong = head.select(wrong)
        return outputs

    def heads(self) -> dict[str, Head]:
        """Stage II's D scores the pair and, in a second column, the image alone (unconditional)."""
        if self.discriminator.unconditional_logit is None:
            return {"d": Head("d")}
        return {"cond": Head("d", (slice(None), 0)), "uncond": Head("d", (slice(None), 1), matching=False)}

    def generator_extras(self, batch: dict[str, Any], fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 4 / 6: kl_weight * the mean KL (the code's KL_loss) beside the adversarial loss."""
        # mu and sigma are a deterministic function of the text: recomputed here rather than kept
        # from `generate`, so each micro-batch's KL term goes with its own fakes.
        kl = kl_to_standard_normal(*self.generator.ca.encode(self.condition(batch)))
        return self.kl_weight * kl, {"train/kl": kl.detach()}

    @torch.no_grad()
    def sample(self, n: int, *, condition: Any = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` images for captions (see `TextToImageGAN`), ``(n, 3, S, S)`` in [-1, 1]."""
        tokens, lengths = self.caption_tokens(n, condition, generator)
        text = self.encode_text(tokens, lengths)[1]
        return self.synthesize(self.sampling_generator, text, n, generator)[0]

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size StackGAN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(3, 16, 16), gf_dim=4, df_dim=4, condition_dim=8, latent_dim=8, text_dim=16,
                    word_embedding_dim=8, damsm_ckpt=None)
