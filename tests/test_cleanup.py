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
