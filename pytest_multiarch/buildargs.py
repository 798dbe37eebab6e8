"""The arguments a build takes alike from buildx and from podman build (buildx.py, podmanbuild.py):
the one place that decides how build args, secrets and labels reach the builder's command line."""

from __future__ import annotations

import os
import re

from pytest_multiarch.config import ImageSpec


def shared_build_arguments(
    spec: ImageSpec, labels: dict[str, str], cache: tuple[str | None, str | None], reserved: re.Pattern[str]
) -> tuple[list[str], dict[str, str]]:
    """What buildx and podman build take alike: build args by name, their values in the returned
    environment, never on the command line (except those ``reserved`` for the CLI's own
    environment, never secrets), target, cache, labels, secrets by source, ssh."""
    arguments: list[str] = []
    environment: dict[str, str] = {}
    for name, value in spec.build_args.items():
        if reserved.match(name):
            arguments += ["--build-arg", f"{name}={value}"]
        else:
            arguments += ["--build-arg", name]
            environment[name] = value
    if spec.target:
        arguments += ["--target", spec.target]
    if cache[0]:
        arguments += ["--cache-from", cache[0]]
    if cache[1]:
        arguments += ["--cache-to", cache[1]]
    for name, value in labels.items():
        arguments += ["--label", f"{name}={value}"]
    for secret in spec.secrets:
        arguments += ["--secret", secret.argument()]
    for forwarded in spec.ssh:
        arguments += ["--ssh", os.path.expanduser(forwarded)]
    return arguments, environment
