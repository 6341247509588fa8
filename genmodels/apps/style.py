"""Tools for style-based generators (StyleGAN, StyleGAN2): mixing grid, truncation sweep, Z/W paths, PPL.

- **Style mixing** (Karras et al. 2019, arXiv:1812.04948, Sec. 3.1, Fig. 3): row image A (seed
  ``row_seeds[i]``) takes the styles of column image B (``col_seeds[j]``) at the *coarse*
  (4x4-8x8), *middle* (16x16-32x32) or *fine* (64x64 and up) layers and keeps its own elsewhere.
  Models below 64x64 have no fine layers in that sense; their layers are then split in thirds.
  The grid's first row holds the B images, its first column the A images (top-left is blank).
- **Truncation sweep** (Sec. 2, App. B, Fig. 8): one row per seed, one column per psi,
  w' = w_avg + psi (w - w_avg); psi = 0 is the average image, negative psi its "opposite".
- **Interpolation in Z or W**: Z paths are spherical in Z then mapped; W paths are linear in W
  (``genmodels interpolate --space z|w``; the default is W for models that have one).
- **Perceptual path length** (Sec. 4.2, Eq. 2-3) with the authors' protocol (NVlabs/stylegan
  metrics/perceptual_path_length.py and metric_base.py for StyleGAN; NVlabs/stylegan2-ada-pytorch
  metrics/perceptual_path_length.py and metric_main.py for StyleGAN2): pairs of latents, t ~ U[0, 1)
  (``full``) or t = 0 (``end``), slerp in Z / lerp in W between t and t + epsilon (1e-4),
  optional face crop (``crop``: rows 3/8-7/8, columns 2/8-6/8, what the authors use for FFHQ),
  box-filter downsampling to 256 px only for larger images, LPIPS (VGG16) distance / epsilon^2,
  the values outside the 1st-99th percentiles dropped. Noise (``noise``): both codes draw new
  noise for every minibatch, one image per layer shared by all images of the minibatch, so both
  images of a pair see the same noise (v1 re-runs its noise variables' initializers, ada-pytorch
  refills its ``noise_const`` buffers): ``per_batch``, the default, does that from a generator
  seeded by ``seed`` (a stream of its own, so both modes see the same pairs); ``const`` keeps the
  model's fixed noise images (genmodels' PPL before issue #26). Samples: 100,000 pairs for StyleGAN (v1 metric_base.py), 50,000 for StyleGAN2
  (metric_main.py); ``num_samples=None`` picks by the model's ``architecture``. The result is
  named as stylegan2-ada's metrics: ``ppl_<space><sampling>``
  with the crop (``ppl_zfull``, ``ppl_wend``, ...), ``ppl2_<space><sampling>`` without it
  (``ppl2_wend``, the StyleGAN2 paper's PPL). LPIPS is torchmetrics' VGG16 LPIPS (Zhang et al. 2018), the same network
  as the authors' ``vgg16_zhang_perceptual``. The VGG16 weights cannot be downloaded offline;
  without them in the torch hub cache the command stops with a message saying which file to
  fetch and where to put it.

Commands::

    genmodels style-mix --ckpt last.ckpt --rows 0 1 2 --cols 10 11 12 13 --styles coarse --out mix.png
    genmodels truncation-grid --ckpt last.ckpt --seeds 0 1 2 3 --psi -1 -0.5 0 0.5 0.7 1 --out trunc.png
    genmodels ppl --ckpt last.ckpt --space w --sampling end --noise per_batch
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from genmodels.apps.generation import decode_codes, require_latent_space
from genmodels.apps.latent import LatentSpace, seeded_generator, slerp
from genmodels.compat import lpips_network
from genmodels.protocols import StyleBased
from genmodels.errors import InvalidValue, MissingFile

__all__ = [
    "style_layer_ranges", "style_mixing_grid", "truncation_grid", "z_interpolation_frames", "perceptual_path_length",
    "unit_slerp", "ppl_images", "within_percentiles", "vgg16_weights_path", "ppl_num_samples", "PPL_NOISE",
    "PPL_NOISE_SEED_OFFSET",
]

Styles = Literal["coarse", "middle", "fine"]


def _w_space(model: Any, what: str) -> LatentSpace:
    space = require_latent_space(model, what)
    if space.kind != "w" or not isinstance(model, StyleBased):
        raise InvalidValue(f"{what} needs a style-based generator (StyleGAN, StyleGAN2); {type(model).__name__} has no per-layer styles")
    return space


def style_layer_ranges(resolution: int) -> dict[str, range]:
    """Indices of the style inputs (two per resolution, from 4x4) that count as coarse, middle and fine."""
    num_ws = 2 * (resolution.bit_length() - 2)
    if resolution >= 64:
        return {"coarse": range(0, 4), "middle": range(4, 8), "fine": range(8, num_ws)}
    third = max(1, num_ws // 3)
    return {"coarse": range(0, third), "middle": range(third, 2 * third), "fine": range(2 * third, num_ws)}


def _ws_of_seeds(model: Any, space: LatentSpace, seeds: Sequence[int], truncation: Optional[float]) -> Tensor:
    """Per-layer styles (n, num_ws, d) of one image per seed."""
    w = torch.cat([space.codes(1, seed, None, truncation) for seed in seeds])
    return w[:, None].expand(-1, model.num_ws, -1).clone()


@torch.no_grad()
def style_mixing_grid(
    model: Any, row_seeds: Sequence[int], col_seeds: Sequence[int], styles: Styles = "coarse", truncation: Optional[float] = None
) -> Tensor:
    """Images ``(1 + rows) * (1 + cols)`` in grid order (the blank corner is -1, black)."""
    space = _w_space(model, "style mixing")
    layers = style_layer_ranges(model.image_shape[1])[styles]
    if len(layers) == 0:
        raise InvalidValue(f"a {model.image_shape[1]}x{model.image_shape[1]} model has no {styles} layers")
    rows, cols = _ws_of_seeds(model, space, row_seeds, truncation), _ws_of_seeds(model, space, col_seeds, truncation)
    mixed = rows[:, None].repeat(1, len(col_seeds), 1, 1)  # (R, C, num_ws, d): A's styles ...
    mixed[:, :, list(layers)] = cols[None, :, list(layers)]  # ... with B's at the chosen layers
    row_images, col_images = decode_codes(space, rows), decode_codes(space, cols)
    cells = decode_codes(space, mixed.flatten(0, 1)).view(len(row_seeds), len(col_seeds), *row_images.shape[1:])
    corner = -torch.ones_like(row_images[:1])
    top = torch.cat([corner, col_images])
    body = torch.cat([torch.cat([row_images[i : i + 1], cells[i]]) for i in range(len(row_seeds))])
    return torch.cat([top, body])


@torch.no_grad()
def truncation_grid(model: Any, seeds: Sequence[int], psis: Sequence[float]) -> Tensor:
    """``len(seeds) * len(psis)`` images, row-major (one row per seed)."""
    space = _w_space(model, "the truncation grid")
    w = torch.cat([space.codes(1, seed) for seed in seeds])
    codes = torch.stack([model.truncate(w, float(psi)) for psi in psis], dim=1)  # (S, P, d)
    return decode_codes(space, codes.flatten(0, 1))


@torch.no_grad()
def z_interpolation_frames(model: Any, seed_a: int, seed_b: int, steps: int, n: int = 1, truncation: Optional[float] = None) -> Tensor:
    """Frames ``(steps, n, C, H, W)`` along spherical paths in Z, mapped to W (then truncated) and decoded."""
    space = _w_space(model, "interpolation in Z")
    z_a = space.prior(n, seeded_generator(seed_a, space.device))
    z_b = space.prior(n, seeded_generator(seed_b, space.device))
    path = torch.cat([slerp(z_a, z_b, t) for t in torch.linspace(0, 1, steps).tolist()])
    codes = space.to_codes(path, None, truncation)
    return decode_codes(space, codes).view(steps, n, *model.image_shape)


# ---------------------------------------------------------------------------------------------
# Perceptual path length (torchmetrics)


def vgg16_weights_path() -> Path:
    """Where torchvision looks for the ImageNet VGG16 weights that LPIPS needs (the torch hub cache)."""
    from torchvision.models import VGG16_Weights

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_Weights.IMAGENET1K_V1.url).name


def unit_slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """The authors' slerp for PPL: between the unit vectors of ``a`` and ``b`` at per-row ``t``, normalized."""
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    cos = (a * b).sum(1, keepdim=True).clamp(-1, 1)
    angle = t[:, None] * cos.acos()
    orthogonal = b - cos * a
    orthogonal = orthogonal / orthogonal.norm(dim=1, keepdim=True)
    out = a * angle.cos() + orthogonal * angle.sin()
    return out / out.norm(dim=1, keepdim=True)


