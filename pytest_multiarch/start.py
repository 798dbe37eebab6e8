"""Start: run a built image as its platform with testcontainers and wait until it is ready.

Separate from run.py so that a run that reuses running containers (--multiarch-reuse) never
loads testcontainers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import requests

# The Ryuk reaper image is pulled from Docker Hub, which may be unreachable; the plugin removes
# its own containers (see cleanup.py), so Ryuk is off unless the user turned it on.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from docker.errors import DockerException as DockerSDKError
from docker.errors import ImageNotFound
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.cleanup import namespace_label, owner_labels, process_identity
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import ContainerError
from pytest_multiarch.http import join_url, probe
from pytest_multiarch.run import REUSE_STARTER_LABEL, MultiarchContainer, check_machine, port_of, reuse_labels

LOG_TAIL_LINES = 40
# Asking the port is cheap (a refused connection), asking the engine whether the container
# exited is not: poll the first often, so a ready app is noticed within a few hundredths of a
# second, and the second a few times a second.
_POLL_SECONDS = 0.025
_EXIT_CHECK_SECONDS = 0.25


class ReadyWhenServing(WaitStrategy):
    """Poll an HTTP path until it answers < 500, failing at once if the container exits.

    testcontainers' HttpWaitStrategy would keep polling a dead container until its timeout.
    """

    def __init__(
        self,
        url: str | None,
        timeout: float,
        where: str,
        cancelled: Callable[[], bool],
        advice: str,  # what to check, naming where the user sets it (ImageSpec.setting)
    ) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout
        self.cancelled = cancelled
        self.where = where  # "container port 8000; the image EXPOSEs 8000", for the message
        self.advice = advice

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        deadline = time.monotonic() + self.timeout
        last_error = "no answer yet"
        exit_checked = 0.0
        while True:
            if self.cancelled():
                raise ContainerError("the session ended while the container was starting")
            if self.url is None or time.monotonic() - exit_checked >= _EXIT_CHECK_SECONDS:
                _raise_if_exited(container)
                exit_checked = time.monotonic()
            if self.url is None:
                return  # nothing to poll: running is ready
            try:
                response = probe(self.url, timeout=2)
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
                    f"status < 500 within {self.timeout:g} s; last error: {last_error}. {self.advice}\n"
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
    port = port_of(image, spec)
    if reuse:
        labels = {**reuse_labels(image, spec), REUSE_STARTER_LABEL: process_identity(), **namespace_label()}
    else:
        labels = owner_labels()
    # By id, as the tag may be reused meanwhile; and first made sure the image is there: for a
    # missing one (another session of this project pruned it, `docker image prune`) docker-py
    # would try a pull from Docker Hub, and fail with a message about that.
    inner = DockerContainer(image.id, platform=str(image.platform), labels=labels)
    try:
        inner.get_docker_client().client.images.get(image.id)
    except ImageNotFound:
        pulled = image.key.startswith("sha256:")  # --multiarch-image: a manifest digest, not a build key
        raise ContainerError(
            f"the {image.platform} image {image.tag} is gone: removed since it was "
            f"{'pulled' if pulled else 'built or found'} (by `docker image prune`, say"
            f"{'' if pulled else ', or by another pytest session of this project removing older builds'}). "
            f"Run pytest again to {'pull' if pulled else 'build'} it anew."
        ) from None
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
        container = MultiarchContainer(inner.get_wrapped_container(), image, port, base_url, spec.setting("port"))
        if on_created is not None:
            on_created(container)
        ready_url = join_url(base_url, spec.ready_path) if base_url else None
        exposed = ", ".join(map(str, image.exposed_ports)) or "no port"
        where = f"container port {port}; the image EXPOSEs {exposed}"
        advice = f"Check {spec.setting('port')} and {spec.setting('ready_path')}, or raise --multiarch-timeout."
        # uname first: under QEMU it runs while the app is still booting, instead of after.
        try:
            check_machine(container)
        except DockerSDKError:
            _raise_if_exited(inner)  # "is not running": say how it exited, with its logs
            raise
        ReadyWhenServing(ready_url, timeout, where, cancelled, advice).wait_until_ready(inner)
    except BaseException:
        try:
            inner.stop(force=True, delete_volume=True)
        except Exception:
            pass
        raise
    container.ready_seconds = time.monotonic() - started
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
