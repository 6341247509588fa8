"""Likelihood-based models: exact (flows) or tractable (autoregressive) log-likelihoods in bits/dim.

- `RealNVP` (Dinh et al. 2017, arXiv:1605.08803) and `Glow` (Kingma & Dhariwal 2018,
  arXiv:1807.03039): normalizing flows on uniformly dequantized pixels;
- `PixelCNN` (van den Oord et al. 2016, arXiv:1601.06759 and arXiv:1606.05328): masked
  convolutions, gated and class-conditional options, softmax or logistic-mixture outputs;
- `IndependentPixels`: one categorical per sub-pixel, the floor every model must beat.

Samples at several temperatures are written by `genmodels.callbacks.TemperatureGrid`.

All report bits/dim of the discrete 256-level data (8 bits/dim is the uniform distribution);
see `genmodels.likelihood.common`.
"""

from genmodels.likelihood.glow import Glow
from genmodels.likelihood.independent_pixels import IndependentPixels
from genmodels.likelihood.pixelcnn import PixelCNN
from genmodels.likelihood.realnvp import RealNVP

__all__ = ["RealNVP", "Glow", "PixelCNN", "IndependentPixels"]
