"""``podman build --platform P``: the command line for one platform, and what a failure says.

As with buildx (buildx.py), build args go by name (``--build-arg NAME``), their values in the
child's environment, where podman reads them; secrets as ``--secret id=...,src=...|env=...`` and
``--ssh``, their sources only. One platform per build and one tag per platform: podman keeps one
local image per tag whatever its architecture (containers/podman#12682), and ``-t`` with several
platforms keeps one of them (containers/podman#27211). The image is then run by its id.

``--cache-from``/``--cache-to`` are podman's: a registry repository holding the layers (with
``--layers``, podman's default), not buildx's ``type=...`` forms.
"""

from __future__ import annotations

import os
import re

from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import install_emulator_command
from pytest_multiarch.platforms import Platform

# Names the child's environment must keep for podman itself: such a build arg goes on the
# command line with its value (they are never secrets).
_RESERVED = re.compile(
    r"^(PATH|HOME|USER|TMPDIR|SSH_AUTH_SOCK|XDG_.*|CONTAINERS_.*|CONTAINER_.*|BUILDAH_.*|STORAGE_.*|"
    r"REGISTRY_AUTH_FILE|DBUS_.*)$"
)
LOG_TAIL_LINES = 30


def cache_problem(value: str) -> str | None:
    """What is wrong with a --multiarch-cache-from/to value for podman (None: nothing)."""
    if "=" in value or "," in value:
        return (
            "podman takes a registry repository for its layer cache (e.g. 127.0.0.1:5000/app-cache), "
            "not buildx's type=... form"
        )
    return None


def podman_build_command(
    podman: list[str],
    spec: ImageSpec,
    platform: Platform,
    tag: str,
    labels: dict[str, str],
    cache: tuple[str | None, str | None],
) -> tuple[list[str], dict[str, str]]:
    """The command line (no secret value on it) and the environment it needs besides the
    process's own (the build args' values)."""
    command = [*podman, "build", "--platform", str(platform), "--tag", tag, "--file", str(spec.dockerfile)]
    environment: dict[str, str] = {}
    for name, value in spec.build_args.items():
        if _RESERVED.match(name):
            command += ["--build-arg", f"{name}={value}"]
        else:
            command += ["--build-arg", name]
            environment[name] = value
    if spec.target:
        command += ["--target", spec.target]
    if cache[0]:
        command += ["--cache-from", cache[0]]
    if cache[1]:
        command += ["--cache-to", cache[1]]
    for name, value in labels.items():
        command += ["--label", f"{name}={value}"]
    for secret in spec.secrets:
        command += ["--secret", secret.argument()]
    for forwarded in spec.ssh:
        command += ["--ssh", os.path.expanduser(forwarded)]
    command.append(str(spec.context))
    return command, environment


def describe_podman_failure(spec: ImageSpec, platform: Platform, log: list[str]) -> str:
    """The failing step first (podman's ``Error: building at STEP "..."``), then the log's tail."""
    said = next((line for line in reversed(log) if line.startswith("Error:")), "")
    found = re.match(r'^Error: building at STEP "(.*)": (.*)$', said)
    if found:
        step = f"{found.group(1)}\n  {found.group(2)}"
    else:
        steps = [line for line in log if re.match(r"^STEP \d+/\d+: ", line)]
        step = (steps[-1].split(": ", 1)[1] + "\n  " if steps else "") + (said or "see the log below")
    lines = [line for line in log if line.strip()]
    tail = "\n".join(f"  | {line}" for line in lines[-LOG_TAIL_LINES:]) or "  (podman printed nothing)"
    hint = ""
    if any("exec format error" in line for line in log):
        hint = (
            f"\n'exec format error' means this machine cannot run {platform} binaries: install QEMU "
            f"(`{install_emulator_command(platform.arch)}`, or on Debian/Ubuntu "
            f"`apt-get install qemu-user-static binfmt-support`)."
        )
    return (
        f"podman build of {spec.dockerfile} for {platform} failed at step: {step}\n"
        f"last {min(len(lines), LOG_TAIL_LINES)} lines of the build log:\n{tail}{hint}"
    )
