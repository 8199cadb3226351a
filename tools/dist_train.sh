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
# interpreter (default: python). A failed rank ends the run with a line
# naming it (tools/misc/torchrun.sh).
set -eo pipefail

CONFIG=$1
NPROC=$2
if [ -z "$CONFIG" ] || [ -z "$NPROC" ]; then
    echo "usage: $0 CONFIG GPUS [train.py options]" >&2
    exit 2
fi
source "$(dirname "$0")/misc/torchrun.sh"
status=0
torchrun_tool dist_train.sh train.py "$CONFIG" --launcher pytorch "${@:3}" \
    || status=$?
exit "$status"
