#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite. Extra arguments go to pytest: test paths run only those
# (bash scripts/test.sh tests/test_groups.py -x); options alone (-x, -k NAME) run the whole suite, which
# pytest finds through testpaths = ["tests"] in pyproject.toml when no path is given.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One pytest-xdist worker per core, each with one intra-op thread: two workers with two OpenMP
# threads each oversubscribe a 2-core machine (measured: 200 s instead of 150 s for the suite).
# --maxschedchunk 1 hands out tests one by one, so the long tests that tests/conftest.py starts
# first spread over the workers.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/python -m pytest -q -n auto --dist load --maxschedchunk 1 "$@"
