"""Cleanup: every container the plugin starts is removed, whatever ends the session.

- normal end, failed tests, Ctrl-C: the session's ``close()`` (pytest_unconfigure);
- SIGTERM (CI cancelling a job): turned into KeyboardInterrupt so the same path runs;
- interpreter exit without pytest_unconfigure: ``atexit``;
- SIGKILL: nothing runs, so the next session removes containers whose owner process is gone
  (``sweep_orphans``), matched by the owner label on this host.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker

    from pytest_multiarch.run import MultiarchContainer

OWNER_LABEL = "io.github.pytest-multiarch.owner"
# The PID namespace of that process: pids of another one (a CI job in its own container, sharing
# the host's Docker socket and, with host networking, its hostname) say nothing here.
PID_NAMESPACE_LABEL = "io.github.pytest-multiarch.pid-namespace"
_running: list[MultiarchContainer] = []
_lock = threading.Lock()
_installed = False


def owner_id() -> str:
    """Value of OWNER_LABEL for containers this process starts."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_labels() -> dict[str, str]:
    """OWNER_LABEL, and PID_NAMESPACE_LABEL where the system tells it (Linux)."""
    return {OWNER_LABEL: owner_id(), **namespace_label()}


def namespace_label() -> dict[str, str]:
    namespace = pid_namespace()
    return {PID_NAMESPACE_LABEL: namespace} if namespace else {}


def pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return ""


def track(container: MultiarchContainer) -> None:
    with _lock:
        _running.append(container)


def remove(container: MultiarchContainer) -> bool:
    """Remove one container now (before the session ends) and stop tracking it; if that fails
    (False), the end of the session tries again."""
    try:
        container.stop()
    except Exception:
        return False
    with _lock:
        if container in _running:
            _running.remove(container)
    return True


def remove_all() -> None:
    with _lock:
        containers = list(_running)
        _running.clear()
    if len(containers) > 1:  # removing takes a fraction of a second each: do them at once
        with ThreadPoolExecutor(len(containers), thread_name_prefix="multiarch-cleanup") as pool:
            pool.map(stop_quietly, containers)
    else:
        for container in containers:
            stop_quietly(container)


def stop_quietly(container: MultiarchContainer) -> None:
    """Remove it, whatever the engine answers: for the end of a session, where one failed
    removal must not keep the others from happening."""
    try:
        container.stop()
    except Exception:
        pass


def install_handlers() -> None:
    """atexit and SIGTERM handlers; installed once, and SIGTERM only if nobody else set one."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_skip_final_collections)  # atexit runs last-in first-out: after remove_all
    atexit.register(remove_all)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _skip_final_collections() -> None:
    """At interpreter exit, after every atexit handler registered later: freeze the objects.

    Python's finalization runs full garbage collections over everything still loaded; with
    docker-py, requests, testcontainers and python-on-whales that took 0.2 s of each run, for
    memory the process returns anyway. Frozen objects are skipped (objects in reference cycles
    then get no __del__ at exit, which Python never promised). Only at exit: a process that
    runs pytest.main() repeatedly collects as usual until it ends.
    """
    gc.freeze()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # pytest treats KeyboardInterrupt as "stop the session" and runs every teardown; a
    # SystemExit raised inside a test would only fail that test.
    raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")


def sweep_orphans(sdk: docker.DockerClient) -> int:
    """Remove containers left by pytest processes on this host that no longer exist."""
    from docker.errors import DockerException

    host = socket.gethostname()
    try:
        containers = sdk.containers.list(all=True, filters={"label": OWNER_LABEL})
    except DockerException:
        return 0
    removed = 0
    for container in containers:
        labels = container.labels or {}
        owner_host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
        if owner_host != host or not pid.isdigit() or _alive(int(pid), labels.get(PID_NAMESPACE_LABEL)):
            continue  # another host's, or its pytest still runs (or may: another PID namespace)
        try:
            container.remove(force=True, v=True)
            removed += 1
        except DockerException:
            pass
    return removed


def process_identity() -> str:
    """host:pid:start of this process; the start time (Linux) tells a pid reused by another
    process apart, which matters for --multiarch-reuse containers that live for days."""
    return f"{owner_id()}:{_start_time(os.getpid())}"


def process_state(identity: str, namespace: str | None) -> str:
    """ "alive", "dead" or "unknown" (another host or PID namespace: its pids say nothing here)
    for a process_identity() (or an owner_id(), without the start time)."""
    parts = identity.split(":")  # host names hold no colons
    if len(parts) not in (2, 3):
        return "unknown"
    host, pid, started = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if host != socket.gethostname() or not pid.isdigit() or (namespace and namespace != pid_namespace()):
        return "unknown"
    if not _alive(int(pid)) or (started and started != _start_time(int(pid))):
        return "dead"
    return "alive"


def _start_time(pid: int) -> str:
    """The process's start, in clock ticks since boot (field 22 of /proc/PID/stat); '' if unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int, namespace: str | None = None) -> bool:
    """Whether ``pid`` runs; a pid of another PID namespace cannot be looked up: taken as alive."""
    if (namespace and namespace != pid_namespace()) or os.name == "nt":
        return True  # on Windows os.kill(pid, 0) would not ask but interrupt the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
