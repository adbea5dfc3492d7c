#!/usr/bin/env bash
# Set up spicecross (with the test data) and run the test suite.
# Extra arguments go to pytest, for example: bash scripts/test.sh -m "not ngspice"
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/scripts/setup.sh" --test-data
cd "$repo"
exec "$repo/.venv/bin/python" -m pytest -m "not slow" "$@"
