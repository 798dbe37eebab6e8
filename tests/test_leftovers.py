"""The leftover watch (tests/leftovers.py) judges a container by its owner's pid: a pid seen below
the test counts as the test's only while it still names the process seen, since pids are used
again within a minute on a busy machine."""

from __future__ import annotations

import subprocess
import sys

from tests.leftovers import Watch, _start_time


def test_a_pid_now_naming_another_process_is_not_the_tests() -> None:
    watch = Watch([], sessions_may_leave=False)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = _start_time(other.pid)
        assert started is not None
        watch.seen = {other.pid: started - 1}  # seen when the pid named an earlier process
        assert other.pid not in watch.ours()
        watch.seen = {other.pid: started}
        assert other.pid in watch.ours()
    finally:
        other.kill()
        other.wait()
    assert other.pid in watch.ours()  # ended: its containers are still the test's


def test_the_scan_records_each_process_below_the_test_with_its_start() -> None:
    watch = Watch([], sessions_may_leave=False)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch._scan({})
        assert watch.seen[child.pid] == _start_time(child.pid)
    finally:
        child.kill()
        child.wait()
