"""Run: a running container of one platform (``MultiarchContainer``), the ``uname -m`` check,
and finding a container a --multiarch-reuse session left running. Starting one is start.py.

Every container the plugin starts carries ``OWNER_LABEL`` (host and pid of the pytest process),
so that the session removes it at the end and a later session removes it if that process was
killed; --multiarch-reuse containers carry the reuse labels instead (and their starter).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import requests
from docker.errors import DockerException as DockerSDKError
from docker.models.containers import Container

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import (
    DOCTOR_HINT,
    CommandTimeout,
    ContainerError,
    EngineGone,
    ExecError,
    ImageMismatch,
)
from pytest_multiarch.http import join_url, probe
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine

REUSE_SLOT_LABEL = "io.github.pytest-multiarch.reuse-slot"
REUSE_KEY_LABEL = "io.github.pytest-multiarch.reuse-key"
# host:pid of the session that started a --multiarch-reuse container: until that session has run
# the container-started hook (and renamed it, see verified_name), only it may be relied on.
REUSE_STARTER_LABEL = "io.github.pytest-multiarch.reuse-starter"


class MultiarchContainer:
    """A running container of one platform's image, ready to be tested."""

    def __init__(
        self,
        container: Container,
        image: BuiltImage,
        port: int | None,
        base_url: str | None,
        port_setting: str,  # where the user sets the port (ImageSpec.setting), for messages
    ) -> None:
        self._container = container
        self.image = image
        self.port = port
        self.base_url = base_url
        self.port_setting = port_setting
        self.ready_seconds = 0.0
        self.reused = False  # found running from an earlier session (--multiarch-reuse)
        # Set by attach(): the engine it runs on, for messages, and the default command timeout.
        self.engine_name = "the Docker engine"
        self.command_timeout: float | None = None
        self.engine_answers: Callable[[], bool] = lambda: True

    @property
    def platform(self) -> Platform:
        return self.image.platform

    @property
    def id(self) -> str:
        return str(self._container.id)

    def url(self, path: str = "/") -> str:
        """URL of ``path`` on the published port, e.g. ``http://127.0.0.1:49153/health``."""
        if self.base_url is None:
            raise ContainerError(
                f"the {self.platform} container publishes no port: its image EXPOSEs none. Set "
                f"{self.port_setting} to the port the app serves."
            )
        return join_url(self.base_url, path)

    def exec(self, cmd: str | list[str], *, timeout: float | None = None) -> str:
        """Run ``cmd`` inside (no shell: a string is split like a shell would) and return stdout.

        Raises ExecError with the exit code and output when it exits non-zero, CommandTimeout
        when it runs longer than ``timeout`` seconds (default: --multiarch-request-timeout,
        scaled for emulation), EngineGone when the engine stops answering.
        """
        seconds = timeout if timeout is not None else self.command_timeout
        shown = cmd if isinstance(cmd, str) else " ".join(cmd)
        with self._engine_call(f"running {shown!r} in it"):
            result = _within(seconds, lambda: self._container.exec_run(cmd, demux=True))
        if result is None:
            raise CommandTimeout(
                f"{shown!r} in the {self.platform} container did not finish within {seconds:g} s. "
                f"Give exec(..., timeout=SECONDS), or raise --multiarch-request-timeout."
            )
        stdout, stderr = (part.decode(errors="replace") if part else "" for part in result.output)
        if result.exit_code != 0:
            raise ExecError(cmd, result.exit_code, stdout + stderr)
        return stdout

    def logs(self) -> str:
        """Everything the container printed so far, stdout and stderr interleaved."""
        with self._engine_call("reading its logs"):
            raw: bytes = self._container.logs(stdout=True, stderr=True)
        return raw.decode(errors="replace")

    @contextlib.contextmanager
    def _engine_call(self, doing: str) -> Iterator[None]:
        """An engine that stopped answering is one EngineGone naming it, not a library traceback."""
        try:
            yield
        except requests.exceptions.ConnectionError as exc:
            raise EngineGone(
                f"{self.engine_name} stopped answering while {doing} ({self.platform} container): "
                f"{_reason(exc)}. Check the engine with `docker info`; {DOCTOR_HINT}"
            ) from None

    def stop(self) -> None:
        """Remove the container (and its anonymous volumes); safe to call twice."""
        try:
            self._container.remove(force=True, v=True)
        except DockerSDKError as exc:
            # Gone, or being removed by another thread of this session (a start giving up).
            if "No such container" not in str(exc) and "is already in progress" not in str(exc):
                raise

    def __repr__(self) -> str:
        return f"<MultiarchContainer {self.platform} {self.image.tag} {self.base_url or 'no port'}>"


