#!/usr/bin/env bash
# Everything a fresh machine needs before any test: Docker with buildx, QEMU, the local registry
# and base images (setup-docker.sh), a second engine standing in for a remote host
# (remote-engine.sh), podman (setup-podman.sh), then a virtualenv in .venv with this package installed.
# Idempotent; a second run takes a few seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-docker.sh
# A second engine on 127.0.0.2 (tcp:// and ssh://) for the remote-engine tests; started before
# any test container, as starting it disturbs the first engine's default bridge (see the script).
if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null 2>&1; then
  bash scripts/remote-engine.sh start
else
  echo "[setup] not root: the remote-engine tests need \`sudo bash scripts/remote-engine.sh start\`" >&2
fi
# Podman (--multiarch-runtime podman) for the podman tests, configured for the local registry.
bash scripts/setup-podman.sh

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import pytest_multiarch, ruff, xdist, mypy, check_jsonschema, build" >/dev/null 2>&1 \
  || [ pyproject.toml -nt .venv/.installed ]; then
  echo "[setup] installing pytest-multiarch and its test dependencies into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  touch .venv/.installed
fi
