#!/usr/bin/env bash
# The one-shot GPU check (benchmarks/gpu_check.py): run from anywhere, arguments passed on.
# Where the machine's Python lacks pydantic (the one pipeline package it needs beyond torch, torchvision,
# numpy, pandas, pyyaml, pillow and tqdm) and has no package index, bring wheels: `make gpu-wheels` here
# fills .whl/, which this installs into a folder of its own before the check.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import pydantic" 2>/dev/null; then
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "error: pydantic is missing and .whl/ holds no wheels: pip install pydantic, or run make gpu-wheels where pip works and bring .whl/" >&2
    exit 2
  fi
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/isample-gpu-check-site .whl/*.whl
  export PYTHONPATH=/tmp/isample-gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
exec "$PYTHON" -m benchmarks.gpu_check "$@"
