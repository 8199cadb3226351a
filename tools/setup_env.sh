#!/usr/bin/env bash
# Create .venv in the checkout and install mmgate's whole stack into it.
#
#   bash tools/setup_env.sh            # CPU machine (uses torch from pip)
#   PYTHON=python3.11 bash tools/setup_env.sh
#
# Every version comes from tools/env/constraints.txt (the one place with pins).
# mmcv 2.1.0 is built from its source package with its C++ ops (RoIAlign, NMS,
# ...). The built wheel is kept in a cache keyed by the torch build it was
# compiled against (${MMGATE_CACHE:-~/.cache/mmgate}/wheels/<torch-build>/), so a
# second run, or a new .venv on the same machine, takes seconds. A wheel built
# for another torch is never reused.
#
# GPU users: install the CUDA build of torch 2.14.1 / torchvision 0.29.1 that
# matches your driver into .venv first (for example with pip's --index-url for
# your CUDA version) and keep FORCE_CUDA=1 in the environment; the steps below
# are the same and compile mmcv's CUDA kernels too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
CONSTRAINTS="$ROOT/tools/env/constraints.txt"
CACHE="${MMGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmgate}"
MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export MAX_JOBS

log() { printf '[setup_env] %s\n' "$*"; }

pin() {  # pin NAME -> the exact version constraints.txt gives NAME
  sed -n "s/^$1==\([^[:space:]]*\).*/\1/p" "$CONSTRAINTS"
}

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

# A stamp of the constraints and this script: when both are unchanged and the
# stack imports, there is nothing to do.
STAMP="$VENV/.mmgate-stack"
want_stamp="$(cat "$CONSTRAINTS" "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" | sha256sum | cut -c1-16)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] \
   && "$PY" -c "import mmcv.ops, mmdet, mmseg, mmpretrain, mmgate" >/dev/null 2>&1; then
  log "stack already installed ($want_stamp); nothing to do"
  exit 0
fi

log "build tools and torch"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "setuptools>=77.0.3,<82" wheel ninja
"${PIP[@]}" install -q -c "$CONSTRAINTS" torch torchvision numpy

# ---- mmcv with its C++ ops -------------------------------------------------
MMCV_VERSION="$(pin mmcv)"
have_ops() {
  "$PY" - "$MMCV_VERSION" <<'EOF' >/dev/null 2>&1
import sys
import mmcv
from mmcv.ops import nms, roi_align  # noqa: F401  (needs the compiled _ext)
assert mmcv.__version__ == sys.argv[1], mmcv.__version__
EOF
}
if have_ops; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  torch_tag="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_") + ("_cuda" + torch.version.cuda if (torch.version.cuda and __import__("os").environ.get("FORCE_CUDA") == "1") else "_cpu"))')"
  wheel_dir="$CACHE/wheels/torch-$torch_tag"
  mkdir -p "$wheel_dir"
  wheel="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$wheel" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    log "fetching the mmcv $MMCV_VERSION source package"
    # --no-build-isolation: mmcv's setup.py imports torch and pkg_resources,
    # which only this venv has (setuptools < 82).
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
      -d "$work" "mmcv==$MMCV_VERSION"
    tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
    src="$work/mmcv-$MMCV_VERSION"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    grep -q -- '-std=c++20' "$src/setup.py" || { log "could not raise mmcv's C++ standard"; exit 1; }
    log "building mmcv $MMCV_VERSION with ops (MAX_JOBS=$MAX_JOBS; without debug info)"
    # Python's own CFLAGS carry -g; debug info over torch's headers dominates
    # the compile time. CFLAGS is appended after them, so -g0 wins; the code
    # generated (-O3) is unchanged, so RoIAlign / NMS run the same.
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" CFLAGS="${CFLAGS:-} -g0" \
      "${PIP[@]}" wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$work/dist" .)
    cp "$work"/dist/mmcv-"$MMCV_VERSION"-*.whl "$wheel_dir"/
    wheel="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
  else
    log "reusing $wheel (built against torch $torch_tag)"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall --no-cache-dir "$wheel"
fi

# ---- the OpenMMLab stack and mmgate ----------------------------------------
log "OpenMMLab packages and mmgate (editable, with test extras)"
# mmsegmentation imports ftfy and regex without declaring them.
"${PIP[@]}" install -q -c "$CONSTRAINTS" \
  "mmcv==$MMCV_VERSION" mmengine mmdet mmsegmentation mmpretrain ftfy regex \
  -e "$ROOT[tests]"
have_ops || { log "mmcv ops do not import after the install"; exit 1; }
"$PY" -c "import mmdet, mmseg, mmpretrain, mmgate; print('mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmpretrain', mmpretrain.__version__)"
echo "$want_stamp" > "$STAMP"
log "done: activate with 'source .venv/bin/activate'"
