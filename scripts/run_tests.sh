#!/usr/bin/env bash
# Sets up whatever is missing, then runs the whole test suite (no ../shared needed).
# Extra arguments go to pytest, e.g. `scripts/run_tests.sh -m benchmark` for the opt-in
# runs over ../shared/benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q "$@"
