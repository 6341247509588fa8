"""Differentiable augmentation of D's inputs for data-efficient GAN training.

Both methods apply one random transformation family T to every image D sees while training: real
and fake images in D's step, fakes in G's step (so G's gradient flows back through T), and the
inputs of D's gradient penalties. D then never sees an un-augmented image, and G is not pushed to
reproduce the augmentations (they "leak" only when T is not invertible in distribution).

- `DiffAugment`: Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training", arXiv:2006.10738; the ops of the paper and of its official code
  (mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py): ``color`` (brightness, saturation,
  contrast), ``translation`` (integer shifts up to 1/8 of the size, zero fill) and ``cutout`` (a
  zeroed square of half the size), each applied to every image.
- `AdaptiveAugment`: Karras et al. 2020, "Training Generative Adversarial Networks with Limited
  Data" (ADA), arXiv:2006.06676; the ``bgc`` pipeline of the official code
  (NVlabs/stylegan2-ada-pytorch, training/augment.py): pixel blitting (x-flip, 90-degree
  rotations, integer translation), general geometry (isotropic scaling, rotation, anisotropic
  scaling, fractional translation; resampled at 2x through the sym6 wavelet filter with
  reflection padding) and colour (brightness, contrast, luma flip, hue rotation, saturation),
  each op applied with probability p. p follows the overfitting heuristic
  r_t = E[sign(D(x_real))] toward a target (0.6), adjusted every 4 iterations by a step that lets
  p cross 0 -> 1 in 500k real images (training/training_loop.py).

Everything is batched tensor code on the images' device (no per-sample Python loops; ADA reads
one padding size back to the host per call, as the official code does): ADA's p is a device
scalar buffer (saved in checkpoints, so a resumed run
continues with the same p and the same partial statistics), and under DDP the sign statistics are
summed over ranks, so p is the same everywhere. Not implemented: ADA's image-space filtering,
additive noise and cutout ops (off in the official ``bgc`` config), and its fixed-p mode (p can
be set by hand through the ``p`` buffer).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.errors import InvalidValue
from genmodels.gans.losses import sum_over_ranks

__all__ = [
    "DiffAugment", "AdaptiveAugment", "make_augment", "DIFFAUGMENT_OPS",
    "rand_brightness", "rand_saturation", "rand_contrast", "translate", "cutout",
]


# -- DiffAugment ops --------------------------------------------------------------------------
# Each op takes its random draw as an argument, so the tests can fix it and compare values.


def _uniform(x: Tensor) -> Tensor:
    """One U[0, 1) draw per image, broadcastable to (B, C, H, W)."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def rand_brightness(x: Tensor, r: Optional[Tensor] = None) -> Tensor:
    """x + (r - 0.5), r ~ U[0, 1) per image: a brightness shift in [-0.5, 0.5)."""
    r = _uniform(x) if r is None else r
    return x + (r - 0.5)


def rand_saturation(x: Tensor, r: Optional[Tensor] = None) -> Tensor:
    """Scale each pixel's deviation from its channel mean by 2r, r ~ U[0, 1) (the code's ``rand_color``)."""
    r = _uniform(x) if r is None else r
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (2 * r) + mean


def rand_contrast(x: Tensor, r: Optional[Tensor] = None) -> Tensor:
    """Scale each image's deviation from its mean by r + 0.5, r ~ U[0, 1)."""
    r = _uniform(x) if r is None else r
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (r + 0.5) + mean


def translate(x: Tensor, shift: Tensor) -> Tensor:
    """out[b, :, i, j] = x[b, :, i + dy, j + dx], zero where i + dy or j + dx leaves the image.

    ``shift`` is (B, 2) integer (dy, dx) per image: the content moves by (-dy, -dx). One gather
    for the whole batch.
    """
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None] + shift[:, :1]  # (B, H)
    cols = torch.arange(w, device=x.device)[None] + shift[:, 1:]  # (B, W)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None]
    gathered = x[batch, :, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]  # (B, H, W, C)
    return gathered.permute(0, 3, 1, 2) * inside[:, None].to(x.dtype)


