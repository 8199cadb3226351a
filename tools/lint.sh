#!/usr/bin/env bash
# Lint the package, the tools and the tests with OpenMMLab's set (flake8,
# isort, yapf; settings in setup.cfg). Exit status 0 when all three are
# clean; --fix rewrites the files with isort and yapf first.
#
#   bash tools/lint.sh          # check (what .ci/run does)
#   bash tools/lint.sh --fix    # format in place, then check
set -eo pipefail
cd "$(dirname "$0")/.."
if [ -z "$PYTHON" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
DIRS=(mmgate tools tests)
if [ "$1" = "--fix" ]; then
    "$PYTHON" -m isort "${DIRS[@]}"
    "$PYTHON" -m yapf -r -i -p "${DIRS[@]}"
fi
status=0
"$PYTHON" -m flake8 "${DIRS[@]}" || status=1
"$PYTHON" -m isort --check-only --diff "${DIRS[@]}" || status=1
diff=$("$PYTHON" -m yapf -r -d -p "${DIRS[@]}") || true
if [ -n "$diff" ]; then
    printf '%s\n' "$diff"
    echo "lint.sh: yapf would reformat the files above (bash tools/lint.sh --fix)" >&2
    status=1
fi
if [ "$status" -eq 0 ]; then
    echo "lint.sh: flake8, isort and yapf are clean on ${DIRS[*]}"
fi
exit "$status"
