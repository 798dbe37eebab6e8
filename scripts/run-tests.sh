#!/usr/bin/env bash
# Set everything up, then lint and run pytest-multiarch's own test suite (unit tests and the
# Docker-backed tests on linux/amd64 and linux/arm64). Extra arguments go to pytest.
# With CI=true a skipped Docker-backed test fails the run (see conftest.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
