"""Image pool: a history of generated images for the discriminator (Shrivastava et al. 2017,
arXiv:1612.07828, Sec. 2.3), as CycleGAN uses it (Zhu et al. 2017, arXiv:1703.10593, Sec. 4).

D is updated on a mix of the newest fakes and fakes from earlier generators, which reduces
oscillation. The pool keeps up to ``size`` images (50 in CycleGAN). While it is filling, every
new image is stored and returned; once full, each new image is, with probability 1/2, returned
as is, or else swapped for a stored image chosen uniformly, which is returned in its place.

The contents and the fill count are buffers, so they are part of the state dict: a checkpoint
holds the pool and a resumed run continues with the same history. Randomness comes from the
global torch RNG (resumed by `genmodels.base.GenerativeModel`) or from an explicit generator.
Under DDP each rank keeps its own pool but checkpoints hold rank 0's, so a resumed multi-GPU run
restarts every rank from rank 0's history (exact resume holds for single-process runs).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["ImagePool"]


class ImagePool(nn.Module):
    """A pool of up to ``size`` images of shape ``image_shape``.

    Args:
        size: capacity (0 disables the pool: `query` returns its input).
        image_shape: ``(C, H, W)`` of the stored images.

    Example:
        >>> pool = ImagePool(2, (1, 2, 2))
        >>> out = pool.query(torch.ones(3, 1, 2, 2))  # two are stored, the third may swap
        >>> int(pool.count), out.shape
        (2, torch.Size([3, 1, 2, 2]))
    """

    def __init__(self, size: int = 50, image_shape: tuple[int, int, int] = (3, 256, 256)) -> None:
        super().__init__()
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, images: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """The images D should see for this batch of new (detached) fakes, (n, C, H, W)."""
        if self.size == 0:
            return images
        if images.shape[1:] != self.images.shape[1:]:
            raise ValueError(f"the pool holds images of shape {tuple(self.images.shape[1:])}, got {tuple(images.shape[1:])}")
        out = []
        # CPU draws unless a generator on another device is given (the global CPU stream is resumed).
        device = generator.device if generator is not None else "cpu"
        count = int(self.count)  # one host sync per batch (the batch is 1 in CycleGAN)
        for image in images.detach():
            if count < self.size:  # filling: store and return the new image
                self.images[count] = image
                count += 1
                out.append(image)
            elif torch.rand((), generator=generator, device=device) < 0.5:
                index = int(torch.randint(self.size, (), generator=generator, device=device))
                out.append(self.images[index].to(image.dtype, copy=True))
                self.images[index] = image
            else:
                out.append(image)
        self.count.fill_(count)
        return torch.stack(out)
