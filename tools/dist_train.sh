#!/usr/bin/env bash
# Distributed training with torchrun (MMDetection's command line):
#
#   tools/dist_train.sh CONFIG GPUS [tools/train.py options]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.1.1.1 PORT=29500 \
#       tools/dist_train.sh \
#       configs/skipresnet/cascade-mask-rcnn_skipresnet50_fpn_ms-3x_coco.py 8
#
# GPUS is the number of processes on this node. On a machine without CUDA
# the processes train on the CPU over gloo (mmgate.compat). PYTHON picks the
# interpreter (default: python).
set -eo pipefail

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

if [ -z "$CONFIG" ] || [ -z "$GPUS" ]; then
    echo "usage: $0 CONFIG GPUS [train.py options]" >&2
    exit 2
fi

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
