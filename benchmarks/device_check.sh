#!/usr/bin/env bash
# One GPU check within a wall-clock limit (--budget seconds, default 400): kernels against their
# references, end-to-end rows, scaling, kernel timing (benchmarks/device_check.py). On a machine without CUDA it runs tiny shapes
# through the Triton interpreter, which is how CI tests this script.
# Runs from the checkout (PYTHONPATH=.), since the GPU machine cannot install anything.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import einops" 2>/dev/null; then
  # the GPU machine may lack einops: use a carried copy of the pure-Python package if there is one
  vendored=$(ls -d .venv/lib/python3*/site-packages/einops 2>/dev/null | head -1 || true)
  if [ -n "$vendored" ]; then
    mkdir -p /tmp/pgcnn_vendor && cp -r "$vendored" /tmp/pgcnn_vendor/
    export PYTHONPATH="$PYTHONPATH:/tmp/pgcnn_vendor"
  else
    echo "einops is not importable and no copy was carried (.venv/lib/python3*/site-packages/einops)" >&2
    exit 2
  fi
fi
if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  export TRITON_INTERPRET=0
  export PGCNN_AUTOTUNE="${PGCNN_AUTOTUNE:-quick}"
else
  export TRITON_INTERPRET=1
fi
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/device_check.py "$@"
