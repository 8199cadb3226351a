#!/usr/bin/env bash
# Create .venv in the checkout and install mmgate's whole stack into it.
#
#   bash tools/setup_env.sh            # CPU machine (uses torch from pip)
#   PYTHON=python3.11 bash tools/setup_env.sh
#
# Every version comes from tools/env/constraints.txt (the one place with pins).
# mmcv 2.1.0 is built from its source package with its C++ ops (RoIAlign, NMS,
# ...). The built wheel is kept in a cache keyed by the torch build it was
# compiled against and the compiler flags
# (${MMGATE_CACHE:-~/.cache/mmgate}/wheels/<torch-build>-cflags-<hash>/), so a
# second run, or a new .venv on the same machine, takes seconds. A wheel built
# for another torch, or with other flags, is never reused. mmcv (that wheel),
# mmengine, mmdet, mmsegmentation, mmpretrain and mmgate are then installed in
# one pip resolver pass.
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
# (the C sources too: the editable install builds mmgate's fused-junction
# kernel next to them)
want_stamp="$(cat "$CONSTRAINTS" "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" "$ROOT"/mmgate/ops/csrc/*.c | sha256sum | cut -c1-16)"
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
# The wheel cache: keyed by the torch build and the compiler flags.
torch_tag="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_") + ("_cuda" + torch.version.cuda if (torch.version.cuda and __import__("os").environ.get("FORCE_CUDA") == "1") else "_cpu"))')"
# Compiler flags: Python's own (-DNDEBUG -O3 ...: torch's extension build
# takes them from distutils) with debug info off. setuptools' distutils
# *replaces* Python's CFLAGS with $CFLAGS when that is set (setuptools 81), so
# CFLAGS=-g0 alone would build mmcv at -O0: the flags are spelled out in full.
# -g0 leaves the machine code as it is (the same bytes as with -g) and halves
# the compile time; -O2 would save no time. CXXFLAGS the same, for setuptools
# and torch versions that compile C++ with it.
build_flags="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")') ${CFLAGS:-} -g0"
build_flags="$(printf '%s' "$build_flags" | tr -s ' ' | sed 's/^ //; s/ $//')"
flags_tag="$(printf '%s' "$build_flags" | sha256sum | cut -c1-8)"
wheel_dir="$CACHE/wheels/torch-$torch_tag-cflags-$flags_tag"

mmcv_req="mmcv==$MMCV_VERSION"
if have_ops; then
  log "mmcv $MMCV_VERSION with ops already installed"
  # pip records the wheel an mmcv came from; one from elsewhere (an older
  # build of this script: until its flags were fixed, mmcv was built -O0) is
  # kept, but say how to replace it.
  from_wheel="$("$PY" -c 'import json, importlib.metadata as m; print(json.loads(m.distribution("mmcv").read_text("direct_url.json") or "{}").get("url", ""))' 2>/dev/null || true)"
  case "$from_wheel" in
    "file://$wheel_dir/"*) ;;
    *) log "note: this mmcv was not built with the flags above ($build_flags); to rebuild it: $PY -m pip uninstall -y mmcv && bash tools/setup_env.sh" ;;
  esac
else
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
    log "building mmcv $MMCV_VERSION with ops (MAX_JOBS=$MAX_JOBS; flags: $build_flags)"
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" \
      CFLAGS="$build_flags" CXXFLAGS="$build_flags" \
      "${PIP[@]}" wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$work/dist" .)
    cp "$work"/dist/mmcv-"$MMCV_VERSION"-*.whl "$wheel_dir"/
    wheel="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
  else
    log "reusing $wheel (built against torch $torch_tag)"
  fi
  # pip keeps an installed mmcv of the same version rather than a local wheel
  # of it: a build without ops goes first (the wheel comes in below).
  "${PIP[@]}" uninstall -q -y mmcv >/dev/null 2>&1 || true
  mmcv_req="$wheel"
fi

# ---- the OpenMMLab stack and mmgate ----------------------------------------
log "OpenMMLab packages and mmgate (editable, with test extras): one resolver pass"
# One pip run resolves mmcv (the wheel, or the mmcv with ops already here)
# together with the packages that depend on it, all held to the constraints.
# mmsegmentation imports ftfy and regex without declaring them.
"${PIP[@]}" install -q -c "$CONSTRAINTS" \
  "$mmcv_req" mmengine mmdet mmsegmentation mmpretrain ftfy regex \
  -e "$ROOT[tests]"
have_ops || { log "mmcv ops do not import after the install"; exit 1; }
"$PY" -c "import mmdet, mmseg, mmpretrain, mmgate; print('mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmpretrain', mmpretrain.__version__)"
# mmgate's fused-junction kernel (built by the editable install; without a C
# compiler the gates run on the slower eager path)
"$PY" -c "from mmgate.ops import kernel_status; print('mmgate fused junction kernel:', kernel_status())"
echo "$want_stamp" > "$STAMP"
log "done: activate with 'source .venv/bin/activate'"
