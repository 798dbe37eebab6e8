"""Whose containers are they: the owner and starter identities cleanup and reuse rely on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from pytest_multiarch.cleanup import pid_namespace, process_identity, process_state


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_this_process_is_alive():
    assert process_state(process_identity(), pid_namespace()) == "alive"


def test_a_process_that_ended_is_dead():
    assert process_state(f"{socket.gethostname()}:{dead_pid()}", pid_namespace()) == "dead"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="start times come from /proc")
def test_a_pid_now_held_by_another_process_is_dead():
    host, pid, started = process_identity().split(":")
    assert started.isdigit()
    # This pid runs, but the process recorded under it started at another time: it ended, and
    # the pid went to this one.
    assert process_state(f"{host}:{pid}:{int(started) - 1}", pid_namespace()) == "dead"


def test_another_host_or_pid_namespace_cannot_be_told():
    assert process_state(f"elsewhere.example:{os.getpid()}", None) == "unknown"
    assert process_state(process_identity(), "pid:[1]") == "unknown"
    assert process_state("", None) == "unknown"


SIGNALS_SCRIPT = """
import os, signal, time
from pytest_multiarch import cleanup

# Ctrl-C as in a pytest run from a terminal, also where this test's process was started in the
# background of a non-interactive shell (which ignores SIGINT, and so would this script).
signal.signal(signal.SIGINT, signal.default_int_handler)

def handlers():
    return [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]

found = handlers()
tracker = cleanup.Tracker()
cleanup.open_session(tracker)
with cleanup.signals_absorbed():  # a session that ends without a signal: the handlers as found
    cleanup.close_session(tracker)
print("normal", handlers() == found)

tracker = cleanup.Tracker()
cleanup.open_session(tracker)
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    print("first", "not raised")
except KeyboardInterrupt:
    print("first", "KeyboardInterrupt")
os.kill(os.getpid(), signal.SIGINT)  # pytest handles the first: the second is absorbed
os.kill(os.getpid(), signal.SIGTERM)
with cleanup.signals_absorbed():
    cleanup.close_session(tracker)
os.kill(os.getpid(), signal.SIGINT)  # pytest and the interpreter wind down: absorbed
print("late", "absorbed")
cleanup.LATE_SIGNAL_SECONDS = 0.0  # a process that goes on: later, Ctrl-C is Ctrl-C again
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    print("after", "not raised")
except KeyboardInterrupt:
    print("after", "KeyboardInterrupt", handlers() == found)
"""


def test_after_the_first_signal_later_ones_are_absorbed_until_the_run_has_wound_down():
    done = subprocess.run([sys.executable, "-c", SIGNALS_SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "normal True",
        "first KeyboardInterrupt",
        "late absorbed",
        "after KeyboardInterrupt True",
    ], done.stderr