def rand_translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """`translate` by integer shifts drawn uniformly from [-round(ratio * size), round(ratio * size)] per axis."""
    # Rounded to the nearest pixel, as in the current official code (1/8 of 12 px is 2 px).
    max_dy, max_dx = int(x.shape[2] * ratio + 0.5), int(x.shape[3] * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (x.shape[0], 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (x.shape[0], 1), device=x.device)
    return translate(x, torch.cat([dy, dx], dim=1))


def cutout(x: Tensor, centre: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero a ``size`` (h, w) rectangle whose top-left corner is ``centre - size // 2`` (clipped to the image).

    ``centre`` is (B, 2) integer (row, column) per image.
    """
    _, _, h, w = x.shape
    top, left = centre[:, :1] - size[0] // 2, centre[:, 1:] - size[1] // 2
    rows = torch.arange(h, device=x.device)[None]
    cols = torch.arange(w, device=x.device)[None]
    in_rows = (rows >= top) & (rows < top + size[0])  # (B, H)
    in_cols = (cols >= left) & (cols < left + size[1])  # (B, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


def rand_cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """`cutout` of a (ratio * H, ratio * W) rectangle centred uniformly (as the official code draws it)."""
    size = (int(x.shape[2] * ratio + 0.5), int(x.shape[3] * ratio + 0.5))
    # The official range [0, size + (1 - s % 2)) lets an even-sized hole reach the far border.
    cy = torch.randint(0, x.shape[2] + (1 - size[0] % 2), (x.shape[0], 1), device=x.device)
    cx = torch.randint(0, x.shape[3] + (1 - size[1] % 2), (x.shape[0], 1), device=x.device)
    return cutout(x, torch.cat([cy, cx], dim=1), size)


#: policy name -> ops, in the official order.
DIFFAUGMENT_OPS = {
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
}


class DiffAugment(nn.Module):
    """T(x) of DiffAugment: the policy's ops, in order, on every image (no probability).

    Args:
        policy: comma-separated subset of ``color``, ``translation``, ``cutout`` (the paper's
            choice for CIFAR-10 and small datasets: all three).
    """

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        super().__init__()
        self.policy = [p.strip() for p in policy.split(",") if p.strip()]
        unknown = [p for p in self.policy if p not in DIFFAUGMENT_OPS]
        if unknown or not self.policy:
            raise InvalidValue(f"augment_policy {policy!r} is invalid: must be a comma-separated subset of {sorted(DIFFAUGMENT_OPS)}")

    def forward(self, x: Tensor) -> Tensor:
        for name in self.policy:
            for op in DIFFAUGMENT_OPS[name]:
                x = op(x)
        return x

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)!r}"


# -- ADA: homogeneous transformation matrices, one per image -----------------------------------


def _matrix(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """Stack per-image entries (tensors of shape (B,) or constants) into (B, n, m) matrices."""
    entries = [e if isinstance(e, Tensor) else torch.full_like(like, float(e)) for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(like.shape[0], len(rows), len(rows[0]))


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def translate3d(t: Tensor) -> Tensor:
    return _matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def scale3d(s: Tensor) -> Tensor:
    return _matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def rotate3d(axis: Tensor, theta: Tensor) -> Tensor:
    """Rotation by ``theta`` about the unit ``axis`` (Rodrigues), homogeneous 4x4."""
    x, y, z = axis[0], axis[1], axis[2]
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _matrix([
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
        [0, 0, 0, 1],
    ], theta)


#: Low-pass filter of the sym6 wavelet (Daubechies' symlets), used to resample at 2x.
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)


def _separable_filter(x: Tensor, taps: Tensor, pad0: int, pad1: int) -> Tensor:
    """Correlate each channel with ``taps`` along H and W after padding by (pad0, pad1) (negative crops)."""
    b, c, _, _ = x.shape
    x = F.pad(x, [max(pad0, 0), max(pad1, 0)] * 2)
    crop0, crop1 = max(-pad0, 0), max(-pad1, 0)
    x = x[:, :, crop0:x.shape[2] - crop1, crop0:x.shape[3] - crop1]
    x = x.reshape(b * c, 1, *x.shape[2:])
    k = taps.to(x.dtype)
    x = F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return x.reshape(b, c, *x.shape[2:])


def _reflection_margin(g_inv: Tensor, h: int, w: int, filter_pad: int) -> tuple[int, int, int, int]:
    """Reflection padding (x0, y0, x1, y1) that covers every transformed image corner plus the filter.

    Read back to the host once per call (as in the official code): padding sizes are Python
    ints, and padding by the bound (size - 1) on every call would cost up to 9x the pixels.
    """
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]], device=g_inv.device)
    moved = (g_inv @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # (xy, B * 4)
    margin = torch.cat([-moved, moved]).amax(dim=1)  # x0, y0, x1, y1
    margin = margin + torch.tensor([filter_pad * 2 - cx, filter_pad * 2 - cy] * 2, device=g_inv.device)
    margin = torch.minimum(margin.clamp(min=0), torch.tensor([w - 1, h - 1] * 2, device=g_inv.device))
    x0, y0, x1, y1 = (int(v) for v in margin.ceil().tolist())
    return x0, y0, x1, y1


def upsample2(x: Tensor, taps: Tensor) -> Tensor:
    """Zero-insertion 2x upsampling then the (flipped, gain-2 per axis) filter: size H -> 2H."""
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    n = taps.numel()
    return _separable_filter(up, taps.flip(0) * 2, (n + 1) // 2, (n - 2) // 2)


def downsample2(x: Tensor, taps: Tensor, crop: int) -> Tensor:
    """The filter (unflipped: the matched pair of `upsample2`), ``crop`` pixels off each side, then every 2nd pixel."""
    n = taps.numel()
    x = _separable_filter(x, taps, (n - 1) // 2 - crop, (n - 2) // 2 - crop)
    return x[:, :, ::2, ::2]


class AdaptiveAugment(nn.Module):
    """ADA's augmentation pipeline with its adaptive probability p.

    Each op is applied to an image with probability ``multiplier * p`` (multipliers are 1 for the
    ``bgc`` ops, 0 disables one); strengths are the official defaults. The op order, the blit and
    geometric ops composed into one inverse matrix per image and resampled once, and the colour
    ops composed into one 4x4 matrix per image, follow the official pipeline.

    Args:
        target: r_t the heuristic steers to (0.6).
        interval: iterations between adjustments of p (4).
        kimg: thousands of real images over which p may move by 1 (500).
        initial_p: p at the start (0).
        xflip ... saturation: per-op probability multipliers.
    """

    BLIT = ("xflip", "rotate90", "xint")
    GEOMETRY = ("scale", "rotate", "aniso", "xfrac")
    COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        initial_p: float = 0.0,
        xflip: float = 1.0, rotate90: float = 1.0, xint: float = 1.0,
        scale: float = 1.0, rotate: float = 1.0, aniso: float = 1.0, xfrac: float = 1.0,
        brightness: float = 1.0, contrast: float = 1.0, lumaflip: float = 1.0, hue: float = 1.0, saturation: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 < target < 1.0 or interval < 1 or kimg <= 0 or initial_p < 0:
            raise InvalidValue(f"ADA needs 0 < ada_target < 1, ada_interval >= 1, ada_kimg > 0; got {target}, {interval}, {kimg}")
        self.target, self.interval, self.kimg = target, interval, kimg
        self.multipliers = dict(
            xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso, xfrac=xfrac,
            brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue, saturation=saturation,
        )
        # Strengths (official defaults): integer translation up to 1/8 of the size; log2 std 0.2
        # for scaling; full-circle rotations; fractional translation std 1/8; brightness std 0.2;
        # log2 std 0.5 for contrast and 1 for saturation; full-circle hue rotation.
        self.xint_max, self.scale_std, self.aniso_std, self.xfrac_std = 0.125, 0.2, 0.2, 0.125
        self.brightness_std, self.contrast_std, self.saturation_std = 0.2, 0.5, 1.0
        self.register_buffer("p", torch.tensor(float(initial_p)))
        self.register_buffer("rt", torch.zeros(()))  # the last r_t used to adjust p (logged)
        # Sum of sign(D(real)) and number of outputs since the last adjustment (persisted, so a
        # resume in the middle of an interval adjusts exactly as an uninterrupted run).
        self.register_buffer("sign_sum", torch.zeros(()))
        self.register_buffer("sign_count", torch.zeros(()))
        self.register_buffer("sym6", torch.tensor(SYM6) / sum(SYM6))

    # -- the heuristic --------------------------------------------------------------------------
    @torch.no_grad()
    def observe(self, real_logits: Tensor) -> None:
        """Accumulate sign(D(x_real)) of one D step, summed over DDP ranks (so p is equal everywhere)."""
        stats = torch.stack([real_logits.detach().float().sign().sum(), torch.tensor(float(real_logits.numel()), device=real_logits.device)])
        stats = sum_over_ranks(stats)
        self.sign_sum += stats[0]
        self.sign_count += stats[1]

    @torch.no_grad()
    def adjust(self) -> None:
        """p <- max(p + sign(r_t - target) * N / (kimg * 1000), 0), N the real images seen since the last adjustment."""
        count = self.sign_count.clamp(min=1)
        self.rt.copy_(self.sign_sum / count)
        step = torch.sign(self.rt - self.target) * self.sign_count / (self.kimg * 1000)
        self.p.copy_((self.p + step).clamp(min=0))
        self.sign_sum.zero_()
        self.sign_count.zero_()

    # -- the pipeline -----------------------------------------------------------------------
    def _with_probability(self, op: str, value: Tensor, identity: float) -> Tensor:
        """``value`` for the images that draw the op (probability multiplier * p), ``identity`` elsewhere."""
        chosen = torch.rand(value.shape[0], device=value.device) < self.multipliers[op] * self.p
        return torch.where(chosen.view(-1, *([1] * (value.dim() - 1))), value, torch.full_like(value, identity))

    def _enabled(self, ops: tuple[str, ...]) -> bool:
        return any(self.multipliers[op] > 0 for op in ops)

    def geometry_matrix(self, b: int, h: int, w: int, device: torch.device) -> Tensor:
        """G_inv (B, 3, 3): output pixel (centred coordinates) -> input pixel, blit then general ops."""
        m = self.multipliers
        g = torch.eye(3, device=device).expand(b, 3, 3)
        zeros, ones = torch.zeros(b, device=device), torch.ones(b, device=device)
        if m["xflip"] > 0:
            i = self._with_probability("xflip", torch.floor(torch.rand(b, device=device) * 2), 0.0)
            g = g @ scale2d(1 - 2 * i, ones)
        if m["rotate90"] > 0:
            i = self._with_probability("rotate90", torch.floor(torch.rand(b, device=device) * 4), 0.0)
            g = g @ rotate2d(math.pi / 2 * i)
        if m["xint"] > 0:
            t = self._with_probability("xint", (torch.rand(b, 2, device=device) * 2 - 1) * self.xint_max, 0.0)
            g = g @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        if m["scale"] > 0:
            s = self._with_probability("scale", torch.exp2(torch.randn(b, device=device) * self.scale_std), 1.0)
            g = g @ scale2d(1 / s, 1 / s)
        # Rotation before and after the anisotropic scaling, each with p_rot such that
        # P(either) = multiplier * p.
        p_rot = 1 - torch.sqrt((1 - m["rotate"] * self.p).clamp(0, 1))
        if m["rotate"] > 0:
            theta = (torch.rand(b, device=device) * 2 - 1) * math.pi
            g = g @ rotate2d(torch.where(torch.rand(b, device=device) < p_rot, theta, zeros))
        if m["aniso"] > 0:
            s = self._with_probability("aniso", torch.exp2(torch.randn(b, device=device) * self.aniso_std), 1.0)
            g = g @ scale2d(1 / s, s)
        if m["rotate"] > 0:
            theta = (torch.rand(b, device=device) * 2 - 1) * math.pi
            g = g @ rotate2d(torch.where(torch.rand(b, device=device) < p_rot, theta, zeros))
        if m["xfrac"] > 0:
            t = self._with_probability("xfrac", torch.randn(b, 2, device=device) * self.xfrac_std, 0.0)
            g = g @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
        return g

    def resample(self, images: Tensor, g_inv: Tensor) -> Tensor:
        """Apply G_inv: reflect-pad, upsample 2x (sym6), bilinear grid_sample, filter and downsample back."""
        b, c, h, w = images.shape
        taps = self.sym6
        filter_pad = taps.numel() // 4
        mx0, my0, mx1, my1 = _reflection_margin(g_inv, h, w, filter_pad)
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        g_inv = translate2d(torch.full((b,), (mx0 - mx1) / 2, device=images.device), torch.full((b,), (my0 - my1) / 2, device=images.device)) @ g_inv
        images = upsample2(images, taps)
        # Into the upsampled image's pixel grid (pixel centres at half-integers), then into the
        # normalized [-1, 1] coordinates of affine_grid for the output canvas.
        g = scale2d(2 * torch.ones(b, device=images.device), 2 * torch.ones(b, device=images.device)) @ g_inv
        g = g @ scale2d(0.5 * torch.ones(b, device=images.device), 0.5 * torch.ones(b, device=images.device))
        half = 0.5 * torch.ones(b, device=images.device)
        g = translate2d(-half, -half) @ g @ translate2d(half, half)
        out_h, out_w = (h + filter_pad * 2) * 2, (w + filter_pad * 2) * 2
        ones = torch.ones(b, device=images.device)
        g = scale2d(2 / images.shape[3] * ones, 2 / images.shape[2] * ones) @ g @ scale2d(out_w / 2 * ones, out_h / 2 * ones)
        grid = F.affine_grid(g[:, :2, :], [b, c, out_h, out_w], align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return downsample2(images, taps, filter_pad * 2)

    def colour_matrix(self, b: int, channels: int, device: torch.device) -> Tensor:
        """C (B, 4, 4): homogeneous colour transform, brightness first."""
        m = self.multipliers
        eye = torch.eye(4, device=device)
        c = eye.expand(b, 4, 4)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        vv = torch.outer(luma, luma)
        if m["brightness"] > 0:
            c = translate3d(self._with_probability("brightness", torch.randn(b, device=device) * self.brightness_std, 0.0)) @ c
        if m["contrast"] > 0:
            c = scale3d(self._with_probability("contrast", torch.exp2(torch.randn(b, device=device) * self.contrast_std), 1.0)) @ c
        if m["lumaflip"] > 0:
            i = self._with_probability("lumaflip", torch.floor(torch.rand(b, device=device) * 2), 0.0)
            c = (eye - 2 * vv * i[:, None, None]) @ c  # Householder reflection of the luma axis
        if m["hue"] > 0 and channels > 1:
            theta = self._with_probability("hue", (torch.rand(b, device=device) * 2 - 1) * math.pi, 0.0)
            c = rotate3d(luma, theta) @ c
        if m["saturation"] > 0 and channels > 1:
            s = self._with_probability("saturation", torch.exp2(torch.randn(b, device=device) * self.saturation_std), 1.0)
            c = (vv + (eye - vv) * s[:, None, None]) @ c
        return c

    @staticmethod
    def apply_colour(images: Tensor, c: Tensor) -> Tensor:
        """RGB: C[:3, :3] x + C[:3, 3]; grayscale: the mean row of C acting on (x, x, x)."""
        b, channels, h, w = images.shape
        flat = images.reshape(b, channels, h * w)
        if channels == 3:
            flat = c[:, :3, :3] @ flat + c[:, :3, 3:]
        elif channels == 1:
            row = c[:, :3, :].mean(dim=1, keepdim=True)
            flat = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
        else:
            raise ValueError(f"ADA's colour ops need RGB or grayscale images, got {channels} channels")
        return flat.reshape(b, channels, h, w)

    def forward(self, images: Tensor) -> Tensor:
        dtype = images.dtype
        b, channels, h, w = images.shape
        # The pipeline runs in float32 (affine grids and 4x4 colour matrices lose too much in half).
        with torch.autocast(device_type=images.device.type, enabled=False):
            x = images.float()
            if self._enabled(self.BLIT + self.GEOMETRY):
                x = self.resample(x, self.geometry_matrix(b, h, w, x.device))
            if self._enabled(self.COLOUR):
                x = self.apply_colour(x, self.colour_matrix(b, channels, x.device))
        return x.to(dtype)

    def extra_repr(self) -> str:
        return f"target={self.target}, interval={self.interval}, kimg={self.kimg}"


def make_augment(augment: Optional[str], policy: str, target: float, interval: int, kimg: float) -> Optional[nn.Module]:
    """The ``augment:`` option of `AdversarialModel`: None, ``diffaugment`` or ``ada``."""
    if augment is None:
        return None
    if augment == "diffaugment":
        return DiffAugment(policy)
    if augment == "ada":
        return AdaptiveAugment(target, interval, kimg)
    raise InvalidValue(f"model option augment={augment!r} is invalid: must be diffaugment, ada or null")
