"""Containers a Docker-backed test leaves behind, on both engines (see conftest.py's
``_no_containers_left``).

A container counts as the test's when the process its labels name (the owner label of an
ordinary one, the starter label of a --multiarch-reuse one) is this pytest process (in-process
sessions) or one that ran below it during the test (subprocess sessions, xdist workers): never
another test session's, which may run beside this one on the same engines.

Besides the check at the end of the test, each session that runs below this process is checked
as soon as it ends: a container it left would otherwise be removed by the test's next session
(its orphan sweep) before the end of the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import docker

from pytest_multiarch.names import OWNER_LABEL, REUSE_SLOT_LABEL, REUSE_STARTER_LABEL

LOCAL = "unix:///var/run/docker.sock"
REMOTE = "tcp://127.0.0.2:2375"  # the second engine (scripts/remote-engine.sh), when it answers
EVERY_SECONDS = 0.1  # a session that starts a container lives much longer than this


@dataclasses.dataclass(frozen=True)
class Container:
    engine: str
    id: str
    pid: int | None  # of the process that started it
    reuse: bool

    def __str__(self) -> str:
        kind = "--multiarch-reuse container" if self.reuse else "container"
        return f"{kind} {self.id[:12]} on {self.engine}, started by pid {self.pid}"


def answering(engines: Iterable[str]) -> list[str]:
    """The engines that answer now."""
    found = []
    for engine in engines:
        try:  # the client asks the engine's API version as it is made
            docker.DockerClient(base_url=engine, timeout=5).close()
            found.append(engine)
        except Exception:
            pass  # not running (the second engine is optional outside CI)
    return found


def _clients(engines: Iterable[str]) -> dict[str, docker.DockerClient]:
    """A client per engine that answers (an engine a test stops is left out)."""
    found = {}
    for engine in engines:
        with contextlib.suppress(Exception):
            found[engine] = docker.DockerClient(base_url=engine, timeout=30)
    return found


def _pid_of(label: str) -> int | None:
    """``host:pid`` (owner) or ``host:pid:start`` (reuse starter) → pid. The host name is not
    compared: a test may run a session under a host name of its own (a UTS namespace)."""
    pid = label.partition(":")[2].split(":")[0]
    return int(pid) if pid.isdigit() else None


def listed(clients: dict[str, docker.DockerClient]) -> set[Container]:
    """Every container carrying the plugin's owner or reuse labels, on each engine."""
    found: set[Container] = set()
    for engine, client in clients.items():
        for label in (OWNER_LABEL, REUSE_SLOT_LABEL):
            try:
                entries = client.api.containers(all=True, filters={"label": label})
            except Exception:
                continue  # an engine a test stopped or broke: nothing to judge there
            for entry in entries:
                labels = entry.get("Labels") or {}
                reuse = REUSE_SLOT_LABEL in labels
                pid = _pid_of(labels.get(REUSE_STARTER_LABEL if reuse else OWNER_LABEL, ""))
                found.add(Container(engine, entry["Id"], pid, reuse))
    return found


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None once it is gone."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    return None


def _is_python(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().startswith("python")
    return False


class Watch:
    """Watches one test: which processes ran below this one, and what each python process
    (a pytest session, an xdist worker) left when it ended."""

    def __init__(self, engines: Iterable[str], *, sessions_may_leave: bool) -> None:
        self._engines = list(engines)
        self._sessions_may_leave = sessions_may_leave
        self._root = os.getpid()
        # pid -> its start time: pids are used again within a minute on a busy machine (32768 of
        # them, some 500 a second here), and a pid seen below this test may name another
        # worker's session by the time the test ends.
        self.seen: dict[int, int | None] = {}
        self._python: set[int] = set()  # seen and still running
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leftover-watch", daemon=True)
        self._clients = _clients(self._engines)
        self.before = listed(self._clients)

    def start(self) -> None:
        self._thread.start()

    def _below(self) -> set[int]:
        found: set[int] = set()
        todo = [self._root]
        while todo:
            for child in _children(todo.pop()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def _run(self) -> None:
        clients = _clients(self._engines)  # this thread's own
        try:
            while not self._stop.wait(EVERY_SECONDS):
                self._scan(clients)
            self._scan(clients)
        finally:
            for client in clients.values():
                client.close()

    def _scan(self, clients: dict[str, docker.DockerClient]) -> None:
        running = self._below()
        for pid in running:
            started = _start_time(pid)
            if pid in self.seen and self.seen[pid] == started:
                continue
            self.seen[pid] = started  # new, or its pid used again below this test
            if _is_python(pid):
                self._python.add(pid)
        ended = self._python - running
        if not ended:
            return
        self._python -= ended
        if self._sessions_may_leave:
            return
        for container in listed(clients) - self.before:
            if container.pid in ended:
                self.problems.append(f"the session of pid {container.pid} ended leaving its {container}")

    def ours(self) -> set[int]:
        """The processes seen below this test, unless their pid now names another (living) one."""
        return {pid for pid, started in self.seen.items() if _start_time(pid) in (None, started)} | {self._root}

    def stop(self) -> list[str]:
        """Ends the watch; returns what is wrong, and removes the containers it names."""
        self._stop.set()
        self._thread.join()
        ours = self.ours()
        left = {c for c in listed(self._clients) - self.before if c.pid in ours}
        problems = list(dict.fromkeys(self.problems))
        problems += [f"the test left its {container}" for container in sorted(left, key=str)]
        for container in left:  # not to be found again by the next test
            with contextlib.suppress(Exception):
                self._clients[container.engine].api.remove_container(container.id, force=True, v=True)
        for client in self._clients.values():
            client.close()
        return problems
