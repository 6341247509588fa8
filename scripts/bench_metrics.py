"""Benchmark: Inception feature extraction + FID, genmodels against torch-fidelity, same images and device.

Both sides score the same two sets of uint8 RGB images with the same InceptionV3 weights file on
the same device, end to end: building the network, extracting 2 x N feature vectors and computing
FID. genmodels runs `InceptionExtractor` + `FrechetDistance` (the path of the callback and of
``genmodels evaluate``); torch-fidelity runs ``calculate_metrics(input1=..., input2=..., fid=True)``
with its defaults. The table gives seconds, images/s and FID for each, and the ratio
torch-fidelity time / genmodels time (> 1: genmodels is faster).

Usage::

    python scripts/bench_metrics.py                          # 512 images of 32 px per set, CPU
    python scripts/bench_metrics.py --device cuda --num-images 10000 --batch-size 200
    python scripts/bench_metrics.py --weights /path/weights-inception-2015-12-05-6726825d.pth

Without ``--weights`` (and no file in ``$GENMODELS_INCEPTION_WEIGHTS`` or the hub cache, as on an
offline machine) a random-weight file in the real format is written to a temporary folder: the
timings are valid, the FID values only agree between the two implementations.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import Dataset

from genmodels.metrics.inception import InceptionExtractor, resolve_inception_weights
from genmodels.metrics.modular import FrechetDistance


class UInt8Images(Dataset):
    """The tensors torch-fidelity reads: uint8 (3, H, W) per item."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def make_images(n: int, size: int, seed: int, shift: float) -> torch.Tensor:
    """Smooth random colour images (upsampled 4x4 noise plus fine noise), uint8 (n, 3, size, size)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear")
    x = 0.8 * coarse + 0.2 * torch.rand(n, 3, size, size, generator=g) + shift
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def random_weights_file(folder: Path) -> Path:
    """An InceptionV3 state dict with random (He-initialized) weights, in the real file's format."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Fresh(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):
            return None

    placeholder = io.BytesIO()
    torch.save({}, placeholder)
    placeholder.seek(0)
    net = Fresh("inception-v3-compat", ["2048"], feature_extractor_weights_path=placeholder)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                std = (2 / module.weight[0].numel()) ** 0.5  # He initialization: activations keep their scale
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
    path = folder / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def fid_genmodels(real: torch.Tensor, fake: torch.Tensor, weights: Path, device: str, batch_size: int) -> float:
    extractor = InceptionExtractor(weights).to(device)
    metric = FrechetDistance(2048).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for batch in images.split(batch_size):
            metric.update(extractor(batch.to(device)).features, real=is_real)
    return metric.compute().item()


def fid_torch_fidelity(real: torch.Tensor, fake: torch.Tensor, weights: Path, device: str, batch_size: int) -> float:
    import torch_fidelity

    result = torch_fidelity.calculate_metrics(
        input1=UInt8Images(fake), input2=UInt8Images(real), fid=True, cuda=device.startswith("cuda"),
        batch_size=batch_size, feature_extractor_weights_path=str(weights), cache=False, verbose=False,
    )
    return result["frechet_inception_distance"]


def timed(function: Callable[[], float], device: str) -> tuple[float, float]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = function()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=512, help="images per set (two sets are scored)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights", default=None, help="InceptionV3 weights (default: resolved, else random)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each; the best is reported")
    args = parser.parse_args()
    # A few hundred images give a singular 2048-d covariance: expected here, the timings are the point.
    warnings.filterwarnings("ignore", message="FID from")

    with tempfile.TemporaryDirectory() as tmp:
        try:
            weights, note = resolve_inception_weights(args.weights), "real weights"
        except FileNotFoundError:
            weights, note = random_weights_file(Path(tmp)), "random weights in the real format (no weights file found)"
        real = make_images(args.num_images, args.image_size, seed=0, shift=0.0)
        fake = make_images(args.num_images, args.image_size, seed=1, shift=0.05)
        small_real, small_fake = real[: args.batch_size], fake[: args.batch_size]
        runs = {"genmodels": fid_genmodels, "torch-fidelity": fid_torch_fidelity}
        for run in runs.values():  # warm-up: allocator, kernel selection, lazy imports
            run(small_real, small_fake, weights, args.device, args.batch_size)
        results = {name: (float("inf"), 0.0) for name in runs}
        for _ in range(args.repeats):  # interleaved, so a slow phase of the machine hits both
            for name, run in runs.items():
                seconds, value = timed(lambda: run(real, fake, weights, args.device, args.batch_size), args.device)
                results[name] = min(results[name], (seconds, value))

    on_gpu = args.device.startswith("cuda")
    device_name = torch.cuda.get_device_name(args.device) if on_gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{2 * args.num_images} images of {args.image_size} px, batch {args.batch_size}, {device_name}, {note}")
    print(f"{'implementation':16s} {'seconds':>9s} {'images/s':>9s} {'FID':>14s}")
    for name, (seconds, value) in results.items():
        print(f"{name:16s} {seconds:9.2f} {2 * args.num_images / seconds:9.1f} {value:14.6f}")
    ours, theirs = results["genmodels"], results["torch-fidelity"]
    print(f"ratio (torch-fidelity time / genmodels time): {theirs[0] / ours[0]:.2f}x")
    print(f"relative FID difference: {abs(ours[1] - theirs[1]) / max(abs(theirs[1]), 1e-12):.2e}")


if __name__ == "__main__":
    main()
