"""A local unix socket in front of an ssh:// engine, for the Docker API client.

docker-py reaches ssh:// engines through paramiko, or with ``use_ssh_client`` through an ssh
process per connection whose closing fails with BrokenPipeError once the far side has gone (as
it does after every ``exec``). The docker CLI has a dependable way: ``docker -H ssh://…
system dial-stdio`` carries one API connection over its standard input and output, with the
user's own ssh configuration, keys and agent. Each connection to the bridge's socket gets one
such process; docker-py, and the docker CLI the plugin runs, talk to the socket like to any
local engine.

An ssh connection costs a handshake (about 0.5 s with the CLI's start on both ends), and a
session makes dozens of them. So the bridge first opens one master connection of its own
(OpenSSH's ControlMaster, its socket in the bridge's private folder) and runs each
``docker system dial-stdio`` as a channel of it: about 0.1 s each. Where no master comes up
(a host key to confirm, a password to type, another ssh), each connection is its own
``docker -H ssh://… system dial-stdio``, as the docker CLI would make it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlsplit

CHUNK = 1 << 16
MASTER_SECONDS = 15.0  # for the master connection to come up, before each connection is its own


class DialBridge:
    """Serves ``unix://…/docker.sock`` (in a private temporary folder) until ``close``."""

    def __init__(self, endpoint_url: str, docker_cli: str = "docker", ssh: str = "ssh") -> None:
        self._endpoint_url = endpoint_url
        self._docker_cli = shutil.which(docker_cli) or docker_cli
        self._folder = tempfile.mkdtemp(prefix="pytest-multiarch-dial-")  # mode 0700: this user only
        self.path = os.path.join(self._folder, "docker.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(16)
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._closed = False
        self._master = SshMaster(endpoint_url, os.path.join(self._folder, "ssh.ctl"), ssh)
        threading.Thread(target=self._master.start, name="multiarch-ssh-master", daemon=True).start()
        threading.Thread(target=self._accept, name="multiarch-dial-bridge", daemon=True).start()

    @property
    def multiplexed(self) -> bool:
        """Whether connections are channels of one ssh connection (waits until that is known)."""
        return self._master.channel_command() is not None

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(connection,), name="multiarch-dial", daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        channel = self._master.channel_command()
        command = channel or [self._docker_cli, "-H", self._endpoint_url, "system", "dial-stdio"]
        try:
            pipe = subprocess.PIPE
            process = subprocess.Popen(command, stdin=pipe, stdout=pipe, stderr=subprocess.DEVNULL)
        except OSError:
            connection.close()
            return
        with self._lock:
            if self._closed:
                process.kill()
            self._processes.add(process)
        assert process.stdin is not None and process.stdout is not None
        to_engine = threading.Thread(target=_pump_into, args=(connection, process.stdin), daemon=True)
        to_engine.start()
        try:
            while chunk := os.read(process.stdout.fileno(), CHUNK):
                connection.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
            _end(process)
            with self._lock:
                self._processes.discard(process)

    def close(self) -> None:
        """Stop serving: no new connection, every dial-stdio process ended, the folder removed."""
        with self._lock:
            self._closed = True
            processes = list(self._processes)
        with contextlib.suppress(OSError):
            self._server.close()
        for process in processes:
            _end(process)
        self._master.stop()
        shutil.rmtree(self._folder, ignore_errors=True)


class SshMaster:
    """One ssh connection to the engine's host whose channels carry the bridge's connections
    (``ssh -M``, ControlPersist off: it is this object's child and ends by its pid in ``stop``)."""

    def __init__(self, endpoint_url: str, control_path: str, ssh: str = "ssh") -> None:
        self._target = ssh_target(endpoint_url)
        self._ssh = shutil.which(ssh)
        self._control_path = control_path
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._up = False
        self._known = threading.Event()

    def start(self) -> None:
        """Open the master connection and wait (polling for its control socket) until it serves,
        it fails, or MASTER_SECONDS pass; never raises."""
        try:
            if self._target is None or self._ssh is None:
                return
            command = [self._ssh, "-M", "-N", "-S", self._control_path, "-o", "ControlPersist=no"]
            command += ["-o", "BatchMode=yes", *self._target]  # never a prompt: without one, no master
            with self._lock:
                if self._stopped:
                    return
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                self._process = process
            deadline = time.monotonic() + MASTER_SECONDS
            while process.poll() is None and time.monotonic() < deadline and not self._stopped:
                if os.path.exists(self._control_path):  # made once the connection is up
                    self._up = True
                    return
                time.sleep(0.02)
            self.stop()
        except OSError:
            self.stop()
        finally:
            self._known.set()

    def channel_command(self) -> list[str] | None:
        """The command that runs ``docker system dial-stdio`` on the host as a channel of the
        master; None when there is no master (after waiting for it to come up or fail)."""
        self._known.wait()
        if not self._up or self._target is None or self._ssh is None:
            return None
        command = [self._ssh, "-S", self._control_path, "-o", "ControlMaster=no", *self._target]
        return [*command, "--", "docker", "system", "dial-stdio"]

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._up = False
            process, self._process = self._process, None
        if process is not None:
            _end(process)


def ssh_target(endpoint_url: str) -> list[str] | None:
    """``ssh://[user@]host[:port]`` → the ssh arguments that name it (``-p PORT``, ``[user@]host``);
    None for any other URL, or one with a path (which the docker CLI does not take either)."""
    try:
        parts = urlsplit(endpoint_url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.hostname.startswith("-") or (parts.username or "").startswith("-"):
        return None  # would read as an option of ssh's
    destination = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
    return [*(["-p", str(port)] if port else []), destination]


def _pump_into(connection: socket.socket, stdin: object) -> None:
    """What the client sends, to the dial-stdio process; its end closes the process's input."""
    fd = stdin.fileno()  # type: ignore[attr-defined]
    try:
        while chunk := connection.recv(CHUNK):
            os.write(fd, chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            stdin.close()  # type: ignore[attr-defined]


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()
