"""Run: a running container of one platform (``MultiarchContainer``: URLs, exec, files, logs,
removal) and the ``uname -m`` check. Starting one is start.py; finding one an earlier
--multiarch-reuse session left running is reuse.py."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tarfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.emulators import crash_error
from pytest_multiarch.enginefaults import already_removed, docker_errors, unless_missing
from pytest_multiarch.errors import (
    CommandTimeout,
    ContainerError,
    EngineRefused,
    ExecError,
    ImageMismatch,
)
from pytest_multiarch.http import join_url
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from docker.models.containers import Container

    from pytest_multiarch.engine import Engine


class MultiarchContainer:
    """A running container of one platform's image, ready to be tested."""

    def __init__(
        self,
        container: Container,
        image: BuiltImage,
        engine: Engine,
        *,
        command_timeout: float,
        port: int | None = None,
        base_url: str | None = None,
        port_setting: str = "the command",  # where the user sets the port (ImageSpec.setting), for messages
        reused: bool = False,
    ) -> None:
        """Every field at once: the engine it runs on (for its calls, its messages, and to ask
        whether it still answers) and the default timeout of its commands."""
        self._container = container
        self.image = image
        self.port = port
        self.base_url = base_url
        self.port_setting = port_setting
        self.urls: dict[int, str] = {port: base_url} if port is not None and base_url else {}  # per port
        self.ready_seconds = 0.0
        self.reused = reused  # found running from an earlier session (--multiarch-reuse)
        self.engine: Engine | None = engine
        self.engine_name = f"the Docker engine at {engine.endpoint.describe()}"
        self.command_timeout: float | None = command_timeout
        self.engine_answers: Callable[[], bool] = engine.answers

    @property
    def platform(self) -> Platform:
        return self.image.platform

    @property
    def id(self) -> str:
        return str(self._container.id)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._container.labels or {})

    def rename(self, name: str) -> None:
        """Give the container ``name`` on its engine (a verified --multiarch-reuse container)."""
        with self._engine_call(f"renaming it to {name}"):
            self._container.rename(name)

    def url(self, path: str = "/", *, port: int | None = None) -> str:
        """URL of ``path`` on the published port (or on container port ``port``, one of those
        declared with ``ports=``), e.g. ``http://127.0.0.1:49153/health``."""
        if port is not None:
            if port not in self.urls:
                published = ", ".join(map(str, sorted(self.urls))) or "none"
                raise ContainerError(
                    f"the {self.platform} container does not publish port {port} (it publishes {published}). "
                    f"Declare it with ports=[{port}] in multiarch_fixtures."
                )
            return join_url(self.urls[port], path)
        if self.base_url is None:
            raise ContainerError(
                f"the {self.platform} container publishes no port: its image EXPOSEs none and none is "
                f"declared. Set {self.port_setting} to the port the app serves."
            )
        return join_url(self.base_url, path)

    def read_file(self, path: str) -> bytes:
        """The content of file ``path`` inside the container, read through the engine's archive
        API: no shell or tool is needed in the image. ContainerError if it is not a file."""
        with self._engine_call(f"reading {path}"):
            member, data = _archived(self._container, path)
        if member is None or not member.isfile() or data is None:
            kind = "missing" if member is None else "not a regular file"
            raise ContainerError(f"{path} in the {self.platform} container is {kind}.")
        return data

    def file_info(self, path: str) -> FileInfo:
        """What ``ls -ld`` would say of ``path`` (without needing ``ls`` in the image): whether
        it exists, its mode, owner, size and symlink target."""
        with self._engine_call(f"looking at {path}"):
            member, _ = _archived(self._container, path, content=False)
        if member is None:
            return FileInfo(path=path, exists=False)
        return FileInfo(
            path=path,
            exists=True,
            mode=member.mode,
            uid=member.uid,
            gid=member.gid,
            size=member.size,
            is_dir=member.isdir(),
            is_file=member.isfile(),
            link_target=member.linkname if member.issym() else None,
        )

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
            if self.engine is not None:  # QEMU's crash, named as such
                crash = crash_error(
                    self.engine, self.platform, f"{shown!r} in the container", result.exit_code, stdout + stderr
                )
                if crash is not None:
                    raise crash
            raise ExecError(cmd, result.exit_code, stdout + stderr)
        return stdout

    def logs(self) -> str:
        """Everything the container printed so far, stdout and stderr interleaved."""
        with self._engine_call("reading its logs"):
            raw: bytes = self._container.logs(stdout=True, stderr=True)
        return raw.decode(errors="replace")

    def _engine_call(self, doing: str) -> contextlib.AbstractContextManager[None]:
        """Engine calls about this container, through its engine's one place for them
        (Engine.call): an engine gone is one EngineGone naming it, never a library traceback."""
        if self.engine is None:  # not attached to an engine (a test's fake)
            return contextlib.nullcontext()
        return self.engine.call(f"{doing} ({self.platform} container)")

    def stop(self) -> None:
        """Remove the container (and its anonymous volumes); safe to call twice."""
        try:
            self._container.remove(force=True, v=True)
        except docker_errors() as exc:
            # Gone, or being removed by another thread of this session (a start giving up).
            if not already_removed(exc):
                raise

    def __repr__(self) -> str:
        return f"<MultiarchContainer {self.platform} {self.image.tag} {self.base_url or 'no port'}>"