def ppl_images(images: Tensor, crop: bool) -> Tensor:
    """What the distance sees: the face crop (optional), 256 px at most (box filter), RGB, in [-1, 1]."""
    if crop:
        c = images.shape[2] // 8
        images = images[:, :, 3 * c : 7 * c, 2 * c : 6 * c]
    if images.shape[2] > 256:
        factor = images.shape[2] // 256
        images = torch.nn.functional.avg_pool2d(images, factor)
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images  # LPIPS takes RGB


def within_percentiles(values: Tensor, low: float = 1.0, high: float = 99.0) -> Tensor:
    """The values between the ``low``-th percentile (rounded down) and the ``high``-th (rounded up), inclusive."""
    lo = torch.quantile(values, low / 100, interpolation="lower")
    hi = torch.quantile(values, high / 100, interpolation="higher")
    return values[(values >= lo) & (values <= hi)]


def _lpips_vgg16() -> nn.Module:
    """torchmetrics' LPIPS with VGG16 features and no resizing: per-pair distances (N, 1, 1, 1)."""
    return lpips_network("vgg")


def ppl_metric_name(space_kind: str, sampling: str, crop: bool) -> str:
    """stylegan2-ada's names: ``ppl_wend`` etc. are cropped; ``ppl2_wend`` is the uncropped one."""
    return f"{'ppl' if crop else 'ppl2'}_{space_kind}{sampling}"


