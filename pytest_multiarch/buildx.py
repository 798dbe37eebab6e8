"""``docker buildx build``, run for one platform through that platform's engine's CLI.

The command line is built and run here rather than by python-on-whales' ``buildx.build``, which
puts build args on it as ``--build-arg NAME=VALUE``: visible to every local user in ``ps`` while
the build runs (and loading python-on-whales costs 0.16 s of CPU before the first build). Build
args go as ``--build-arg NAME``, their values in the child's environment, as buildx reads them;
secrets as ``--secret id=...,src=...|env=...`` and ``--ssh``, their sources only. The log is
masked line by line.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pytest_multiarch import environ
from pytest_multiarch.buildargs import shared_build_arguments
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import DOCTOR_HINT, BuildError, install_emulator_command
from pytest_multiarch.platforms import Platform
from pytest_multiarch.secrets import secret_masker

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine

LOG_TAIL_LINES = 30
_running: set[subprocess.Popen[str]] = set()  # the builds under way, for end_running_builds
_running_lock = threading.Lock()
# Names the child's environment must keep for the docker CLI itself: such a build arg goes on
# the command line with its value (they are never secrets).
_RESERVED = re.compile(r"^(PATH|HOME|USER|TMPDIR|SSH_AUTH_SOCK|DOCKER_.*|BUILDX_.*|BUILDKIT_.*)$")


def run_buildx(
    engine: Engine,
    spec: ImageSpec,
    platform: Platform,
    tag: str,
    labels: dict[str, str],
    on_line: Callable[[str], None] | None,
    cache: tuple[str | None, str | None],
    *,
    flags: Sequence[str] = (),
) -> None:
    """Build ``spec`` for ``platform`` and load it into ``engine`` as ``tag``; BuildError with
    the failing step and the log's tail (masked) when it fails."""
    podman = engine.runtime == "podman"
    if podman:  # podman build, its own command line and failure message (podmanbuild.py)
        from pytest_multiarch.podmanbuild import describe_podman_failure, podman_build_command

        command, environment = podman_build_command(
            engine.docker_command(), spec, platform, tag, labels, cache, flags=flags
        )
    else:
        command, environment = buildx_command(
            engine.cli_command(), spec, platform, tag, labels, cache, engine.builder, flags=flags
        )
    mask = secret_masker(spec.build_args, spec.environment, [secret.value() for secret in spec.secrets])
    log: list[str] = []
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # buildx writes its log to stderr: one stream, in order
            stdin=subprocess.DEVNULL,
            env={**environ.snapshot(), **environment},  # os.environ changes meanwhile
            encoding="utf-8",  # what buildx writes, whatever the locale: masking needs the exact text
            errors="replace",
        )
    except OSError as exc:  # no docker CLI: the preflight says so first, unless it was removed since
        raise BuildError(f"could not run the {command[0]} CLI: {exc}. {DOCTOR_HINT}") from None
    assert process.stdout is not None
    with _running_lock:
        _running.add(process)
    try:
        with process:
            for line in process.stdout:
                line = mask(line.rstrip("\n"))
                log.append(line)
                if on_line is not None:
                    on_line(line)
    finally:
        with _running_lock:
            _running.discard(process)
    # The command line is never shown: it may hold build args' values (reserved names).
    if process.returncode != 0:
        lost = None if podman else _engine_lost(engine, log)  # podman builds without its service
        if lost is not None:
            raise engine.gone(f"building {spec.dockerfile} for {platform}", lost)
        raise BuildError((describe_podman_failure if podman else describe_build_failure)(spec, platform, log))


# What buildx prints when it loses the engine (BuildKit's gRPC stream, the docker CLI's dial),
# not when a step fails: a step's own network trouble is a "#N ERROR" line of that step.
_LOST_SIGNS = (
    "error reading from server",
    "code = Unavailable",
    "Cannot connect to the Docker daemon",
    "error during connect",
)


def _engine_lost(engine: Engine, log: list[str]) -> str | None:
    """Why a failed build is the engine's loss, not the Dockerfile's (None when it is not): the
    engine does not answer now, or buildx's final error says the connection to it broke."""
    said = next((line.removeprefix("ERROR: ") for line in reversed(log) if line.startswith("ERROR")), "")
    if engine.answers() and not any(sign in said for sign in _LOST_SIGNS):
        return None
    return f"buildx said {said or 'nothing'!r}; the build did not fail on its own"


def end_running_builds(grace: float = 5.0) -> int:
    """Terminate every build this process started that still runs (the session stopped by a
    signal, say), then kill those still there after ``grace`` seconds; on any system. Returns how
    many were running."""
    with _running_lock:
        running = list(_running)
    for process in running:
        with contextlib.suppress(OSError):
            process.terminate()
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                process.kill()
    return len(running)


def buildx_command(
    docker: list[str],
    spec: ImageSpec,
    platform: Platform,
    tag: str,
    labels: dict[str, str],
    cache: tuple[str | None, str | None],
    builder: str | None,
    *,
    flags: Sequence[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """The command line (no secret value on it) and the environment it needs besides the
    process's own (the build args' values)."""
    command = [*docker, "buildx", "build", "--platform", str(platform), "--load", "--progress", "plain"]
    command += ["--tag", tag, "--file", str(spec.dockerfile)]
    if builder:
        command += ["--builder", builder]
    shared, environment = shared_build_arguments(spec, labels, cache, _RESERVED)
    command += [*shared, *flags, str(spec.context)]  # flags: --no-cache, --pull
    return command, environment


def describe_build_failure(spec: ImageSpec, platform: Platform, log: list[str]) -> str:
    """The failing step first, then the last lines of the log."""
    step = None
    errors = [m for m in (re.match(r"^#(\d+) ERROR: (.*)", line) for line in log) if m]
    if errors:
        step_id, reason = errors[-1].group(1), errors[-1].group(2)
        header = next((ln for ln in log if re.match(rf"^#{step_id} \[", ln)), None)
        if header:
            step = f"{header.split(' ', 1)[1]}\n  {reason}"
    if step is None:
        step = next((ln for ln in reversed(log) if ln.startswith("ERROR")), "see the log below")
    lines = [line for line in log if line.strip()]
    tail = "\n".join(f"  | {line}" for line in lines[-LOG_TAIL_LINES:]) or "  (buildx printed nothing)"
    hint = ""
    if any("exec format error" in line for line in log):
        hint = (
            f"\n'exec format error' means this builder cannot run {platform} binaries: install "
            f"QEMU (`{install_emulator_command(platform.arch)}`). " + DOCTOR_HINT
        )
    return (
        f"build of {spec.dockerfile} for {platform} failed at step: {step}\n"
        f"last {min(len(lines), LOG_TAIL_LINES)} lines of the build log:\n{tail}{hint}"
    )