T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """A path inside a container, as ``container.file_info`` found it."""

    path: str
    exists: bool
    mode: int = 0  # permission bits, e.g. 0o755
    uid: int = 0
    gid: int = 0
    size: int = 0
    is_dir: bool = False
    is_file: bool = False
    link_target: str | None = None


def _archived(container: Container, path: str, *, content: bool = True) -> tuple[tarfile.TarInfo | None, bytes | None]:
    """The tar entry of ``path`` (itself, not what a symlink points to) and, for a file, its
    bytes; (None, None) when there is no such path."""
    archived = unless_missing(lambda: container.get_archive(path))
    if archived is None:
        return None, None
    stream, _ = archived
    raw = io.BytesIO()
    for chunk in stream:
        raw.write(chunk)
        if not content and raw.tell() >= 1024:  # the first header is enough for file_info
            break
    raw.seek(0)
    with tarfile.open(fileobj=raw, mode="r|") as archive:
        member = archive.next()
        if member is None:
            return None, None
        data = archive.extractfile(member).read() if content and member.isfile() else None  # type: ignore[union-attr]
    return member, data


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


def port_of(image: BuiltImage, spec: ImageSpec) -> int | None:
    """The app's port: ``port=`` (or --multiarch-port), else the first of ``ports=`` (what the
    declaration publishes), else the image's lowest EXPOSEd port."""
    if spec.port:
        return spec.port
    if spec.ports:
        return spec.ports[0]
    return image.exposed_ports[0] if image.exposed_ports else None


def _uname(container: MultiarchContainer, timeout: float | None, tries: int = 3) -> str:
    """``uname -m``, asked again when it printed nothing: a uname that runs always prints the
    machine, but podman's exec through its Docker-compatible API sometimes loses a short-lived
    command's output (containers/podman#9096), which would read as an image of another CPU."""
    machine = ""
    for _ in range(tries):
        machine = container.exec(["uname", "-m"], timeout=timeout).strip()
        if machine:
            break
    return machine


def check_machine(container: MultiarchContainer, timeout: float | None = None) -> None:
    """``uname -m`` inside must be what the platform's CPU reports: the real run that proves
    emulation works. Images without ``uname`` (distroless, scratch) are not checked. ``timeout``:
    seconds for each ``uname`` (default: the container's command timeout); a start gives its own,
    since the check is part of starting, not one of the test's requests."""
    try:
        machine = _uname(container, timeout)
    except ExecError:
        return
    except docker_errors(EngineRefused) as exc:  # no uname binary: "executable file not found"
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
