"""Cleanup: every container the plugin starts is removed, whatever ends the session.

- normal end, failed tests, Ctrl-C: the session's ``close()`` (pytest_unconfigure) removes what
  its ``Tracker`` holds, and only that: another session in the same process keeps its own;
- SIGTERM (CI cancelling a job): turned into KeyboardInterrupt so the same path runs, while a
  session is open (the handler found before is put back when the last one closes); after the
  first SIGINT or SIGTERM every later one is absorbed, wherever it lands, until the process
  ends (or, in a process that goes on, for a few seconds after the session closed);
- interpreter exit without pytest_unconfigure: ``atexit`` empties the trackers still open;
- SIGKILL: nothing runs, so the next session removes containers whose owner process is gone
  (``sweep_orphans``), matched by the owner label on this host.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING, Any

from pytest_multiarch.enginefaults import docker_errors, ignoring_docker_errors
from pytest_multiarch.names import OWNER_LABEL, PID_NAMESPACE_LABEL

if TYPE_CHECKING:
    import docker

    from pytest_multiarch.run import MultiarchContainer

_open_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()
_handlers_lock = threading.Lock()
_atexit_registered = False
# The default handlers, which the plugin replaces (a handler someone else installed is left alone).
_DEFAULTS: dict[signal.Signals, Any] = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
_previous: dict[signal.Signals, Any] = {}  # the handlers found before ours, put back at the last close
_interrupted = False  # a signal stopped a session: later ones are absorbed
_closed_at = 0.0
LATE_SIGNAL_SECONDS = 5.0


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


class Tracker:
    """The containers one session started and has not removed yet."""

    def __init__(self) -> None:
        self._running: list[MultiarchContainer] = []
        self._lock = threading.Lock()

    def track(self, container: MultiarchContainer) -> None:
        with self._lock:
            self._running.append(container)

    def remove(self, container: MultiarchContainer) -> bool:
        """Remove one container now (before the session ends) and stop tracking it; if that
        fails (False), the end of the session tries again."""
        try:
            container.stop()
        except Exception:
            return False
        with self._lock:
            if container in self._running:
                self._running.remove(container)
        return True

    def remove_all(self) -> list[MultiarchContainer]:
        """Remove every tracked container, at once (a fraction of a second each); those whose
        removal failed (their engine does not answer, say) stay tracked and are returned."""
        with self._lock:
            containers = list(self._running)
            self._running.clear()
        with ThreadPoolExecutor(max(1, len(containers)), thread_name_prefix="multiarch-cleanup") as pool:
            removed = list(pool.map(removed_quietly, containers))
        failed = [container for container, gone in zip(containers, removed, strict=True) if not gone]
        with self._lock:
            self._running.extend(failed)
        return failed


def removed_quietly(container: MultiarchContainer) -> bool:
    """Remove it; False (never an exception) when that failed."""
    try:
        container.stop()
    except Exception:
        return False
    return True


def stop_quietly(container: MultiarchContainer) -> None:
    """Remove it, whatever the engine answers: for the end of a session, where one failed
    removal must not keep the others from happening."""
    try:
        container.stop()
    except Exception:
        pass


def open_session(tracker: Tracker) -> None:
    """Cover ``tracker`` by the atexit and signal handlers until ``close_session``. SIGINT and
    SIGTERM are taken only from their default handlers, in the main thread, and given back at
    the last close (see _on_signal for a session that a signal stopped)."""
    global _atexit_registered
    with _handlers_lock:
        _open_trackers.add(tracker)
        if not _atexit_registered:
            _atexit_registered = True
            atexit.register(_skip_final_collections)  # atexit runs last-in first-out: after the removal
            atexit.register(_remove_open)
        if threading.current_thread() is not threading.main_thread():
            return
        _open_handlers()


def _open_handlers() -> None:
    """Put _on_signal in place of the default handlers (of a stopped session's _after_interrupt
    too: a new session in the same process gets a first signal of its own)."""
    global _interrupted
    for sig, default in _DEFAULTS.items():
        found = signal.getsignal(sig)
        if found is _after_interrupt:
            _interrupted = False
            signal.signal(sig, _on_signal)
        elif sig not in _previous and found in (default, None):
            _previous[sig] = found if found is not None else signal.SIG_DFL
            signal.signal(sig, _on_signal)


def close_session(tracker: Tracker) -> None:
    """``tracker``'s session is over: the last one to close puts the signal handlers back, or,
    when a signal stopped the run, lets _after_interrupt absorb late ones for a few seconds."""
    global _closed_at
    with _handlers_lock:
        _open_trackers.discard(tracker)
        if _open_trackers or threading.current_thread() is not threading.main_thread():
            return
        _closed_at = time.monotonic()
        for sig in list(_previous):
            if signal.getsignal(sig) in (_on_signal, _absorb):
                signal.signal(sig, _after_interrupt if _interrupted else _previous.pop(sig))


def _remove_open() -> None:
    for tracker in list(_open_trackers):
        with contextlib.suppress(Exception):
            tracker.remove_all()


@contextlib.contextmanager
def signals_absorbed() -> Iterator[None]:
    """While the session cleans up, Ctrl-C and SIGTERM are absorbed: cleanup goes on instead of
    ending in a traceback halfway. What close_session puts in place meanwhile stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _DEFAULTS}
    for sig in previous:
        signal.signal(sig, _absorb)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is _absorb and not _interrupted:  # nobody changed it meanwhile
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _absorb(signum: int, frame: FrameType | None) -> None:
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C or SIGTERM of a session stops it: KeyboardInterrupt, on which pytest runs
    every teardown (a SystemExit in a test would only fail that test). Every later one, wherever
    it lands (pytest's own pytest_keyboard_interrupt, another plugin's unconfigure, this
    plugin's cleanup, the interpreter's exit), is absorbed: the run is already stopping."""
    global _interrupted
    _interrupted = True
    for sig in _DEFAULTS:
        signal.signal(sig, _absorb)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")


def _after_interrupt(signum: int, frame: FrameType | None) -> None:
    """In place once a stopped session closed: pytest and the interpreter are still winding
    down, and a late signal must not end that in a traceback. One that comes LATE_SIGNAL_SECONDS
    after the close (pytest.main() in a longer-lived process) gets the handlers found before."""
    global _interrupted
    if time.monotonic() - _closed_at < LATE_SIGNAL_SECONDS:
        return
    with _handlers_lock:
        for sig, handler in list(_previous.items()):
            if signal.getsignal(sig) is _after_interrupt:
                signal.signal(sig, handler)
        _previous.clear()
        _interrupted = False
    previous = signal.getsignal(signum)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # its default action, now that the handler is back


def end_descendants(matching: str, grace: float = 5.0) -> list[int]:
    """End every process below this one whose command line holds ``matching`` (a buildx build
    under way when the session stops), with all of its own descendants: SIGTERM, then SIGKILL
    after ``grace`` seconds. Returns the pids ended. Linux only (elsewhere: nothing)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    below = _tree(os.getpid(), children)[1:]
    chosen = [pid for pid in below if matching in _cmdline(pid)]
    doomed = sorted({p for pid in chosen for p in _tree(pid, children)})
    for pid in doomed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_exists(pid) for pid in doomed):
        time.sleep(0.05)
    for pid in doomed:
        if _exists(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return doomed


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _exists(pid: int) -> bool:
    """Running (a zombie, whose parent has not reaped it yet, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _skip_final_collections() -> None:
    """At interpreter exit, after every atexit handler registered later: freeze the objects.

    Python's finalization runs full garbage collections over everything still loaded; with
    docker-py, requests, testcontainers and python-on-whales that took 0.2 s of each run, for
    memory the process returns anyway. Frozen objects are skipped (objects in reference cycles
    then get no __del__ at exit, which Python never promised). Only at exit: a process that
    runs pytest.main() repeatedly collects as usual until it ends.
    """
    gc.freeze()


def sweep_orphans(sdk: docker.DockerClient) -> tuple[int, int]:
    """Remove containers left by pytest processes on this host that no longer exist, then their
    networks (a network goes once no container is on it). Returns how many containers and
    networks were removed.

    Listed with the engine's plain list calls, which carry the labels: docker-py's
    ``containers.list`` inspects each container it lists, and one removed meanwhile (by its own
    session, beside this one under xdist or in another job) raised NotFound for the whole list,
    which skipped the sweep."""
    try:
        containers = sdk.api.containers(all=True, filters={"label": OWNER_LABEL})
        networks = sdk.api.networks(filters={"label": OWNER_LABEL})
    except docker_errors():
        return 0, 0
    removed = [0, 0]
    for container in containers:
        if _orphaned(container.get("Labels")):
            with ignoring_docker_errors():  # gone meanwhile: not ours to count
                sdk.api.remove_container(container["Id"], force=True, v=True)
                removed[0] += 1
    for network in networks:
        if _orphaned(network.get("Labels")):
            with ignoring_docker_errors():
                sdk.api.remove_network(network["Id"])
                removed[1] += 1
    return removed[0], removed[1]


def swept_message(containers: int, networks: int) -> str:
    """What the session says after a sweep: both counts, and not "killed": a run whose engine
    went away ended without removing its containers too."""
    what = " and ".join(
        f"{count} {kind}(s)" for count, kind in ((containers, "container"), (networks, "network")) if count
    )
    return f"removed {what} left by earlier pytest runs that could not remove them (killed, or their engine went away)"


def _orphaned(labels: dict[str, str] | None) -> bool:
    """Made by a pytest process of this host that has ended (not one that runs, or may: another
    host's, another PID namespace's)."""
    labels = labels or {}
    owner_host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    if owner_host != socket.gethostname() or not pid.isdigit():
        return False
    return not _alive(int(pid), labels.get(PID_NAMESPACE_LABEL))


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
