"""Run: start a built image as its platform with testcontainers, wait until it is ready.

Every container carries ``OWNER_LABEL`` (host and pid of the pytest process) so that the
session removes it at the end, and a later session removes it if that process was killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import requests

# The Ryuk reaper image is pulled from Docker Hub, which may be unreachable; the plugin removes
# its own containers (see cleanup.py), so Ryuk is off unless the user turned it on.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import docker
from docker.errors import DockerException as DockerSDKError
from docker.models.containers import Container
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.cleanup import OWNER_LABEL, owner_id
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import ContainerError, ExecError, ImageMismatch
from pytest_multiarch.platforms import Platform

REUSE_SLOT_LABEL = "io.github.pytest-multiarch.reuse-slot"
REUSE_KEY_LABEL = "io.github.pytest-multiarch.reuse-key"
LOG_TAIL_LINES = 40
_POLL_SECONDS = 0.2


class MultiarchContainer:
    """A running container of one platform's image, ready to be tested."""

    def __init__(self, container: Container, image: BuiltImage, port: int | None, base_url: str | None) -> None:
        self._container = container
        self.image = image
        self.port = port
        self.base_url = base_url
        self.ready_seconds = 0.0
        self.reused = False  # found running from an earlier session (--multiarch-reuse)

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
                f"--multiarch-port (ini multiarch_port) to the port the app serves."
            )
        return urljoin(self.base_url, path.lstrip("/"))

    def exec(self, cmd: str | list[str]) -> str:
        """Run ``cmd`` inside (no shell: a string is split like a shell would) and return stdout.

        Raises ExecError with the exit code and output when it exits non-zero.
        """
        result = self._container.exec_run(cmd, demux=True)
        stdout, stderr = (part.decode(errors="replace") if part else "" for part in result.output)
        if result.exit_code != 0:
            raise ExecError(cmd, result.exit_code, stdout + stderr)
        return stdout

    def logs(self) -> str:
        """Everything the container printed so far, stdout and stderr interleaved."""
        raw: bytes = self._container.logs(stdout=True, stderr=True)
        return raw.decode(errors="replace")

    def stop(self) -> None:
        """Remove the container (and its anonymous volumes); safe to call twice."""
        try:
            self._container.remove(force=True, v=True)
        except DockerSDKError as exc:
            if "No such container" not in str(exc):
                raise

    def __repr__(self) -> str:
        return f"<MultiarchContainer {self.platform} {self.image.tag} {self.base_url or 'no port'}>"


class ReadyWhenServing(WaitStrategy):
    """Poll an HTTP path until it answers < 500, failing at once if the container exits.

    testcontainers' HttpWaitStrategy would keep polling a dead container until its timeout.
    """

    def __init__(
        self, url: str | None, timeout: float, where: str = "", cancelled: Callable[[], bool] = lambda: False
    ) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout
        self.cancelled = cancelled
        self.where = where  # "container port 8000; the image EXPOSEs 8000", for the message

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        deadline = time.monotonic() + self.timeout
        last_error = "no answer yet"
        while True:
            if self.cancelled():
                raise ContainerError("the session ended while the container was starting")
            _raise_if_exited(container)
            if self.url is None:
                return  # nothing to poll: running is ready
            try:
                response = requests.get(self.url, timeout=2)
                if response.status_code < 500:
                    return
                last_error = f"HTTP {response.status_code}"
            except requests.ConnectionError:
                last_error = "nothing accepted the connection: no process listens on that port (yet)"
            except requests.RequestException as exc:
                last_error = type(exc).__name__ + ": " + str(exc).split("(Caused by")[0].strip()
            if time.monotonic() > deadline:
                _raise_if_exited(container)
                raise ContainerError(
                    f"the container never became ready: {self.url} ({self.where}) did not answer with a "
                    f"status < 500 within {self.timeout:g} s; last error: {last_error}. Check "
                    f"--multiarch-port and --multiarch-ready-path, or raise --multiarch-timeout.\n"
                    f"{_log_tail(container)}"
                )
            time.sleep(_POLL_SECONDS)


def _raise_if_exited(container: WaitStrategyTarget) -> None:
    container.reload()
    if container.status in ("exited", "dead"):
        state: dict[str, Any] = container.get_wrapped_container().attrs.get("State", {})
        raise ContainerError(
            f"the container exited during start with exit code {state.get('ExitCode')}"
            f"{' (' + state['Error'] + ')' if state.get('Error') else ''}"
            f"{' (killed: out of memory)' if state.get('OOMKilled') else ''}.\n{_log_tail(container)}"
        )


