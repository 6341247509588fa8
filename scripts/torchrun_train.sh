#!/bin/bash
# Multi-node training without SLURM: run this on every node with the same MASTER_ADDR/PORT.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 GPUS=4 CONFIG=experiments/dcgan/cifar10.yaml \
#     RUN_DIR=/shared/runs/dcgan-cifar10 scripts/torchrun_train.sh
# On a requeue or restart run the same command: `--ckpt_path last` resumes from RUN_DIR.
set -euo pipefail
: "${CONFIG:?}" "${RUN_DIR:?}" "${MASTER_ADDR:?}"
NNODES=${NNODES:-1}; NODE_RANK=${NODE_RANK:-0}; GPUS=${GPUS:-1}; MASTER_PORT=${MASTER_PORT:-29500}
exec torchrun --nnodes "$NNODES" --nproc-per-node "$GPUS" --node-rank "$NODE_RANK" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
  -m genmodels fit --config "$CONFIG" --trainer.default_root_dir "$RUN_DIR" \
  --trainer.num_nodes "$NNODES" --trainer.devices "$GPUS" \
  --trainer.strategy ddp_find_unused_parameters_true --ckpt_path last ${EXTRA_ARGS:-}
