"""Start: run a built image as its platform on its engine and wait until it is ready.

Containers are created through the engine's own docker-py client (engine.py), not through
testcontainers' ``DockerContainer``: that one makes its own client from the process's
environment (and writes DOCKER_HOST into ``os.environ`` when it finds a context), and its Ryuk
switch is process-wide, so it could neither target one engine per platform nor leave the
user's own testcontainers untouched. The plugin removes its containers itself (cleanup.py).
Separate from run.py so that a run that reuses running containers never loads this path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.cleanup import namespace_label, owner_labels, process_identity
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.emulators import crash_error
from pytest_multiarch.enginefaults import connection_errors, docker_errors, request_errors, unless_missing
from pytest_multiarch.errors import ContainerError, EmulatorCrash, EngineRefused, ImageMismatch
from pytest_multiarch.http import join_url, probe
from pytest_multiarch.names import REUSE_STARTER_LABEL
from pytest_multiarch.reuse import reuse_labels
from pytest_multiarch.run import MultiarchContainer, check_machine, port_of
from pytest_multiarch.secrets import secret_masker

if TYPE_CHECKING:
    from docker.models.containers import Container

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
        except connection_errors():
            return "nothing accepted the connection: no process listens on that port (yet)"
        except request_errors() as exc:
            return type(exc).__name__ + ": " + str(exc).split("(Caused by")[0].strip()
        return None if response.status_code < 500 else f"HTTP {response.status_code}"


def _raise_if_exited(container: Container) -> None:
    container.reload()
    if container.status in ("exited", "dead"):
        state: dict[str, Any] = container.attrs.get("State", {})
        tail = _log_tail(container)
        raise ContainerError(
            f"the container exited during start with exit code {state.get('ExitCode')}"
            f"{' (' + state['Error'] + ')' if state.get('Error') else ''}"
            f"{' (killed: out of memory)' if state.get('OOMKilled') else ''}.\n{tail}",
            state.get("ExitCode"),
            tail,
        )


def _log_tail(container: Container) -> str:
    try:
        raw = container.logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES)
    except docker_errors():
        return "(its logs could not be read)"
    text = raw.decode(errors="replace").rstrip()
    if not text:
        return "The container printed nothing."
    return f"Last {LOG_TAIL_LINES} lines of its logs:\n" + "\n".join(f"  | {ln}" for ln in text.splitlines())


@dataclasses.dataclass(frozen=True)
class ContainerPlan:
    """A container to create, decided from the image, its spec and the engine's publish address
    alone (plan_container): what start_container then asks the engine for."""

    labels: dict[str, str]
    port: int | None  # the app's port, probed for readiness
    published: tuple[int, ...]  # every container port to publish, the app's first
    ports: dict[str, Any]  # docker-py's ports=: "8080/tcp" -> (host ip, None) or None
    options: dict[str, Any]  # environment, command, entrypoint
    ready_path: str | None  # polled over HTTP; None: ready once running, or by its logs
    ready_log: str | None
    where: str  # what is waited for, for messages
    advice: str


def plan_container(
    image: BuiltImage, spec: ImageSpec, *, publish_ip: str, labels: dict[str, str], environment: dict[str, str] | None
) -> ContainerPlan:
    """The container of ``image`` as ``spec`` configures it: its port (``spec.port``, else the
    first of ``spec.ports``, else the image's lowest EXPOSEd one), what is published and where
    (``publish_ip``: the loopback for a local engine; "" every address of the engine's host),
    and how readiness is told."""
    port = port_of(image, spec)
    published = tuple(dict.fromkeys(p for p in (port, *spec.ports) if p is not None))
    # (host_ip, None): a free port on that address; None: every address of the engine's host.
    ports = {f"{p}/tcp": (publish_ip, None) if publish_ip else None for p in published}
    options: dict[str, Any] = {"environment": environment or {}}
    if spec.command is not None:
        options["command"] = list(spec.command)
    if spec.entrypoint is not None:
        options["entrypoint"] = list(spec.entrypoint)
    exposed = ", ".join(map(str, image.exposed_ports)) or "no port"
    where = f"container port {port}; the image EXPOSEs {exposed}"
    advice = f"Check {spec.setting('port')} and {spec.setting('ready_path')}, or raise --multiarch-timeout."
    if spec.ready_log is not None:
        where, advice = f"its logs, for {spec.ready_log!r}", f"Check {spec.setting('ready_log')}."
    probed = port is not None and spec.ready_log is None and spec.ready_path is not None
    return ContainerPlan(
        labels,
        port,
        published,
        ports,
        options,
        spec.ready_path or "/" if probed else None,
        spec.ready_log,
        where,
        advice,
    )


@dataclasses.dataclass(frozen=True)
class ContainerSetup:
    """How the session sets a container up beyond its spec: the ``environment`` it gets (its
    secret-named values hidden in messages), the session ``network`` it joins, as ``alias``
    (None: the engine's default network), and whether it is a --multiarch-reuse container
    (``reuse``: labelled to be found again, it outlives the session)."""

    environment: dict[str, str] | None = None
    network: str | None = None
    alias: str | None = None
    reuse: bool = False


def start_container(
    engine: Engine,
    image: BuiltImage,
    spec: ImageSpec,
    setup: ContainerSetup | None = None,
    *,
    timeout: float,
    command_timeout: float | None = None,
    on_created: Callable[[MultiarchContainer], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> MultiarchContainer:
    """Start ``image`` as its platform on ``engine``, publish its port (on the loopback for a
    local engine), wait until ready, and check ``uname -m`` inside. On any failure the container
    is removed before raising.

    ``on_created`` gets the container as soon as it exists, so that cleanup knows it even when
    the session ends while it is still starting. ``setup`` (ContainerSetup), ``spec.command``
    and ``spec.entrypoint`` configure it.
    """
    setup = setup or ContainerSetup()
    labels = _labels(image, spec, reuse=setup.reuse)
    plan = plan_container(image, spec, publish_ip=engine.publish_ip, labels=labels, environment=setup.environment)
    sdk = engine.sdk
    _check_image_is_there(sdk, image)
    options = dict(plan.options)
    if setup.network is not None:
        endpoint = sdk.api.create_endpoint_config(aliases=[setup.alias] if setup.alias else None)
        options.update(network=setup.network, networking_config={setup.network: endpoint})
    started = time.monotonic()
    inner = _create(sdk, image, plan.labels, plan.ports, options)
    container = MultiarchContainer(
        inner,
        image,
        engine,
        command_timeout=command_timeout or timeout,
        port=plan.port,
        port_setting=spec.setting("port"),
    )
    try:
        if on_created is not None:
            on_created(container)
        _start(inner, image)
        _raise_if_exited(inner)  # an exited container has no port mapping to look up
        _publish(container, inner, plan, engine)
        _check_then_wait(container, inner, plan, timeout, cancelled)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            inner.remove(force=True, v=True)
        named = _named(exc, engine, image, setup.environment)
        if named is not None:
            raise named from None
        raise
    container.ready_seconds = time.monotonic() - started
    return container


def _labels(image: BuiltImage, spec: ImageSpec, *, reuse: bool) -> dict[str, str]:
    """The container's labels: the owner label that has cleanup remove it, or for a
    --multiarch-reuse container the labels a later session finds it by, and who started it."""
    if reuse:
        return {**reuse_labels(image, spec), REUSE_STARTER_LABEL: process_identity(), **namespace_label()}
    return owner_labels()


def _check_then_wait(
    container: MultiarchContainer, inner: Container, plan: ContainerPlan, timeout: float, cancelled: Callable[[], bool]
) -> None:
    """The ``uname -m`` check, then readiness as ``plan`` says. The check first: under QEMU it
    runs while the app is still booting, instead of after. A container that exited meanwhile is
    reported by its exit code and logs, not by the call that failed on it."""
    try:
        check_machine(container, timeout=max(timeout, container.command_timeout or 0))
    except docker_errors(EngineRefused):
        _raise_if_exited(inner)  # "is not running": say how it exited, with its logs
        raise
    ready_url = join_url(container.base_url, plan.ready_path) if plan.ready_path and container.base_url else None
    ReadyWhenServing(ready_url, timeout, plan.where, cancelled, plan.advice, plan.ready_log).wait_until_ready(inner)


def _check_image_is_there(sdk: Any, image: BuiltImage) -> None:
    """By id, as the tag may be reused meanwhile: for a missing image (another session of this
    project pruned it, `docker image prune`) the engine would try a pull from Docker Hub, and
    fail with a message about that."""
    if unless_missing(lambda: sdk.images.get(image.id)) is None:
        pulled = image.source == "pulled"
        raise ContainerError(
            f"the {image.platform} image {image.tag} is gone: removed since it was "
            f"{'pulled' if pulled else 'built or found'} (by `docker image prune`, say"
            f"{'' if pulled else ', or by another pytest session of this project removing older builds'}). "
            f"Run pytest again to {'pull' if pulled else 'build'} it anew."
        )


def _publish(container: MultiarchContainer, inner: Container, plan: ContainerPlan, engine: Engine) -> None:
    """The host port the engine gave each published container port, as URLs."""
    for each in plan.published:
        bindings = engine.sdk.api.port(inner.id, each) or []
        if not bindings:
            _raise_if_exited(inner)  # it exited since the last look: its mapping went with it
            raise ContainerError(f"the engine published no host port for container port {each}")
        container.urls[each] = f"http://{engine.container_host}:{bindings[0]['HostPort']}/"
    container.base_url = container.urls.get(plan.port) if plan.port is not None else None


def _named(
    exc: BaseException, engine: Engine, image: BuiltImage, environment: dict[str, str] | None
) -> BaseException | None:
    """What a failed start raises instead of ``exc``: QEMU's crash named as such, and the
    container's logs (in the message) with secret-named values of its environment hidden.
    None: ``exc`` as it is."""
    crash = None
    if isinstance(exc, ContainerError) and exc.exit_code is not None:  # it exited
        crash = crash_error(engine, image.platform, "the container", exc.exit_code, exc.logs)
    shown = crash or exc
    masked = secret_masker({}, environment or {})(str(shown))
    if isinstance(shown, (ContainerError, ImageMismatch, EmulatorCrash)) and (masked != str(shown) or crash):
        return type(shown)(masked)
    return None


def _create(
    sdk: Any, image: BuiltImage, labels: dict[str, str], ports: dict[str, Any], options: dict[str, Any]
) -> Container:
    """Create (the image is loaded, so nothing is pulled); engine errors → ContainerError."""
    try:
        return sdk.containers.create(
            image.id, platform=str(image.platform), labels=labels, ports=ports, detach=True, **options
        )
    except docker_errors() as exc:
        raise ContainerError(
            f"the engine could not create a {image.platform} container of {image.tag}: {_first_line(exc)}"
        ) from None


def _start(inner: Container, image: BuiltImage) -> None:
    """Start it; engine errors → ContainerError."""
    try:
        inner.start()
    except docker_errors() as exc:
        raise ContainerError(
            f"the engine could not start a {image.platform} container of {image.tag}: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
