"""PixelCNN and Gated PixelCNN: autoregressive image models with masked convolutions.

van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks",
arXiv:1601.06759 (PixelCNN, Sec. 3.4-3.5), and van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders", arXiv:1606.05328 (Gated PixelCNN).

``p(x) = prod_i p(x_i | x_<i)`` in raster order, sub-pixels R, G, B in turn (1601.06759 Eq. 1-2).
Convolutions are masked so that the output at pixel ``i`` sees only pixels before ``i``: at the
centre, a type-A mask (first layer) also hides the current sub-pixel and those after it, a type-B
mask (later layers) hides only those after it (1601.06759 Sec. 3.4, Fig. 2). Feature maps are
split into ``C`` colour groups, channel ``k`` in group ``k % C``, so colour ``c`` only sees
colours ``< c`` of the current pixel.

Implemented:

- ``gated=False``: the PixelCNN of 1601.06759 Table 1 / Fig. 5: a 7x7 type-A convolution, then
  residual blocks (1x1, 3x3 type-B, 1x1) with ReLU; it has the "blind spot" of Fig. 1 of
  1606.05328 (pixels up and to the right are missed);
- ``gated=True``: the Gated PixelCNN of 1606.05328 Sec. 2.1-2.2 and Fig. 2: a vertical stack
  (rows above) feeding a horizontal stack (the current row, left), which removes the blind spot,
  gated activations ``tanh(W_f * x) * sigmoid(W_g * x)`` (Eq. 2) and residual connections in the
  horizontal stack;
- class-conditional generation (1606.05328 Eq. 4): a learned per-class bias on every gate;
- outputs: a 256-way softmax per sub-pixel (1601.06759 Sec. 5.3), or a mixture of discretized
  logistics per sub-pixel (Salimans et al. 2017, PixelCNN++, arXiv:1701.05517 Eq. 2; here each
  sub-pixel gets its own mixture conditioned through the colour masks, not PixelCNN++'s linear
  colour coupling); exact discrete bits/dim;
- autoregressive sampling with temperature ``T`` (each conditional ``p^(1/T)`` renormalized;
  ``T = 0`` takes the mode). Sampling caches every layer's activations and recomputes only the
  positions the new sub-pixel affects: the vertical stack once per row, the horizontal stack and
  output head once per sub-pixel (the idea of Ramachandran et al. 2017, arXiv:1704.06001), so a
  step costs O(layers) instead of a full forward pass over the image.

Not implemented: PixelRNN's LSTM layers, conditioning on a latent vector/embedding (only labels),
PixelCNN++'s downsampling, dropout and linear colour coupling.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.likelihood.common import (
    NUM_LEVELS,
    LikelihoodModel,
    from_pixels,
    nats_to_bits_per_dim,
    sample_categorical,
    to_pixels,
)
from genmodels.errors import InvalidValue

__all__ = ["PixelCNN", "CausalConv2d", "causal_mask", "discretized_logistic_mixture_log_prob"]

MaskType = Optional[Literal["A", "B"]]


# ---------------------------------------------------------------------------------------------
# Masked convolution


def causal_mask(
    out_channels: int,
    in_channels: int,
    kernel: tuple[int, int],
    centre: tuple[int, int],
    mask_type: MaskType,
    colours: int,
) -> Tensor:
    """(out, in, kh, kw) 0/1 mask of a convolution centred at ``centre`` of its kernel.

    Taps before the centre in raster order are kept, taps after it are zeroed; at the centre,
    output group ``g`` (channel ``% colours``) sees input groups ``< g`` (type A) or ``<= g``
    (type B). ``mask_type=None`` keeps every tap (the vertical stack, shifted afterwards).
    """
    mask = torch.ones(out_channels, in_channels, *kernel)
    if mask_type is None:
        return mask
    row, col = centre
    mask[:, :, row, col + 1 :] = 0
    mask[:, :, row + 1 :, :] = 0
    out_group = torch.arange(out_channels).view(-1, 1) % colours
    in_group = torch.arange(in_channels).view(1, -1) % colours
    allowed = in_group < out_group if mask_type == "A" else in_group <= out_group
    mask[:, :, row, col] = allowed.float()
    return mask


def _window(x: Tensor, top: int, bottom: int, left: int, right: int) -> Tensor:
    """``x[..., top:bottom, left:right]`` with zeros wherever the range leaves the image."""
    height, width = x.shape[-2:]
    t, b, l, r = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
    padding = (l - left, right - r, t - top, bottom - b)
    return F.pad(x[..., t:b, l:r], padding) if any(padding) else x[..., t:b, l:r]


class CausalConv2d(nn.Conv2d):
    """A masked convolution whose output at ``(i, j)`` is the kernel's ``centre`` placed on ``(i, j)``.

    `at` computes the output on a sub-rectangle only, from a zero-padded window of the input;
    `forward` is `at` over the whole image. Training and the cached sampler share this one code
    path, so they compute the same function.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        centre: tuple[int, int],
        mask_type: MaskType = None,
        colours: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel, padding=0)
        self.centre = centre
        self.register_buffer("mask", causal_mask(out_channels, in_channels, kernel, centre, mask_type, colours))
        self.frozen_weight: Optional[Tensor] = None  # set by `frozen_masks` while sampling

    def at(self, x: Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> Tensor:
        """Output rows ``[r0, r1)`` and columns ``[c0, c1)`` (B, out, r1 - r0, c1 - c0)."""
        (kh, kw), (cr, cc) = self.kernel_size, self.centre
        window = _window(x, rows[0] - cr, rows[1] + kh - 1 - cr, cols[0] - cc, cols[1] + kw - 1 - cc)
        weight = self.weight * self.mask if self.frozen_weight is None else self.frozen_weight
        if rows[1] - rows[0] == 1 and cols[1] - cols[0] == 1:
            # One output position (the sampler's case): the same sum as a matrix product, which
            # avoids the large per-call overhead of CPU convolution kernels on tiny inputs.
            return F.linear(window.flatten(1), weight.flatten(1), self.bias)[:, :, None, None]
        return F.conv2d(window, weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.at(x, (0, x.shape[2]), (0, x.shape[3]))


@contextmanager
def frozen_masks(module: nn.Module) -> Iterator[None]:
    """Mask every `CausalConv2d` weight of ``module`` once, instead of at each of the sampler's
    thousands of single-position calls (the multiplication would dominate their cost)."""
    convs = [m for m in module.modules() if isinstance(m, CausalConv2d)]
    try:
        for conv in convs:
            conv.frozen_weight = (conv.weight * conv.mask).detach()
        yield
    finally:
        for conv in convs:
            conv.frozen_weight = None


def _pointwise(in_channels: int, out_channels: int, colours: int, mask_type: MaskType = "B") -> CausalConv2d:
    return CausalConv2d(in_channels, out_channels, (1, 1), (0, 0), mask_type, colours)


def _gate(x: Tensor) -> Tensor:
    """Gated activation unit (1606.05328 Eq. 2): ``tanh(a) * sigmoid(b)`` over the two halves.

    With colour groups ``k % C`` and a half size divisible by C, channel ``k`` of each half is
    in the same group, so the product never mixes colours.
    """
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _pixel(x: Tensor, i: int, j: int) -> Tensor:
    return x[..., i : i + 1, j : j + 1]


# ---------------------------------------------------------------------------------------------
# PixelCNN (1601.06759): type-A convolution, then residual blocks


class ResidualBlock(nn.Module):
    """1601.06759 Fig. 5: ReLU, 1x1 (2h -> h), ReLU, kxk type B, ReLU, 1x1 (h -> 2h), plus input."""

    def __init__(self, channels: int, kernel_size: int, colours: int, num_classes: int) -> None:
        super().__init__()
        k = kernel_size
        self.reduce = _pointwise(2 * channels, channels, colours)
        self.conv = CausalConv2d(channels, channels, (k, k), (k // 2, k // 2), "B", colours)
        self.expand = _pointwise(channels, 2 * channels, colours)
        self.embed = nn.Embedding(num_classes, channels) if num_classes else None

    def _reduced(self, h: Tensor, label: Optional[Tensor]) -> Tensor:
        a = F.relu(self.reduce(F.relu(h)))
        return a if self.embed is None else a + self.embed(label)[:, :, None, None]

    def forward(self, h: Tensor, label: Optional[Tensor]) -> Tensor:
        return h + self.expand(F.relu(self.conv(self._reduced(h, label))))

    def step(self, h: Tensor, cache: Tensor, i: int, j: int, label: Optional[Tensor]) -> Tensor:
        """The output at ``(i, j)`` (B, 2h, 1, 1); ``cache`` holds the kxk conv's input so far."""
        cache[..., i, j] = self._reduced(_pixel(h, i, j), label)[..., 0, 0]
        return _pixel(h, i, j) + self.expand(F.relu(self.conv.at(cache, (i, i + 1), (j, j + 1))))


class PixelCNNNetwork(nn.Module):
    """The PixelCNN body: image (B, C, H, W) -> features (B, 2h, H, W) causal in raster order."""

    def __init__(
        self, colours: int, channels: int, num_layers: int, kernel_size: int, first_kernel_size: int, num_classes: int
    ) -> None:
        super().__init__()
        k = first_kernel_size
        self.first = CausalConv2d(colours, 2 * channels, (k, k), (k // 2, k // 2), "A", colours)
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, kernel_size, colours, num_classes) for _ in range(num_layers - 1)
        )
        self.out_channels = 2 * channels

    def forward(self, x: Tensor, label: Optional[Tensor]) -> Tensor:
        h = self.first(x)
        for block in self.blocks:
            h = block(h, label)
        return h

    def start(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Empty activation caches for sampling ``x``'s shape."""
        b, _, height, width = x.shape
        width_h = self.out_channels
        return {
            "h": [x.new_zeros(b, width_h, height, width) for _ in range(len(self.blocks) + 1)],
            "reduced": [x.new_zeros(b, width_h // 2, height, width) for _ in self.blocks],
        }

    def begin_row(self, cache: dict[str, list[Tensor]], x: Tensor, i: int, label: Optional[Tensor]) -> None:
        """Nothing to do per row: each position is computed from the rows above, already final."""

    def step(self, cache: dict[str, list[Tensor]], x: Tensor, i: int, j: int, label: Optional[Tensor]) -> Tensor:
        """Features at ``(i, j)`` (B, 2h, 1, 1) given ``x`` up to the current sub-pixel."""
        hs = cache["h"]
        hs[0][..., i, j] = self.first.at(x, (i, i + 1), (j, j + 1))[..., 0, 0]
        for n, block in enumerate(self.blocks):
            hs[n + 1][..., i, j] = block.step(hs[n], cache["reduced"][n], i, j, label)[..., 0, 0]
        return _pixel(hs[-1], i, j)


# ---------------------------------------------------------------------------------------------
# Gated PixelCNN (1606.05328 Fig. 2)


class GatedLayer(nn.Module):
    """One layer of the vertical and horizontal stacks (1606.05328 Fig. 2).

    Vertical: a ``(k//2 + 1) x k`` convolution over the current and the rows above. Its
    pre-activation reaches the horizontal stack through a 1x1 convolution *shifted down one row*,
    so the horizontal stack only ever sees strictly earlier rows from it. Horizontal: a
    ``1 x (k//2 + 1)`` convolution over the current row up to the centre (masked A or B at the
    centre), the gate, a 1x1 convolution and a residual connection (not on the first layer).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        mask_type: Literal["A", "B"],
        colours: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        k = kernel_size
        self.v_conv = CausalConv2d(in_channels, 2 * channels, (k // 2 + 1, k), (k // 2, k // 2), None, colours)
        self.h_conv = CausalConv2d(in_channels, 2 * channels, (1, k // 2 + 1), (0, k // 2), mask_type, colours)
        self.v_to_h = _pointwise(2 * channels, 2 * channels, colours, None)
        self.h_out = _pointwise(channels, channels, colours)
        self.residual = mask_type == "B"
        self.v_embed = nn.Embedding(num_classes, 2 * channels) if num_classes else None
        self.h_embed = nn.Embedding(num_classes, 2 * channels) if num_classes else None

    @staticmethod
    def _condition(pre: Tensor, embed: Optional[nn.Embedding], label: Optional[Tensor]) -> Tensor:
        # Eq. 4: V^T h, one learned bias per class for every gate input.
        return pre if embed is None else pre + embed(label)[:, :, None, None]

    def forward(self, v: Tensor, h: Tensor, label: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        v_pre = self._condition(self.v_conv(v), self.v_embed, label)
        from_above = F.pad(self.v_to_h(v_pre), (0, 0, 1, 0))[:, :, :-1]  # shift down one row
        h_pre = self._condition(self.h_conv(h) + from_above, self.h_embed, label)
        h_new = self.h_out(_gate(h_pre))
        return _gate(v_pre), h + h_new if self.residual else h_new

    def vertical_row(self, v: Tensor, i: int, label: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Row ``i`` of the vertical output and what it sends to row ``i + 1`` of the horizontal stack."""
        v_pre = self._condition(self.v_conv.at(v, (i, i + 1), (0, v.shape[3])), self.v_embed, label)
        return _gate(v_pre), self.v_to_h(v_pre)

    def horizontal_step(self, h: Tensor, from_above: Tensor, i: int, j: int, label: Optional[Tensor]) -> Tensor:
        """The horizontal output at ``(i, j)`` (B, channels, 1, 1)."""
        h_pre = self.h_conv.at(h, (i, i + 1), (j, j + 1)) + _pixel(from_above, i, j)
        h_pre = self._condition(h_pre, self.h_embed, label)
        h_new = self.h_out(_gate(h_pre))
        return _pixel(h, i, j) + h_new if self.residual else h_new


class GatedPixelCNNNetwork(nn.Module):
    """The Gated PixelCNN body: image -> horizontal-stack features (B, h, H, W)."""

    def __init__(
        self, colours: int, channels: int, num_layers: int, kernel_size: int, first_kernel_size: int, num_classes: int
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            GatedLayer(colours if n == 0 else channels, channels, first_kernel_size if n == 0 else kernel_size,
                       "A" if n == 0 else "B", colours, num_classes)
            for n in range(num_layers)
        )
        self.out_channels = channels

    def forward(self, x: Tensor, label: Optional[Tensor]) -> Tensor:
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h, label)
        return h

    def start(self, x: Tensor) -> dict[str, list[Tensor]]:
        b, _, height, width = x.shape
        c = self.out_channels
        return {
            "v": [x.new_zeros(b, c, height, width) for _ in self.layers],
            "from_above": [x.new_zeros(b, 2 * c, height, width) for _ in self.layers],
            "h": [x.new_zeros(b, c, height, width) for _ in self.layers],
        }

    def begin_row(self, cache: dict[str, list[Tensor]], x: Tensor, i: int, label: Optional[Tensor]) -> None:
        """Row ``i - 1`` is complete: run the vertical stack on it, once per row."""
        if i == 0:
            return  # nothing above the first row: from_above stays 0, as the zero-padded shift
        v = x
        for n, layer in enumerate(self.layers):
            v_row, to_next_row = layer.vertical_row(v, i - 1, label)
            cache["v"][n][:, :, i - 1] = v_row[:, :, 0]
            cache["from_above"][n][:, :, i] = to_next_row[:, :, 0]
            v = cache["v"][n]

    def step(self, cache: dict[str, list[Tensor]], x: Tensor, i: int, j: int, label: Optional[Tensor]) -> Tensor:
        h = x
        for n, layer in enumerate(self.layers):
            cache["h"][n][..., i, j] = layer.horizontal_step(h, cache["from_above"][n], i, j, label)[..., 0, 0]
            h = cache["h"][n]
        return _pixel(h, i, j)


# ---------------------------------------------------------------------------------------------
# Output distributions


def discretized_logistic_mixture_log_prob(params: Tensor, pixels: Tensor) -> Tensor:
    """``log P(pixel)`` under a mixture of logistics discretized to 256 bins (PixelCNN++ Eq. 2).

    Args:
        params: (B, 3M, ...) mixture logits, means and log-scales, in the [-1, 1] pixel scale.
        pixels: int (B, ...) values in [0, 255], broadcastable against ``params[:, 0]``.

    Returns:
        (B, ...) log-probabilities; the 256 of them sum to 1 for every position.
    """
    logits, means, log_scales = params.chunk(3, dim=1)
    log_scales = log_scales.clamp_min(-7.0)
    x = from_pixels(pixels).to(params.dtype).unsqueeze(1)
    centred, inv_scale = x - means, torch.exp(-log_scales)
    plus, minus = inv_scale * (centred + 1 / 255), inv_scale * (centred - 1 / 255)
    log_cdf_plus = F.logsigmoid(plus)  # bin 0 takes all mass below it
    log_survival_minus = -F.softplus(minus)  # bin 255 takes all mass above it
    delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    # Where the bin mass underflows, use density * bin width (2/255) at the bin centre instead.
    mid = inv_scale * centred
    log_pdf_mid = mid - log_scales - 2 * F.softplus(mid)
    log_inner = torch.where(delta > 1e-5, torch.log(delta.clamp_min(1e-12)), log_pdf_mid - math.log(127.5))
    log_bin = torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_survival_minus, log_inner))
    return torch.logsumexp(torch.log_softmax(logits, dim=1) + log_bin, dim=1)


# ---------------------------------------------------------------------------------------------


class PixelCNN(LikelihoodModel):
    """(Gated) PixelCNN with a 256-way softmax or discretized-logistic-mixture output.

    Args:
        image_shape: ``(C, H, W)``, linked from the datamodule.
        hidden_channels: feature maps ``h`` per layer (gated: per stack); divisible by ``C``.
        num_layers: layers including the first, type-A one.
        kernel_size: size ``k`` of the later layers' kernels (odd).
        first_kernel_size: size of the first, type-A kernel (7 in both papers; odd).
        gated: Gated PixelCNN stacks (1606.05328) instead of PixelCNN's residual blocks.
        num_classes: > 0 for a class-conditional model trained on ``batch["label"]`` (1606.05328
            Eq. 4); set it in the YAML (it is not linked from the datamodule).
        output: ``softmax`` (256 logits per sub-pixel) or ``logistic_mixture``.
        num_mixtures: components of the logistic mixture.
        head_channels: width of the two 1x1 type-B layers before the output; divisible by ``C``.
        lr: Adam learning rate.
        weight_decay: L2 penalty.
        warmup_iterations: linear learning-rate warm-up.

    Example:
        >>> model = PixelCNN(**PixelCNN.tiny())
        >>> model.sample(2, generator=torch.Generator().manual_seed(0), temperature=0.8).shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 32, 32),
        hidden_channels: int = 64,
        num_layers: int = 8,
        kernel_size: int = 3,
        first_kernel_size: int = 7,
        gated: bool = True,
        num_classes: int = 0,
        output: Literal["softmax", "logistic_mixture"] = "softmax",
        num_mixtures: int = 5,
        head_channels: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_iterations: int = 0,
    ) -> None:
        super().__init__(image_shape, lr=lr, weight_decay=weight_decay, warmup_iterations=warmup_iterations)
        self.save_hyperparameters()
        colours = self.image_shape[0]
        _validate_pixelcnn_options(locals(), colours)
        self.num_classes, self.output = num_classes, output
        self.values_per_subpixel = NUM_LEVELS if output == "softmax" else 3 * num_mixtures
        network = GatedPixelCNNNetwork if gated else PixelCNNNetwork
        self.network = network(colours, hidden_channels, num_layers, kernel_size, first_kernel_size, num_classes)
        # Output stage (1601.06759 Sec. 3.4): ReLU, 1x1 type B, ReLU, 1x1 type B. Output channel
        # k = v * C + c belongs to colour c (k % C), so the result reshapes to (B, K, C, H, W).
        self.head = nn.Sequential(
            nn.ReLU(),
            _pointwise(self.network.out_channels, head_channels, colours),
            nn.ReLU(),
            _pointwise(head_channels, self.values_per_subpixel * colours, colours),
        )

    def forward(self, images: Tensor, label: Optional[Tensor] = None) -> Tensor:
        """Images in [-1, 1] -> distribution parameters (B, K, C, H, W), K = 256 or 3M."""
        b, c, height, width = images.shape
        params = self.head(self.network(images, self._label(label)))
        return params.view(b, self.values_per_subpixel, c, height, width)

    def log_prob(self, images: Tensor, label: Optional[Tensor] = None) -> Tensor:
        """``log P(x)`` per image in nats (B,), exact."""
        params, pixels = self(images, label), to_pixels(images)
        if self.output == "softmax":
            log_probs = -F.cross_entropy(params, pixels, reduction="none")
        else:
            log_probs = discretized_logistic_mixture_log_prob(params, pixels)
        return log_probs.flatten(1).sum(1)

    def bits_per_dim(self, batch: dict[str, Tensor], generator: Optional[torch.Generator] = None) -> Tensor:
        return nats_to_bits_per_dim(-self.log_prob(batch["image"], batch.get("label")), self.num_dims)

    def _label(self, label: Optional[Tensor]) -> Optional[Tensor]:
        if not self.num_classes:
            return None
        if label is None:
            raise InvalidValue("this PixelCNN is class-conditional (num_classes > 0): batches need a 'label'")
        return label.to(self.device).long()

    # -- sampling -------------------------------------------------------------------------------
    def draw(self, n: int, condition: Any, generator: Optional[torch.Generator], temperature: float) -> Tensor:
        """``n`` images (n, C, H, W) in [-1, 1], drawn sub-pixel by sub-pixel in raster order.

        ``condition``: class labels (an int or (n,) ints) for a class-conditional model; by
        default labels ``0, 1, ..., num_classes - 1, 0, ...``. ``temperature`` sharpens (< 1) or
        flattens (> 1) every conditional; 0 takes its mode.
        """
        label = self._sampling_labels(n, condition)
        colours, height, width = self.image_shape
        x = torch.zeros(n, colours, height, width, device=self.device, dtype=self.dtype)
        cache = self.network.start(x)
        with frozen_masks(self):
            for i in range(height):
                self.network.begin_row(cache, x, i, label)
                for j in range(width):
                    for c in range(colours):
                        features = self.network.step(cache, x, i, j, label)
                        log_probs = self._subpixel_log_probs(self.head(features)[:, :, 0, 0], c)
                        x[:, c, i, j] = from_pixels(sample_categorical(log_probs, temperature, generator)).to(x.dtype)
        return x

    def _subpixel_log_probs(self, params: Tensor, colour: int) -> Tensor:
        """(B, K * C) head output at one pixel -> (B, 256) log-probabilities of sub-pixel ``colour``."""
        params = params.view(params.shape[0], self.values_per_subpixel, self.image_shape[0])[:, :, colour]
        if self.output == "softmax":
            return torch.log_softmax(params, dim=1)
        values = torch.arange(NUM_LEVELS, device=params.device)
        return discretized_logistic_mixture_log_prob(params.unsqueeze(-1), values.unsqueeze(0))

    def _sampling_labels(self, n: int, condition: Any) -> Optional[Tensor]:
        if not self.num_classes:
            if condition is not None:
                raise InvalidValue("this PixelCNN is unconditional (num_classes=0): sample() takes no condition")
            return None
        if condition is None:
            return torch.arange(n, device=self.device) % self.num_classes
        label = torch.as_tensor(condition, device=self.device).long().expand(n)
        if label.min() < 0 or label.max() >= self.num_classes:
            raise InvalidValue(f"condition labels must be in [0, {self.num_classes}), got {label.tolist()}")
        return label

    @classmethod
    def tiny(cls) -> dict[str, Any]:
        """Arguments of a test-size PixelCNN (a CPU trains it in seconds): the docstring example, the
        contract test and the CLI tests all build it from here."""
        return dict(image_shape=(1, 4, 4), hidden_channels=6, num_layers=2, first_kernel_size=3, head_channels=6)


def _validate_pixelcnn_options(options: dict[str, Any], colours: int) -> None:
    """Clear errors for impossible option values, naming the key."""
    checks = [
        ("hidden_channels", options["hidden_channels"] >= colours and options["hidden_channels"] % colours == 0,
         f"a positive multiple of the {colours} image channel(s) (colour groups)"),
        ("head_channels", options["head_channels"] >= colours and options["head_channels"] % colours == 0,
         f"a positive multiple of the {colours} image channel(s) (colour groups)"),
        ("num_layers", options["num_layers"] >= 1, ">= 1"),
        ("kernel_size", options["kernel_size"] >= 1 and options["kernel_size"] % 2 == 1, "odd and >= 1"),
        ("first_kernel_size", options["first_kernel_size"] >= 3 and options["first_kernel_size"] % 2, "odd and >= 3"),
        ("num_classes", options["num_classes"] >= 0, ">= 0 (0: unconditional)"),
        ("output", options["output"] in ("softmax", "logistic_mixture"), "softmax or logistic_mixture"),
        ("num_mixtures", options["num_mixtures"] >= 1, ">= 1"),
    ]
    for key, ok, allowed in checks:
        if not ok:
            raise InvalidValue(f"model option {key}={options[key]!r} is invalid: must be {allowed}")
