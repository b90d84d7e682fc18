#!/usr/bin/env bash
# Create .venv and install pgcnn_triton (editable) with its test extras. Idempotent.
#  - CPU machine: the CPU build of torch 2.13.0 and triton 3.6.0 (the GPU machine's version) for the
#    Triton interpreter, which needs numpy < 2.4 with that triton.
#  - CUDA machine (nvidia-smi sees a GPU): the CUDA build of torch, which brings its own triton.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  .venv/bin/pip install -q torch==2.13.0 -e ".[test]"
else
  .venv/bin/pip install -q torch==2.13.0 triton==3.6.0 "numpy>=1.24,<2.4" -e ".[test]"
fi
