"""``multiarch_run``: run an image once as one platform, as ``docker run --rm --platform`` does,
and give back its exit code and output: for CLI tools and batch images, whose command exits.

A non-zero exit is a result, not an exception; a run that takes longer than its timeout (scaled
for emulation, like readiness) is an error naming the platform and the command, and its container
is removed. The container is tracked from its creation, so an interrupted run removes it too.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_multiarch import cleanup
from pytest_multiarch.build import BuiltImage
from pytest_multiarch.emulators import crash_error
from pytest_multiarch.enginefaults import request_errors, timed_out
from pytest_multiarch.errors import MultiarchError
from pytest_multiarch.run import MultiarchContainer

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine


class RunTimeout(MultiarchError):
    """A ``multiarch_run`` command did not exit within its timeout."""


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What one run of the image did."""

    exit_code: int
    stdout: str
    stderr: str
    command: tuple[str, ...]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclasses.dataclass(frozen=True)
class RunCommand:
    """What one run executes: ``args`` replace the image's CMD, ``entrypoint`` its ENTRYPOINT;
    its environment, and what its standard input reads (None: none)."""

    args: Sequence[str]
    entrypoint: Sequence[str] | None = None
    environment: Mapping[str, str] | None = None
    stdin: bytes | str | None = None

    @property
    def shown(self) -> tuple[str, ...]:
        """The command line, for messages and the result."""
        return tuple(str(a) for a in (*(self.entrypoint or ()), *self.args)) or ("(its own command)",)


def run_once(
    engine: Engine,
    image: BuiltImage,
    run: RunCommand,
    *,
    tracker: cleanup.Tracker,
    timeout: float,
    network: str | None = None,
    on_created: Callable[[str], None] | None = None,
    create_options: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``image`` once on ``engine`` as ``run`` says, on ``network`` if given.
    ``create_options``: more of docker-py's ``containers.create`` keywords (user, privileged,
    cap_add, volumes, tty: structure tests' containerRunOptions)."""
    shown = run.shown
    stdin = run.stdin
    options = _create_options(run, network, create_options)
    about = f"`{' '.join(shown)}` on {image.platform}"
    with engine.call(f"creating the {image.platform} container of {image.tag}"):
        inner = engine.sdk.containers.create(image.id, platform=str(image.platform), detach=stdin is None, **options)
    handle = MultiarchContainer(inner, image, engine, command_timeout=timeout)
    tracker.track(handle)
    try:
        with engine.call(f"running {about}"):
            if on_created is not None:
                on_created(inner.id)
            if stdin is not None:
                _start_with_input(engine.sdk, inner, stdin.encode() if isinstance(stdin, str) else stdin)
            else:
                inner.start()
            exit_code = _exit_code(engine, inner, timeout, about)
        with engine.call(f"reading the output of {about}"):
            stdout = inner.logs(stdout=True, stderr=False).decode(errors="replace")
            stderr = inner.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        tracker.remove(handle)
    crash = crash_error(engine, image.platform, f"the run {about}", exit_code, stdout + stderr)
    if crash is not None:  # not the application's result: QEMU's crash, named as such
        raise crash
    return RunResult(exit_code, stdout, stderr, shown)


def _create_options(run: RunCommand, network: str | None, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """docker-py's ``containers.create`` keywords for ``run`` (``extra`` first, then the
    command, environment, owner labels, standard input and network, which win)."""
    options: dict[str, Any] = {**(extra or {})}
    options |= {"environment": dict(run.environment or {}), "labels": cleanup.owner_labels()}
    if run.args:
        options["command"] = [str(a) for a in run.args]
    if run.entrypoint is not None:
        options["entrypoint"] = [str(a) for a in run.entrypoint]
    if run.stdin is not None:
        options["stdin_open"] = True  # with detach=False docker-py also sets StdinOnce: EOF closes it
    if network is not None:
        options["network"] = network
    return options


def _exit_code(engine: Engine, inner: Any, timeout: float, about: str) -> int:
    """The run's exit code, waiting at most ``timeout`` seconds: RunTimeout when it runs longer
    (the engine still answers); what the engine raised otherwise, for Engine.call to name."""
    try:
        return int(inner.wait(timeout=timeout)["StatusCode"])
    except request_errors() as exc:
        if timed_out(exc) and engine.answers():
            raise RunTimeout(
                f"{about} did not exit within {timeout:g} s. "
                f"Give multiarch_run(..., timeout=SECONDS), or raise --multiarch-timeout (5x when emulated)."
            ) from None
        raise


def _start_with_input(sdk: Any, inner: Any, data: bytes) -> None:
    """Attach to the container's stdin, start it, write ``data`` and close its input."""
    attached = sdk.api.attach_socket(inner.id, params={"stdin": 1, "stream": 1})
    raw = getattr(attached, "_sock", attached)
    try:
        inner.start()
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
    finally:
        attached.close()