def _log_tail(container: WaitStrategyTarget) -> str:
    try:
        raw = container.get_wrapped_container().logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES)
    except DockerSDKError:
        return "(its logs could not be read)"
    text = raw.decode(errors="replace").rstrip()
    if not text:
        return "The container printed nothing."
    return f"Last {LOG_TAIL_LINES} lines of its logs:\n" + "\n".join(f"  | {ln}" for ln in text.splitlines())


def start_container(
    image: BuiltImage,
    spec: ImageSpec,
    *,
    timeout: float,
    reuse: bool = False,
    on_created: Callable[[MultiarchContainer], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> MultiarchContainer:
    """Start ``image`` as its platform, publish its port on 127.0.0.1, wait until ready,
    and check ``uname -m`` inside. On any failure the container is removed before raising.

    ``on_created`` gets the container as soon as it exists, so that cleanup knows it even when
    the session ends while it is still starting. With ``reuse`` it carries the reuse labels
    instead of the owner label and outlives the session.
    """
    port = _port_of(image, spec)
    labels = reuse_labels(image, spec) if reuse else {OWNER_LABEL: owner_id()}
    inner = DockerContainer(image.tag, platform=str(image.platform), labels=labels)
    if port is not None:
        # docker-py takes (host_ip, host_port); None picks a free port. Loopback only.
        inner.ports[f"{port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
    started = time.monotonic()
    try:
        _start(inner, image)
        base_url = None
        _raise_if_exited(inner)  # an exited container has no port mapping to look up
        if port is not None:
            host_port = inner.get_docker_client().port(inner.get_container_id(), port)
            base_url = f"http://127.0.0.1:{host_port}/"
        container = MultiarchContainer(inner.get_wrapped_container(), image, port, base_url)
        if on_created is not None:
            on_created(container)
        ready_url = urljoin(base_url, spec.ready_path.lstrip("/")) if base_url else None
        exposed = ", ".join(map(str, image.exposed_ports)) or "no port"
        where = f"container port {port}; the image EXPOSEs {exposed}"
        ReadyWhenServing(ready_url, timeout, where, cancelled).wait_until_ready(inner)
        check_machine(container)
    except BaseException:
        try:
            inner.stop(force=True, delete_volume=True)
        except Exception:
            pass
        raise
    container.ready_seconds = time.monotonic() - started
    return container


def _port_of(image: BuiltImage, spec: ImageSpec) -> int | None:
    return spec.port or (image.exposed_ports[0] if image.exposed_ports else None)


def reuse_labels(image: BuiltImage, spec: ImageSpec) -> dict[str, str]:
    """Labels of a --multiarch-reuse container: its slot (project image and platform) and a key
    over everything that shapes the running container, so that any change replaces it."""
    slot = f"{image.tag.split(':')[0]}:{image.platform.slug}"
    key = hashlib.sha256(f"{image.id}|{_port_of(image, spec)}|{spec.ready_path}".encode()).hexdigest()
    return {REUSE_SLOT_LABEL: slot, REUSE_KEY_LABEL: key}


def find_reusable(image: BuiltImage, spec: ImageSpec) -> MultiarchContainer | None:
    """A running container left by an earlier --multiarch-reuse session for exactly this image
    and configuration; containers of the same slot that don't match are removed (replaced)."""
    wanted = reuse_labels(image, spec)
    client = docker.from_env()
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
    port = _port_of(image, spec)
    base_url = None
    if port is not None:
        bindings = client.api.port(found.id, port) or []
        if not bindings:
            found.remove(force=True, v=True)
            return None
        base_url = f"http://127.0.0.1:{bindings[0]['HostPort']}/"
    container = MultiarchContainer(found, image, port, base_url)
    container.reused = True
    try:  # still serving, and still the platform it claims: else start afresh
        if base_url is not None:
            answer = requests.get(urljoin(base_url, spec.ready_path.lstrip("/")), timeout=5)
            if answer.status_code >= 500:
                raise ContainerError(f"HTTP {answer.status_code}")
        check_machine(container)
    except Exception:
        container.stop()
        return None
    return container


def _start(inner: DockerContainer, image: BuiltImage) -> None:
    """Create and start (the image is loaded, so nothing is pulled); engine errors → ContainerError."""
    try:
        inner.start()
    except DockerSDKError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContainerError(
            f"the engine could not start a {image.platform} container of {image.tag}: {reason}"
        ) from None


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
            f"{container.platform.machine!r}: the engine ran it as another platform. Check the "
            f"QEMU handlers (`python -m pytest_multiarch doctor`)."
        )
