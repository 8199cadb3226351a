#!/usr/bin/env bash
# Distributed testing with torchrun (MMDetection's command line):
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py options]
#
# NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON as in dist_train.sh.
set -eo pipefail

CONFIG=$1
CHECKPOINT=$2
NPROC=$3
if [ -z "$CONFIG" ] || [ -z "$CHECKPOINT" ] || [ -z "$NPROC" ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py options]" >&2
    exit 2
fi
source "$(dirname "$0")/misc/torchrun.sh"
status=0
torchrun_tool dist_test.sh test.py "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "${@:4}" || status=$?
exit "$status"
