"""A local unix socket in front of an ssh:// engine, for the Docker API client.

docker-py reaches ssh:// engines through paramiko, or with ``use_ssh_client`` through an ssh
process per connection whose closing fails with BrokenPipeError once the far side has gone (as
it does after every ``exec``). The docker CLI has a dependable way: ``docker -H ssh://…
system dial-stdio`` carries one API connection over its standard input and output, with the
user's own ssh configuration, keys and agent. Each connection to the bridge's socket gets one
such process; docker-py talks to the socket like to any local engine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading

CHUNK = 1 << 16


class DialBridge:
    """Serves ``unix://…/docker.sock`` (in a private temporary folder) until ``close``."""

    def __init__(self, endpoint_url: str, docker_cli: str = "docker") -> None:
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
        threading.Thread(target=self._accept, name="multiarch-dial-bridge", daemon=True).start()

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
        command = [self._docker_cli, "-H", self._endpoint_url, "system", "dial-stdio"]
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
        shutil.rmtree(self._folder, ignore_errors=True)


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
