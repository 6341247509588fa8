#!/usr/bin/env bash
# The GPU benchmark suite in one command: one table per benchmark, each with its baseline measured
# in the same invocation. Run on the GPU node from the repository root:
#
#     bash scripts/bench_gpu.sh [OUT_DIR]        # default: bench-gpu-<date>/
#
# 1. framework overhead: genmodels vs a plain PyTorch loop at MNIST size (goal: ratio >= 0.90)
# 2. DCGAN at CIFAR-10 shape: it/s in fp32, bf16-mixed, fp16-mixed, compiled, channels_last, fused Adam
# 3. FID on 10k + 10k images (Inception weights from `genmodels prefetch-weights`; random weights
#    otherwise, which times the same work), genmodels vs torch-fidelity
# 4. data pipeline: folder loader with 2 workers vs the training step's consumption
# 5. StyleGAN2 sec/kimg at 64 px (when scripts/bench_stylegan.py is present)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${1:-bench-gpu-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
export WANDB_MODE=offline

run() {  # name, command...: print, run, and keep the output
    local name=$1; shift
    echo "== $name: $*" | tee "$OUT/$name.txt"
    "$@" 2>/dev/null | tee -a "$OUT/$name.txt"
}

$PY - <<'PY' | tee "$OUT/device.txt"
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY
run overhead $PY scripts/bench_train.py --device gpu --image-size 28 --batch-size 64 --iterations 500 --repeats 3
run options $PY scripts/bench_options.py --device cuda --variants fp32,bf16,fp16,compile,channels_last,fused --iterations 200 --repeats 3
run fid10k $PY scripts/bench_metrics.py --device cuda --num-images 10000 --batch-size 200
run data $PY scripts/bench_data.py --device cuda --workers 2 --image-size 64 --images 2048 --batches 30 --iterations 100
if [ -f scripts/bench_stylegan.py ]; then
    run stylegan2 $PY scripts/bench_stylegan.py --resolution 64 --batch-size 32 --device cuda
fi
echo "tables written to $OUT/"
