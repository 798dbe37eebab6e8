"""Podman (``--multiarch-runtime podman``): which socket serves its Docker-compatible API, the
``podman system service`` child the plugin starts when none does, and what podman can run.

Containers, exec, files, one-shot runs and cleanup go through podman's Docker-compatible API
with docker-py, as with Docker (engine.py makes that client). The socket is ``CONTAINER_HOST``
when set, else one that answers at podman's own place (``$XDG_RUNTIME_DIR/podman/podman.sock``
rootless, ``/run/podman/podman.sock`` as root), else the plugin's own: ``podman system service
--time=0`` on a socket in a private temporary folder, started when first needed and stopped by
its pid when the session ends. The service runs in a session of its own (a Ctrl-C or a CI
job's SIGTERM to pytest's process group must not stop it before the containers are removed)
under a small ``sh`` that ends it as soon as its stdin closes: when pytest exits, however it
exits, even by SIGKILL, no service is left behind. Builds use the podman CLI (podmanbuild.py).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_multiarch.errors import EngineError, MultiarchError, UsageError
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine
    from pytest_multiarch.preflight import Capabilities

RUNTIMES = ("docker", "podman")
RUNTIME_ENV = "CONTAINER_RUNTIME"  # as pytest_container reads it
HOST_ENV = "CONTAINER_HOST"
ROOT_SOCKET = "/run/podman/podman.sock"
START_SECONDS = 30.0
STOP_SECONDS = 10.0
SETUP_HINT = "Install podman (Debian/Ubuntu: `apt-get install --no-install-recommends podman`)"

# The service, under an sh that ends it when the sh's stdin (a pipe from pytest) closes: at the
# session's end, or when pytest dies in any way; then the private folder goes too. The service's
# pid is the sh's first line of output.
_WRAPPER = (
    'dir=$1; shift; "$@" </dev/null >/dev/null 2>>"$dir/service.log" & echo $!; '
    'read -r _ || true; kill $! 2>/dev/null; wait $!; rm -rf "$dir"'
)


def parse_runtime(value: object, environ: Mapping[str, str] | None = None) -> str:
    """``--multiarch-runtime`` (ini ``multiarch_runtime``), else ``CONTAINER_RUNTIME=podman``,
    else docker; UsageError naming a value that is neither."""
    env = os.environ if environ is None else environ
    text = str(value or "").strip().lower()
    if not text:
        return "podman" if env.get(RUNTIME_ENV, "").strip().lower() == "podman" else "docker"
    if text not in RUNTIMES:
        raise UsageError(f"--multiarch-runtime (ini multiarch_runtime) {str(value)!r}: use docker or podman.")
    return text


def rootless() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() != 0


def given_socket(environ: Mapping[str, str] | None = None) -> str | None:
    """``CONTAINER_HOST`` when set (a unix:// or tcp:// URL); EngineError for another kind."""
    env = os.environ if environ is None else environ
    url = env.get(HOST_ENV, "").strip()
    if not url:
        return None
    if not url.startswith(("unix://", "tcp://")):
        raise EngineError(
            f"{HOST_ENV}={url}: pytest-multiarch reaches podman's API through a unix:// or tcp:// URL only. "
            f"Unset {HOST_ENV} to use this machine's podman, or forward the remote socket to a local one "
            f"(`ssh -L /tmp/podman.sock:/run/podman/podman.sock host`) and point {HOST_ENV} at it."
        )
    return url


def standard_socket(environ: Mapping[str, str] | None = None) -> Path:
    """Where podman's own service listens: rootless under XDG_RUNTIME_DIR, else /run/podman."""
    env = os.environ if environ is None else environ
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if rootless() and runtime_dir:
        return Path(runtime_dir) / "podman" / "podman.sock"
    return Path(ROOT_SOCKET)


def answers(path: Path, timeout: float = 2.0) -> bool:
    """Whether a Docker-compatible API answers ``GET /_ping`` on the unix socket ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(path))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            head = conn.recv(64)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and head.split(b" ")[1:2] == [b"200"]


def locate(environ: Mapping[str, str] | None = None) -> tuple[str, PodmanService | None]:
    """The socket URL to use, and the service to start there when none answers yet."""
    url = given_socket(environ)
    if url is not None:
        return url, None
    standard = standard_socket(environ)
    if answers(standard):
        return f"unix://{standard}", None
    service = PodmanService()
    return service.url, service


def podman_command(url: str | None) -> list[str]:
    """The podman CLI's command line: this machine's podman for a local socket (same storage as
    its service), ``--remote --url`` for a tcp:// one."""
    if url and url.startswith("tcp://"):
        return ["podman", "--remote", "--url", url]
    return ["podman"]


class PodmanService:
    """One ``podman system service --time=0`` on a socket in a private folder, started once and
    stopped by its pid (and its wrapper's)."""

    def __init__(self) -> None:
        name = f"pytest-multiarch-podman-{os.getpid()}-{secrets.token_hex(4)}"
        self.directory = Path(tempfile.gettempdir()) / name
        self.socket = self.directory / "podman.sock"
        self.url = f"unix://{self.socket}"
        self.pid: int | None = None  # the service's own
        self._wrapper: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Start it and wait (polling) until it answers; EngineError saying why it did not."""
        with self._lock:
            if self._wrapper is not None:
                return
            if self._stopped:  # the session is over: a late call must not start another one
                raise EngineError("the session's podman service has been stopped: the session is over.")
            if shutil.which("podman") is None:
                raise EngineError(f"--multiarch-runtime podman: the podman CLI is not on PATH. {SETUP_HINT}.")
            os.mkdir(self.directory, 0o700)  # fails if it exists: nobody else's folder is used
            log = self.directory / "service.log"
            command = [*podman_command(None), "system", "service", "--time=0", self.url]
            self._wrapper = subprocess.Popen(
                ["sh", "-c", _WRAPPER, "sh", str(self.directory), *command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # a signal to pytest's process group does not stop it early
            )
            _started.add(self)
            assert self._wrapper.stdout is not None
            first = self._wrapper.stdout.readline().strip()
            self.pid = int(first) if first.isdigit() else None
        self._wait_until_answering(log)

    def _wait_until_answering(self, log: Path) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not answers(self.socket, timeout=1.0):
            wrapper = self._wrapper
            ended = wrapper is None or wrapper.poll() is not None or (self.pid and not _running(self.pid))
            if ended or time.monotonic() > deadline:
                said = _last_line(log) or "it printed nothing"
                self.stop()
                why = "exited" if ended else f"did not answer within {START_SECONDS:g} s"
                raise EngineError(
                    f"--multiarch-runtime podman: `podman system service` {why} ({said}). "
                    f"Check `podman info`, or start podman's own service and set {HOST_ENV} to its socket."
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the service and its wrapper, by pid, and remove the private folder: closing the
        wrapper's stdin ends the service; what is still there after STOP_SECONDS is killed."""
        with self._lock:
            wrapper, self._wrapper = self._wrapper, None
            self._stopped = True
            _started.discard(self)
        if wrapper is not None:
            with contextlib.suppress(OSError):
                assert wrapper.stdin is not None
                wrapper.stdin.close()
            try:
                wrapper.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                for pid in (self.pid, wrapper.pid):
                    if pid:
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                wrapper.wait()
            if wrapper.stdout is not None:
                wrapper.stdout.close()
        shutil.rmtree(self.directory, ignore_errors=True)


_started: set[PodmanService] = set()


def _stop_all() -> None:
    """At interpreter exit without the session's own close: the session's containers first (they
    are removed through the service), then every service still running."""
    if not _started:
        return
    from pytest_multiarch import cleanup

    cleanup._remove_open()
    for service in list(_started):
        service.stop()


atexit.register(_stop_all)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # not Linux: the socket poll and its deadline decide


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


def low_port_note(engine: Engine | None, ports: Iterable[int]) -> str:
    """What to say of container ports below 1024 on rootless podman ("" when nothing): they work,
    published on high host ports, which is all a rootless podman can bind."""
    low = sorted(port for port in ports if port < 1024)
    if engine is None or engine.runtime != "podman" or not low:
        return ""
    try:
        if not engine.capabilities().rootless:
            return ""
    except MultiarchError:
        return ""
    shown = ", ".join(map(str, low))
    return f" (rootless podman: container port {shown} is published on a host port >= 1024, the only ones it can bind)"


def inspect_podman(command: list[str], *, local: bool) -> Capabilities:
    """What podman is and runs (``podman info``): its version, native platform, buildah's
    version, rootless or not; EngineError when the CLI is missing or fails."""
    from pytest_multiarch.preflight import Capabilities

    try:
        done = subprocess.run([*command, "info", "--format", "json"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineError(f"--multiarch-runtime podman: cannot run `podman info` ({exc}). {SETUP_HINT}.") from None
    if done.returncode != 0:
        said = next((ln for ln in done.stderr.splitlines() if ln.strip()), "no output")
        raise EngineError(f"--multiarch-runtime podman: `podman info` failed: {said}. Check podman's set-up.")
    try:
        info = json.loads(done.stdout)
        host = info["host"]
        native = Platform.parse(f"{host.get('os') or 'linux'}/{host['arch']}")
        version = str(info["version"]["Version"])
    except (ValueError, KeyError, TypeError, UsageError) as exc:
        raise EngineError(f"--multiarch-runtime podman: could not read `podman info`: {exc}") from None
    return Capabilities(
        server_version=f"podman {version}",
        native=native,
        builder_name="podman",
        builder_driver="buildah",
        builder_platforms=(),  # podman builds for whatever binfmt_misc lets this kernel run
        buildx_version=f"buildah {host.get('buildahVersion') or 'unknown'}",
        local=local,
        runtime="podman",
        rootless=bool((host.get("security") or {}).get("rootless")),
    )
