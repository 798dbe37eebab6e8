"""``podman build --platform P``: the command line for one platform, and what a failure says.

As with buildx (buildx.py), build args go by name (``--build-arg NAME``), their values in the
child's environment, where podman reads them; secrets as ``--secret id=...,src=...|env=...`` and
``--ssh``, their sources only. One platform per build and one tag per platform: podman keeps one
local image per tag whatever its architecture (containers/podman#12682), and ``-t`` with several
platforms keeps one of them (containers/podman#27211). The image is then run by its id.

Builds take turns (``build_turn``): two platforms' builds FROM one tag would race for that
tag in podman's storage. ``--cache-from``/``--cache-to`` are podman's: a registry repository holding the layers (with
``--layers``, podman's default), not buildx's ``type=...`` forms.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pytest_multiarch.buildargs import shared_build_arguments
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import BuildError, install_emulator_command
from pytest_multiarch.platforms import Platform

# Names the child's environment must keep for podman itself: such a build arg goes on the
# command line with its value (they are never secrets).
_RESERVED = re.compile(
    r"^(PATH|HOME|USER|TMPDIR|SSH_AUTH_SOCK|XDG_.*|CONTAINERS_.*|CONTAINER_.*|BUILDAH_.*|STORAGE_.*|"
    r"REGISTRY_AUTH_FILE|DBUS_.*)$"
)
LOG_TAIL_LINES = 30
_TURN = Path(tempfile.gettempdir()) / f"pytest-multiarch-locks-{os.getuid() if hasattr(os, 'getuid') else 0}"


@contextlib.contextmanager
def build_turn(runtime: str, cancelled: Callable[[], bool]) -> Iterator[None]:
    """With podman, one build at a time on this machine (per user, across processes): two builds
    of different platforms FROM the same tag would race for that tag, which podman keeps for one
    architecture only (each build pulls its platform under it; the other then finds its image
    gone: "locating pulled image ... image not known"). BuildError when the session ends while
    waiting. Nothing to wait for with Docker."""
    if runtime != "podman":
        yield
        return
    from filelock import FileLock, Timeout

    _TURN.mkdir(parents=True, exist_ok=True)
    lock = FileLock(_TURN / "podman-build.lock")
    while True:
        try:
            lock.acquire(timeout=0.25)
            break
        except Timeout:
            if cancelled():
                raise BuildError(
                    "the session ended while this build waited for another podman build to finish"
                ) from None
    try:
        yield
    finally:
        lock.release()


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
    flags: Sequence[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """The command line (no secret value on it) and the environment it needs besides the
    process's own (the build args' values). ``flags``: --no-cache, --pull (podman's --pull=always)."""
    command = [*podman, "build", "--platform", str(platform), "--tag", tag, "--file", str(spec.dockerfile)]
    shared, environment = shared_build_arguments(spec, labels, cache, _RESERVED)
    command += [*shared, *("--pull=always" if flag == "--pull" else flag for flag in flags), str(spec.context)]
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
