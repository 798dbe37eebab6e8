"""Start: run a built image as its platform on its engine and wait until it is ready.

Containers are created through the engine's own docker-py client (engine.py), not through
testcontainers' ``DockerContainer``: that one makes its own client from the process's
environment (and writes DOCKER_HOST into ``os.environ`` when it finds a context), and its Ryuk
switch is process-wide, so it could neither target one engine per platform nor leave the
user's own testcontainers untouched. The plugin removes its containers itself (cleanup.py).
Separate from run.py so that a run that reuses running containers never loads this path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests
from docker.errors import DockerException as DockerSDKError
from docker.errors import ImageNotFound
from docker.models.containers import Container

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.cleanup import namespace_label, owner_labels, process_identity
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.emulators import crash_error
from pytest_multiarch.errors import ContainerError, EmulatorCrash, ImageMismatch
from pytest_multiarch.http import join_url, probe
from pytest_multiarch.names import REUSE_STARTER_LABEL
from pytest_multiarch.reuse import reuse_labels
from pytest_multiarch.run import MultiarchContainer, check_machine, port_of
from pytest_multiarch.secrets import secret_masker

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine

LOG_TAIL_LINES = 40
# Asking the port is cheap (a refused connection), asking the engine whether the container
# exited is not: poll the first often, so a ready app is noticed within a few hundredths of a
# second, and the second a few times a second.
_POLL_SECONDS = 0.025
_EXIT_CHECK_SECONDS = 0.25


class ReadyWhenServing:
    """Poll an HTTP path until it answers < 500, failing at once if the container exits
    (testcontainers' HttpWaitStrategy would keep polling a dead container until its timeout)."""

    def __init__(
        self,
        url: str | None,
        timeout: float,
        where: str,
        cancelled: Callable[[], bool],
        advice: str,  # what to check, naming where the user sets it (ImageSpec.setting)
        ready_log: str | None = None,  # ready once this text is in its logs, instead of an HTTP answer
    ) -> None:
        self.url = url
        self.ready_log = ready_log
        self.timeout = timeout
        self.cancelled = cancelled
        self.where = where  # "container port 8000; the image EXPOSEs 8000", for the message
        self.advice = advice

    def wait_until_ready(self, container: Container) -> None:
        deadline = time.monotonic() + self.timeout
        last_error = "no answer yet"
        exit_checked = 0.0
        while True:
            if self.cancelled():
                raise ContainerError("the session ended while the container was starting")
            polling_http = self.url is not None
            if not polling_http or time.monotonic() - exit_checked >= _EXIT_CHECK_SECONDS:
                _raise_if_exited(container)
                exit_checked = time.monotonic()
            if self.ready_log is not None:
                if self.ready_log in container.logs(stdout=True, stderr=True).decode(errors="replace"):
                    return
                last_error = f"{self.ready_log!r} not in its logs yet"
            elif not polling_http:
                return  # nothing to poll: running is ready
            else:
                last_error = self._probe() or ""
                if not last_error:
                    return
            if time.monotonic() > deadline:
                _raise_if_exited(container)
                what = self.url if polling_http else "the container"
                raise ContainerError(
                    f"the container never became ready: {what} ({self.where}) "
                    f"{'did not answer with a status < 500' if polling_http else 'did not log it'} within "
                    f"{self.timeout:g} s; last error: {last_error}. {self.advice}\n{_log_tail(container)}"
                )
            time.sleep(_POLL_SECONDS if polling_http else _EXIT_CHECK_SECONDS)

    def _probe(self) -> str | None:
        """None when the app answered < 500, else what went wrong."""
        assert self.url is not None
        try:
            response = probe(self.url, timeout=2)
        except requests.ConnectionError:
            return "nothing accepted the connection: no process listens on that port (yet)"
        except requests.RequestException as exc:
            return type(exc).__name__ + ": " + str(exc).split("(Caused by")[0].strip()
        return None if response.status_code < 500 else f"HTTP {response.status_code}"


class ContainerExited(ContainerError):
    """The container exited while it was starting: ``exit_code`` and ``logs`` (its tail)."""

    def __init__(self, message: str, exit_code: int | None = None, logs: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.logs = logs


def _raise_if_exited(container: Container) -> None:
    container.reload()
    if container.status in ("exited", "dead"):
        state: dict[str, Any] = container.attrs.get("State", {})
        tail = _log_tail(container)
        raise ContainerExited(
            f"the container exited during start with exit code {state.get('ExitCode')}"
            f"{' (' + state['Error'] + ')' if state.get('Error') else ''}"
            f"{' (killed: out of memory)' if state.get('OOMKilled') else ''}.\n{tail}",
            state.get("ExitCode"),
            tail,
        )


def _log_tail(container: Container) -> str:
    try:
        raw = container.logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES)
    except DockerSDKError:
        return "(its logs could not be read)"
    text = raw.decode(errors="replace").rstrip()
    if not text:
        return "The container printed nothing."
    return f"Last {LOG_TAIL_LINES} lines of its logs:\n" + "\n".join(f"  | {ln}" for ln in text.splitlines())


def start_container(
    engine: Engine,
    image: BuiltImage,
    spec: ImageSpec,
    *,
    timeout: float,
    command_timeout: float | None = None,
    reuse: bool = False,
    on_created: Callable[[MultiarchContainer], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    environment: dict[str, str] | None = None,
    network: str | None = None,
    alias: str | None = None,
) -> MultiarchContainer:
    """Start ``image`` as its platform on ``engine``, publish its port (on the loopback for a
    local engine), wait until ready, and check ``uname -m`` inside. On any failure the container
    is removed before raising.

    ``on_created`` gets the container as soon as it exists, so that cleanup knows it even when
    the session ends while it is still starting. With ``reuse`` it carries the reuse labels
    instead of the owner label and outlives the session. ``environment``, ``spec.command`` and
    ``spec.entrypoint`` configure it; on ``network`` other containers reach it as ``alias``.
    """
    port = port_of(image, spec)
    if reuse:
        labels = {**reuse_labels(image, spec), REUSE_STARTER_LABEL: process_identity(), **namespace_label()}
    else:
        labels = owner_labels()
    sdk = engine.sdk
    # By id, as the tag may be reused meanwhile; and first made sure the image is there: for a
    # missing one (another session of this project pruned it, `docker image prune`) the engine
    # would try a pull from Docker Hub, and fail with a message about that.
    try:
        sdk.images.get(image.id)
    except ImageNotFound:
        pulled = image.source == "pulled"
        raise ContainerError(
            f"the {image.platform} image {image.tag} is gone: removed since it was "
            f"{'pulled' if pulled else 'built or found'} (by `docker image prune`, say"
            f"{'' if pulled else ', or by another pytest session of this project removing older builds'}). "
            f"Run pytest again to {'pull' if pulled else 'build'} it anew."
        ) from None
    published = list(dict.fromkeys(p for p in (port, *spec.ports) if p is not None))
    # (host_ip, None): a free port on that address; None: every address of the engine's host.
    ports = {f"{p}/tcp": (engine.publish_ip, None) if engine.publish_ip else None for p in published}
    options: dict[str, Any] = {"environment": environment or {}}
    if spec.command is not None:
        options["command"] = list(spec.command)
    if spec.entrypoint is not None:
        options["entrypoint"] = list(spec.entrypoint)
    if network is not None:
        endpoint = sdk.api.create_endpoint_config(aliases=[alias] if alias else None)
        options.update(network=network, networking_config={network: endpoint})
    started = time.monotonic()
    inner = _create(sdk, image, labels, ports, options)
    try:
        container = MultiarchContainer(
            inner,
            image,
            engine,
            command_timeout=command_timeout or timeout,
            port=port,
            port_setting=spec.setting("port"),
        )
        if on_created is not None:
            on_created(container)
        _start(inner, image)
        _raise_if_exited(inner)  # an exited container has no port mapping to look up
        for each in published:
            bindings = sdk.api.port(inner.id, each) or []
            if not bindings:
                raise ContainerError(f"the engine published no host port for container port {each}")
            container.urls[each] = f"http://{engine.container_host}:{bindings[0]['HostPort']}/"
        container.base_url = container.urls.get(port) if port is not None else None
        probed = container.base_url if spec.ready_log is None and spec.ready_path is not None else None
        ready_url = join_url(probed, spec.ready_path or "/") if probed else None
        exposed = ", ".join(map(str, image.exposed_ports)) or "no port"
        where = f"container port {port}; the image EXPOSEs {exposed}"
        advice = f"Check {spec.setting('port')} and {spec.setting('ready_path')}, or raise --multiarch-timeout."
        # uname first: under QEMU it runs while the app is still booting, instead of after.
        try:
            check_machine(container)
        except DockerSDKError:
            _raise_if_exited(inner)  # "is not running": say how it exited, with its logs
            raise
        if spec.ready_log is not None:
            where, advice = f"its logs, for {spec.ready_log!r}", f"Check {spec.setting('ready_log')}."
        ReadyWhenServing(ready_url, timeout, where, cancelled, advice, spec.ready_log).wait_until_ready(inner)
    except BaseException as exc:
        crash = None
        try:
            inner.remove(force=True, v=True)
        except Exception:
            pass
        if isinstance(exc, ContainerExited):  # QEMU's crash, named as such
            crash = crash_error(engine, image.platform, "the container", exc.exit_code, exc.logs)
            exc = crash or exc
        # Its logs (in the message) may print the environment: hide secret-named values.
        masked = secret_masker({}, environment or {})(str(exc))
        if isinstance(exc, (ContainerError, ImageMismatch, EmulatorCrash)) and (masked != str(exc) or crash):
            raise type(exc)(masked) from None
        raise
    container.ready_seconds = time.monotonic() - started
    return container


def _create(
    sdk: Any, image: BuiltImage, labels: dict[str, str], ports: dict[str, Any], options: dict[str, Any]
) -> Container:
    """Create (the image is loaded, so nothing is pulled); engine errors → ContainerError."""
    try:
        return sdk.containers.create(
            image.id, platform=str(image.platform), labels=labels, ports=ports, detach=True, **options
        )
    except DockerSDKError as exc:
        raise ContainerError(
            f"the engine could not create a {image.platform} container of {image.tag}: {_first_line(exc)}"
        ) from None


def _start(inner: Container, image: BuiltImage) -> None:
    """Start it; engine errors → ContainerError."""
    try:
        inner.start()
    except DockerSDKError as exc:
        raise ContainerError(
            f"the engine could not start a {image.platform} container of {image.tag}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
