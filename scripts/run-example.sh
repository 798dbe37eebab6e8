#!/usr/bin/env bash
# Set everything up, then run the example project's tests on linux/amd64 and linux/arm64.
# Extra arguments go to pytest. The example's Dockerfile defaults to python:3.12-slim from
# Docker Hub; here its base image comes from the local registry that setup-docker.sh fills.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
REGISTRY=${MULTIARCH_REGISTRY:-127.0.0.1:5000}
cd example_project
exec ../.venv/bin/python -m pytest -v --multiarch-build-arg "BASE_IMAGE=$REGISTRY/multiarch/python:3" "$@"
