#!/usr/bin/env bash
# The README main job: set up .venv (scripts/setup.sh), then the offline MNIST6-180 experiment on the
# bundled digits: a partial and a full SE(2) G-CNN, a results table and the learned θ per layer.
# Extra arguments go to examples/mnist6.py (e.g. --variant mirror, --epochs 8, --out-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/mnist6.py --variant 180 "$@"
