#!/usr/bin/env bash
# The GPU benchmark suite in one command: one table per benchmark, each with its baseline measured
# in the same invocation. Run on the GPU node from the repository root:
#
#     bash scripts/bench_gpu.sh [OUT_DIR]        # default: bench-gpu-<date>/
#     SMOKE=1 bash scripts/bench_gpu.sh OUT_DIR  # every command on the CPU at tiny sizes (a test runs this)
#
# 1. framework overhead: genmodels vs a plain PyTorch loop at MNIST size (goal: ratio >= 0.90)
# 2. DCGAN at CIFAR-10 shape: it/s in fp32, bf16-mixed, fp16-mixed, compiled, channels_last, fused Adam
# 3. FID on 10k + 10k images (Inception weights from `genmodels prefetch-weights`; random weights
#    otherwise, which times the same work), genmodels vs torch-fidelity
# 4. data pipeline: folder loader with 2 workers vs the training step's consumption
# 5. StyleGAN2 sec/kimg at 64 px, batch 32
# 6. StyleGAN2 sec/kimg beside the authors' training code (stylegan2-ada-pytorch, 32 px, batch 32), when
#    OFFICIAL_STYLEGAN2_ADA names a checkout of NVlabs/stylegan2-ada-pytorch (its CUDA ops compile if
#    nvcc is there, else run their reference implementations; the table says which device ran)
# 7. BigGAN G it/s at the CIFAR script's size (ch 64, batch 50), beside ajbrock/BigGAN-PyTorch's
#    train_fns when BIGGAN_CHECKOUT=PATH names a checkout of it (genmodels alone otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${1:-bench-gpu-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
export WANDB_MODE=offline

run() {  # name, command...: print, run, keep the output; a failing benchmark does not stop the rest
    local name=$1; shift
    echo "== $name: $*" | tee "$OUT/$name.txt"
    if ! "$@" 2>"$OUT/$name.err" | tee -a "$OUT/$name.txt"; then
        echo "== $name FAILED (stderr in $OUT/$name.err)" | tee -a "$OUT/$name.txt"
    fi
}

if [ "${SMOKE:-0}" = 1 ]; then
    # Same commands and flags, CPU and tiny sizes: checks the suite, measures nothing.
    GPU=cpu; CUDA=cpu; VARIANTS=fp32,bf16,channels_last,fused
    N_TRAIN="--iterations 3 --repeats 1"; N_OPT="--iterations 2 --repeats 1 --feature-maps 8"
    N_FID="--num-images 16 --batch-size 8"; N_DATA="--images 16 --batches 2 --iterations 2 --batch-size 4"
    N_STYLE="--resolution 8 --batch 2 --channel-base 64 --channel-max 8 --iterations 1 --warmup 1"
    N_OFFICIAL="--resolution 8 --batch 2 --channel-base 64 --channel-max 8 --iterations 1 --warmup 1"
    N_BIGGAN="--ch 2 --batch 2 --iterations 1 --warmup 1"
else
    GPU=gpu; CUDA=cuda; VARIANTS=fp32,bf16,fp16,compile,channels_last,fused
    N_TRAIN="--iterations 500 --repeats 3"; N_OPT="--iterations 200 --repeats 3"
    N_FID="--num-images 10000 --batch-size 200"; N_DATA="--images 2048 --batches 30 --iterations 100"
    N_STYLE="--resolution 64 --batch 32"
    N_OFFICIAL="--resolution 32 --batch 32 --channel-base 32768 --channel-max 512 --iterations 32 --warmup 4"
    N_BIGGAN="--ch 64 --batch 50 --iterations 50 --warmup 5"
    $PY - <<'PY' | tee "$OUT/device.txt"
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY
fi
# shellcheck disable=SC2086  # the size options are word lists on purpose
{
run overhead $PY scripts/bench_train.py --device $GPU --image-size 28 --batch-size 64 $N_TRAIN
run options $PY scripts/bench_options.py --device $CUDA --variants $VARIANTS $N_OPT
run fid10k $PY scripts/bench_metrics.py --device $CUDA $N_FID
run data $PY scripts/bench_data.py --device $CUDA --workers 2 --image-size 64 $N_DATA
run stylegan2 $PY scripts/bench_stylegan.py --architecture stylegan2 --device $CUDA $N_STYLE
if [ -n "${OFFICIAL_STYLEGAN2_ADA:-}" ]; then
    run stylegan2_official $PY scripts/bench_official.py --checkout "$OFFICIAL_STYLEGAN2_ADA" --device $CUDA $N_OFFICIAL
else
    echo "== stylegan2_official: skipped (set OFFICIAL_STYLEGAN2_ADA to a stylegan2-ada-pytorch checkout)" | tee "$OUT/stylegan2_official.txt"
fi
run biggan $PY scripts/bench_biggan.py --device $CUDA ${BIGGAN_CHECKOUT:+--checkout "$BIGGAN_CHECKOUT"} $N_BIGGAN
}
echo "tables written to $OUT/"
