#!/usr/bin/env bash
# Set everything up, then lint and run pytest-multiarch's own test suite (unit tests and the
# Docker-backed tests on linux/amd64 and linux/arm64). Extra arguments go to pytest.
# With CI=true a skipped Docker-backed test fails the run, as does one in which none passed (see
# conftest.py), and the wheel check (scripts/wheel-check.sh) runs before the suite;
# MULTIARCH_WHEEL_CHECK=1 or 0 forces it on or off.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
# The CI files against the schemas that check-jsonschema ships (no network needed): this
# project's workflows and the recipes of docs/ci.md.
.venv/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml docs/ci/github-actions-*.yml
.venv/bin/check-jsonschema --builtin-schema vendor.gitlab-ci docs/ci/gitlab-ci*.yml
case "${MULTIARCH_WHEEL_CHECK:-${CI:-}}" in
  1 | true | TRUE | True | yes) bash scripts/wheel-check.sh ;;
  *) echo "[run-tests] wheel check skipped (it runs with CI=true or MULTIARCH_WHEEL_CHECK=1)" >&2 ;;
esac
# Tests run on MULTIARCH_TEST_WORKERS pytest-xdist workers (3: most of a Docker-backed test is
# waiting for the engine, QEMU or a subprocess session, so 3 keep 2 cores busy); tests that share
# something on the machine take turns (tests/conftest.py's shared_by and _one_at_a_time).
# MULTIARCH_TEST_WORKERS=0 runs them all in this process, one after another.
exec .venv/bin/python -m pytest -n "${MULTIARCH_TEST_WORKERS:-3}" "$@"
