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
- **Perceptual path length** (Sec. 4.2, Eq. 2-3) through torchmetrics' `PerceptualPathLength`,
  LPIPS on VGG16 features. The VGG16 weights cannot be downloaded offline; without them in the
  torch hub cache the command stops with a message saying which file to fetch and where to put it.

Commands::

    genmodels style-mix --ckpt last.ckpt --rows 0 1 2 --cols 10 11 12 13 --styles coarse --out mix.png
    genmodels truncation-grid --ckpt last.ckpt --seeds 0 1 2 3 --psi -1 -0.5 0 0.5 0.7 1 --out trunc.png
    genmodels ppl --ckpt last.ckpt --space w --num-samples 10000
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from genmodels.apps.generation import decode_codes, require_latent_space
from genmodels.apps.latent import LatentSpace, seeded_generator, slerp
from genmodels.protocols import StyleBased

__all__ = [
    "style_layer_ranges", "style_mixing_grid", "truncation_grid", "z_interpolation_frames", "perceptual_path_length",
    "vgg16_weights_path",
]

Styles = Literal["coarse", "middle", "fine"]


def _w_space(model: Any, what: str) -> LatentSpace:
    space = require_latent_space(model, what)
    if space.kind != "w" or not isinstance(model, StyleBased):
        raise ValueError(f"{what} needs a style-based generator (StyleGAN, StyleGAN2); {type(model).__name__} has no per-layer styles")
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
        raise ValueError(f"a {model.image_shape[1]}x{model.image_shape[1]} model has no {styles} layers")
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


class _PathGenerator(nn.Module):
    """torchmetrics' generator interface: ``sample(n)`` latents, ``forward(latents)`` images in [0, 255]."""

    def __init__(self, model: Any, space: LatentSpace, kind: str, seed: int) -> None:
        super().__init__()
        self.__dict__["model"], self.__dict__["space"] = model, space
        self.kind, self.rng = kind, seeded_generator(seed, space.device)

    def sample(self, n: int) -> Tensor:
        z = self.space.prior(n, self.rng)
        return z if self.kind == "z" else self.space.to_codes(z)

    def forward(self, latents: Tensor) -> Tensor:
        codes = self.space.to_codes(latents) if self.kind == "z" else latents
        images = self.space.decode(codes)
        images = images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images  # LPIPS takes RGB
        return (images.float().clamp(-1, 1) + 1) * 127.5


def perceptual_path_length(
    model: Any,
    space_kind: Literal["z", "w"] = "w",
    num_samples: int = 10_000,
    epsilon: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
    sim_net: Optional[nn.Module] = None,
) -> dict[str, float]:
    """PPL (mean, std) between the path ends t and t + epsilon; lerp in W, slerp in Z (Sec. 4.2).

    ``sim_net`` replaces LPIPS-VGG16 (tests); otherwise the VGG16 weights must be in the hub cache.
    """
    from torchmetrics.image import PerceptualPathLength

    space = _w_space(model, "PPL")
    if sim_net is None and not vgg16_weights_path().is_file():
        raise FileNotFoundError(
            f"PPL needs the LPIPS backbone: torchvision's VGG16 ImageNet weights at {vgg16_weights_path()} "
            "(not downloaded automatically). On a machine with internet run "
            "`python -c \"import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')\"` and copy the file "
            "from its torch hub cache to that path (or set TORCH_HOME)"
        )
    metric = PerceptualPathLength(
        num_samples=num_samples, batch_size=batch_size, epsilon=epsilon, interpolation_method="lerp" if space_kind == "w" else "slerp_any",
        resize=64, sim_net=sim_net if sim_net is not None else "vgg",
    )
    metric.update(_PathGenerator(model, space, space_kind, seed))
    with torch.no_grad():
        mean, std, _ = metric.compute()
    return {f"ppl_{space_kind}": float(mean), f"ppl_{space_kind}_std": float(std), "num_samples": num_samples, "epsilon": epsilon}
