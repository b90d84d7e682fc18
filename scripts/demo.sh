#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the offline demo on the bundled MNIST digits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/demo.py "$@"