T = TypeVar("T")


def _within(seconds: float | None, call: Callable[[], T]) -> T | None:
    """``call()``'s result, or None when it takes longer than ``seconds`` (it goes on in a
    daemon thread until the container is removed); its error is raised here."""
    if seconds is None:
        return call()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="multiarch-exec", daemon=True)
    worker.start()
    worker.join(seconds)
    if failure:
        raise failure[0]
    return outcome[0] if outcome else None


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, in a few words."""
    text = str(exc)
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "Connection aborted", "Connection refused"):
        if marker in text:
            return marker
    return text.split("(Caused by")[0].strip()[:200] or type(exc).__name__


def attach(container: MultiarchContainer, engine: Engine, command_timeout: float) -> MultiarchContainer:
    """Tell ``container`` its engine (for messages and to ask whether it still answers) and its
    default command timeout."""
    container.engine_name = f"the Docker engine at {engine.endpoint.describe()}"
    container.command_timeout = command_timeout
    container.engine_answers = engine.answers
    return container


def port_of(image: BuiltImage, spec: ImageSpec) -> int | None:
    return spec.port or (image.exposed_ports[0] if image.exposed_ports else None)


def reuse_labels(image: BuiltImage, spec: ImageSpec) -> dict[str, str]:
    """Labels of a --multiarch-reuse container: its slot and a key over everything that shapes
    the running container, so that any change replaces it.

    The slot is the declaration (project image, Dockerfile and target) and the platform: a slot
    holds one container, so two declarations of one image name with different targets must not
    share one, or each would replace the other's container."""
    declaration = hashlib.sha256(f"{spec.dockerfile}|{spec.target or ''}".encode()).hexdigest()[:8]
    slot = f"{image.tag.split(':')[0]}:{image.platform.slug}:{declaration}"
    key = hashlib.sha256(f"{image.id}|{port_of(image, spec)}|{spec.ready_path}".encode()).hexdigest()
    return {REUSE_SLOT_LABEL: slot, REUSE_KEY_LABEL: key}


def verified_name(slot: str) -> str:
    """The name a --multiarch-reuse container gets once it answered, passed the ``uname -m`` check
    and its container-started hook ran: engine-side proof, so later sessions reuse it without
    exec'ing into it again. A session killed before that leaves the random name. One per slot,
    as container names are unique."""
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", slot.replace(":", "-"))


def mark_verified(container: MultiarchContainer) -> None:
    """Rename a verified --multiarch-reuse container (best effort: unnamed, the next session
    replaces it once this one has ended)."""
    with contextlib.suppress(Exception):  # the engine's error or a broken connection alike
        container._container.rename(verified_name(container._container.labels[REUSE_SLOT_LABEL]))


@dataclasses.dataclass
class StarterPending:
    """A --multiarch-reuse container another running session (an xdist worker, say) has started
    but not renamed yet: its container-started hook is still due. Waited for outside the slot
    lock (wait_until_renamed), then asked again with ``waited``."""

    container: Container
    verified_name: str