PplNoise = Literal["const", "per_batch"]
PPL_NOISE: tuple[str, ...] = ("per_batch", "const")
# The authors' pair counts: NVlabs/stylegan metric_base.py (ppl_* num_samples=100000) and
# stylegan2-ada-pytorch metric_main.py (compute_ppl(num_samples=50000)).
PPL_SAMPLES = {"stylegan": 100_000, "stylegan2": 50_000}
# The per-batch noise comes from a generator of its own, seeded seed + this: the pairs and t are
# then the same draws with either noise, so const vs per_batch differ by the noise alone.
PPL_NOISE_SEED_OFFSET = 2**32


def ppl_num_samples(model: Any) -> int:
    """The authors' pair count for the model's architecture (a style-based model without one: StyleGAN2's)."""
    return PPL_SAMPLES.get(getattr(model, "architecture", "stylegan2"), PPL_SAMPLES["stylegan2"])


def _ppl_synthesis(model: Any, codes: Tensor, noise: PplNoise, noise_rng: torch.Generator) -> Tensor:
    """Both images of every pair from one synthesis call, so ``per_batch`` gives them the same noise."""
    if noise == "const":
        return model.synthesis(codes)  # the model's fixed noise images, as before issue #26
    return model.synthesis(codes, noise_mode="per_batch", generator=noise_rng)


@torch.no_grad()
def perceptual_path_length(
    model: Any,
    space_kind: Literal["z", "w"] = "w",
    num_samples: Optional[int] = None,
    epsilon: float = 1e-4,
    sampling: Literal["full", "end"] = "end",
    crop: bool = False,
    batch_size: int = 64,
    seed: int = 0,
    sim_net: Optional[nn.Module] = None,
    noise: PplNoise = "per_batch",
) -> dict[str, Any]:
    """PPL with the authors' protocol (see the module docstring); ``sim_net`` replaces LPIPS (tests).

    ``num_samples=None``: 100,000 pairs for a StyleGAN (v1) model, 50,000 for StyleGAN2, as their
    authors' code. ``noise``: ``per_batch`` (both authors' codes: one fresh noise draw per batch,
    shared by both images of every pair, from a generator seeded by ``seed``) or ``const`` (the
    model's fixed noise). A draw serves ``batch_size`` pairs here, 16 in v1 and 2 per GPU in
    ada-pytorch: each pair still sees one standard-normal draw, so every distance has the same
    distribution whatever the batch size.
    Returns ``{name: mean of the filtered distances, "<name>_std": their std,
    "num_samples", "epsilon", "sampling", "crop", "noise"}``.
    """
    space = _w_space(model, "PPL")
    if sampling not in ("full", "end"):
        raise InvalidValue(f"sampling must be 'full' or 'end', got {sampling!r}")
    if noise not in PPL_NOISE:
        # Per-image random noise would differ between the two images of a pair: the distance / eps^2
        # would then measure the noise, not the path.
        raise InvalidValue(f"noise must be 'per_batch' or 'const', got {noise!r}")
    num_samples = ppl_num_samples(model) if num_samples is None else num_samples
    if sim_net is None and not vgg16_weights_path().is_file():
        raise MissingFile(
            f"PPL needs the LPIPS backbone: torchvision's VGG16 ImageNet weights at {vgg16_weights_path()} "
            "(not downloaded automatically). On a machine with internet run "
            "`python -c \"import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')\"` and copy the file "
            "from its torch hub cache to that path (or set TORCH_HOME)"
        )
    distance = (sim_net if sim_net is not None else _lpips_vgg16()).to(space.device)
    rng = seeded_generator(seed, space.device)
    noise_rng = torch.Generator(device=space.device).manual_seed(seed + PPL_NOISE_SEED_OFFSET)
    distances = []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z0, z1 = space.prior(n, rng), space.prior(n, rng)
        t = torch.rand(n, generator=rng, device=space.device) * (1.0 if sampling == "full" else 0.0)
        if space_kind == "z":
            codes = space.to_codes(torch.cat([unit_slerp(z0, z1, t), unit_slerp(z0, z1, t + epsilon)]))
        else:
            w0, w1 = space.to_codes(z0), space.to_codes(z1)
            t_w = t.view(-1, *([1] * (w0.dim() - 1)))
            codes = torch.cat([torch.lerp(w0, w1, t_w), torch.lerp(w0, w1, t_w + epsilon)])
        images = ppl_images(_ppl_synthesis(model, codes, noise, noise_rng).float().clamp(-1, 1), crop)
        a, b = images.chunk(2)
        distances.append(distance(a, b).flatten().float() / epsilon**2)
    kept = within_percentiles(torch.cat(distances))
    name = ppl_metric_name(space_kind, sampling, crop)
    return {name: float(kept.mean()), f"{name}_std": float(kept.std()), "num_samples": num_samples, "epsilon": epsilon,
            "sampling": sampling, "crop": crop, "noise": noise}

