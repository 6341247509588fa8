"""A VAE's test ELBO over training against independent-pixel models of the same data.

For each checkpoint (and a fresh model with the run's seed as iteration 0), prints the test ELBO
(nats per image) and its bits/dim, both lower bounds on log P(x) under the VAE's discretized
decoder, next to two independent-pixel models fitted on the training split and scored on the same
test images (`genmodels.autoencoders.baselines`): a smoothed categorical per sub-pixel and a
discretized Gaussian per sub-pixel. The margin is baseline bits/dim minus VAE bits/dim (positive:
the VAE is better), in the same invocation and on the same pixels.

    genmodels fit --config experiments/vae/digits.yaml --trainer.default_root_dir runs/vae/digits
    python scripts/vae_elbo_vs_baseline.py runs/vae/digits/checkpoints/iter_*.ckpt [--importance-samples 64]

The datamodule is rebuilt from the checkpoint (``--data-dir`` points it at other files).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import torch

from genmodels.apps.anomaly import build_datamodule, datamodule_spec
from genmodels.autoencoders.baselines import independent_pixel_bits_per_dim
from genmodels.checkpoints import load_checkpoint_safely, load_model


def test_bits_per_dim(model, images: torch.Tensor, importance_samples: int, seed: int = 0) -> dict[str, float]:
    """Mean test ELBO (nats) and bits/dim, and the importance-weighted bits/dim when asked."""
    generator = torch.Generator().manual_seed(seed)
    dims = math.prod(images.shape[1:])
    elbo, iw = [], []
    with torch.no_grad():
        for chunk in images.split(256):
            x = chunk.float() / 127.5 - 1
            elbo.append(-model.negative_elbo(x, generator=generator))
            if importance_samples:
                iw.append(model.importance_weighted_log_likelihood(x, None, importance_samples, generator))
    result = {"elbo": torch.cat(elbo).mean().item()}
    result["bits_per_dim"] = -result["elbo"] / (dims * math.log(2))
    if iw:
        result["bits_per_dim_iw"] = -torch.cat(iw).mean().item() / (dims * math.log(2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="VAE training checkpoints of one run")
    parser.add_argument("--importance-samples", type=int, default=0, help="k of the importance-weighted bound (0: off)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small models run best on 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    paths = sorted(args.checkpoints, key=lambda p: int(re.sub(r"\D", "", Path(p).stem) or 1 << 62))
    checkpoint = load_checkpoint_safely(paths[0])
    datamodule, _ = build_datamodule(datamodule_spec(checkpoint, None), args.data_dir)
    train_images = torch.cat([b["image"] for b in _batches(datamodule, "train")])
    test_images, _ = datamodule.split_images("test")
    baselines = independent_pixel_bits_per_dim(train_images, test_images)
    print(f"data: {datamodule.dataset_name}, {len(train_images)} train / {len(test_images)} test images of "
          f"{tuple(test_images.shape[1:])}")
    print(f"independent pixels, categorical (alpha {baselines['histogram_alpha']}): {baselines['histogram']:.3f} bits/dim")
    print(f"independent pixels, discretized Gaussian:            {baselines['discretized_gaussian']:.3f} bits/dim")

    trained = [load_model(p) for p in paths]
    models = [("0 (fresh init)", _fresh(trained[0], checkpoint))] + [(str(m.iteration), m) for m in trained]
    header = f"{'iteration':>16} {'test ELBO (nats)':>17} {'bits/dim':>9} {'vs categorical':>15} {'vs d-Gaussian':>14}"
    print(header + ("  bits/dim (IW)" if args.importance_samples else ""))
    for name, model in models:
        r = test_bits_per_dim(model.eval(), test_images, args.importance_samples)
        line = (f"{name:>16} {r['elbo']:>17.1f} {r['bits_per_dim']:>9.3f} "
                f"{baselines['histogram'] - r['bits_per_dim']:>+15.3f} {baselines['discretized_gaussian'] - r['bits_per_dim']:>+14.3f}")
        print(line + (f"  {r['bits_per_dim_iw']:.3f}" if args.importance_samples else ""))


def _batches(datamodule, split: str):
    # The training split in file order (no shuffling sampler needed for fitting the baselines).
    datamodule.setup("fit")
    dataset = datamodule._dataset(split)
    return [dataset.__getitems__(range(i, min(i + 512, len(dataset)))) for i in range(0, len(dataset), 512)]


def _fresh(trained, checkpoint):
    """The same model class and hyperparameters, initialized as the run was (seed_everything 0)."""
    torch.manual_seed(0)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    return type(trained)(**hparams)


if __name__ == "__main__":
    main()
