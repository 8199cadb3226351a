#!/usr/bin/env bash
# The embedded CPU demos: generate the demo data (if absent), evaluate the
# untrained model, train, evaluate the trained one, print the numbers.
#
#   bash tools/run_demo.sh det   # Cascade Mask R-CNN + SkipResNet-18, COCO format
#   bash tools/run_demo.sh seg   # UPerNet + SkipResNet-18, ADE20k layout
#   bash tools/run_demo.sh cls   # SkipResNet-18 classifier, ImageNet layout
#   bash tools/run_demo.sh det --cfg-options train_cfg.max_epochs=1
#
# PYTHON picks the interpreter (default: .venv/bin/python if present, else
# python). Details: tools/misc/run_demo.py.
set -eo pipefail
cd "$(dirname "$0")/.."
if [ -z "$PYTHON" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
case "$1" in
    det|seg|cls) ;;
    *) echo "usage: $0 {det,seg,cls} [tools/train.py options]" >&2; exit 2 ;;
esac
exec "$PYTHON" tools/misc/run_demo.py "$@"