def find_reusable(
    engine: Engine, image: BuiltImage, spec: ImageSpec, *, waited: bool = False, command_timeout: float = 30.0
) -> MultiarchContainer | StarterPending | None:
    """A running container left by an earlier --multiarch-reuse session for exactly this image
    and configuration; containers of the same slot that don't match are removed (replaced).

    One not renamed yet (see verified_name) is relied on only once its starter ran the
    container-started hook: if the starter is gone, it is replaced; else StarterPending, and
    once ``waited`` (in vain) it is shared after a ``uname -m`` check."""
    wanted = reuse_labels(image, spec)
    client = engine.sdk
    found = None
    same_slot = client.containers.list(all=True, filters={"label": f"{REUSE_SLOT_LABEL}={wanted[REUSE_SLOT_LABEL]}"})
    for candidate in same_slot:
        matches = candidate.labels.get(REUSE_KEY_LABEL) == wanted[REUSE_KEY_LABEL]
        if found is None and matches and candidate.status == "running":
            found = candidate
            continue
        with contextlib.suppress(DockerSDKError):
            candidate.remove(force=True, v=True)
    if found is None:
        return None
    port = port_of(image, spec)
    base_url = None
    if port is not None:
        bindings = client.api.port(found.id, port) or []
        if not bindings:
            found.remove(force=True, v=True)
            return None
        base_url = f"http://{engine.container_host}:{bindings[0]['HostPort']}/"
    container = attach(MultiarchContainer(found, image, port, base_url, spec.setting("port")), engine, command_timeout)
    container.reused = True
    name = verified_name(wanted[REUSE_SLOT_LABEL])
    if found.name != name:
        starter = _starter_state(found)
        if starter == "dead":
            with contextlib.suppress(DockerSDKError):
                found.reload()  # renamed by its session just before it ended?
            if found.name != name:
                container.stop()  # it died before its hook (SIGKILL, OOM): never seeded
                return None
        elif not waited:
            return StarterPending(found, name)
        # else: its session runs (or may: another host) but did not finish its hook in time: shared
    try:  # still serving, and (unless verified) the platform it claims: else start afresh
        if base_url is not None:
            answer = probe(join_url(base_url, spec.ready_path), timeout=5)
            if answer.status_code >= 500:
                raise ContainerError(f"HTTP {answer.status_code}")
        if found.name != name:
            check_machine(container)
    except Exception:
        container.stop()
        return None
    return container


def wait_until_renamed(pending: StarterPending, timeout: float, cancelled: Callable[[], bool]) -> None:
    """Until the starting session renamed the container (its hook ran) or removed it (its hook
    failed), at most ``timeout`` seconds, or until this session gives up."""
    deadline = time.monotonic() + timeout
    while not cancelled() and time.monotonic() < deadline:
        try:
            pending.container.reload()
        except DockerSDKError:
            return  # removed
        if pending.container.name == pending.verified_name:
            return
        time.sleep(0.1)


def _starter_state(container: Container) -> str:
    from pytest_multiarch.cleanup import PID_NAMESPACE_LABEL, process_state

    labels = container.labels or {}
    return process_state(labels.get(REUSE_STARTER_LABEL, ""), labels.get(PID_NAMESPACE_LABEL))


def check_machine(container: MultiarchContainer) -> None:
    """``uname -m`` inside must be what the platform's CPU reports: the real run that proves
    emulation works. Images without ``uname`` (distroless, scratch) are not checked."""
    try:
        machine = container.exec(["uname", "-m"]).strip()
    except ExecError:
        return
    except DockerSDKError as exc:  # no uname binary: "executable file not found"
        if "not found" in str(exc) or "no such file" in str(exc).lower():
            return
        raise
    if machine not in container.platform.machines:
        raise ImageMismatch(
            f"the {container.platform} container reports `uname -m` = {machine!r}, expected "
            f"{container.platform.machine!r}: its binaries are for another CPU. Usually the base "
            f"image: a local single-platform tag of the FROM image shadows the registry's "
            f"multi-platform one (Docker even accepts an arm/v7 image for linux/arm64): "
            f"`docker image rm` that tag, or `docker pull --platform {container.platform}` it. "
            f"Else check the QEMU handlers (`python -m pytest_multiarch doctor`)."
        )
