#!/usr/bin/env bash
# Create .venv and install pgcnn_triton (editable) with its test and docs extras. Idempotent.
#  - CPU machine: the CPU build of torch 2.13.0 and triton 3.6.0 (the GPU machine's version) for the
#    Triton interpreter, which needs numpy < 2.4 with that triton.
#  - CUDA machine (nvidia-smi sees a GPU): the CUDA build of torch, which brings its own triton.
# The install is skipped when nothing that decides it changed since the last one: .venv/.setup-stamp
# holds a hash of pyproject.toml, setup.py, this script and the torch build (cpu / cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  build=cuda
else
  build=cpu
fi
stamp=.venv/.setup-stamp
want="$( { cat pyproject.toml setup.py scripts/setup.sh; echo "torch build: $build"; } | sha256sum | cut -d' ' -f1)"
# the stamp alone is not enough: the package must still be installed in this venv (a pip uninstall, a new venv)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
   .venv/bin/python -c "import importlib.metadata as m; m.version('pgcnn_triton')" 2>/dev/null; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
rm -f "$stamp"
if [ "$build" = cuda ]; then
  .venv/bin/pip install -q torch==2.13.0 "setuptools>=77" -e ".[test,docs]"
else
  .venv/bin/pip install -q torch==2.13.0 triton==3.6.0 "numpy>=1.24,<2.4" "setuptools>=77" -e ".[test,docs]"
fi
echo "$want" > "$stamp"
