"""Faults, for real: a signal sent to pytest alone during a slow build, an engine that goes away
mid-test, and a request and a command that would hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import NATIVE, WAIT, ctrl_c_as_usual, owned_by, wait_for


def descendants_running(pid: int, matching: str) -> list[int]:
    """Processes below ``pid`` (in /proc) whose command line holds ``matching``, zombies excepted."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])

    def below(candidate: int) -> bool:
        while candidate in parents:
            candidate = parents[candidate]
            if candidate == pid:
                return True
        return False

    found = []
    for candidate in parents:
        try:
            cmdline = Path(f"/proc/{candidate}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if matching in cmdline and below(candidate):
            found.append(candidate)
    return found


@pytest.mark.usefixtures("docker_engine")
def test_sigterm_to_pytest_alone_during_a_build_stops_it_at_once(busybox_project):
    """What `docker stop`, a CI runner's cancel or a timeout sends: SIGTERM to pytest only. The
    arm64 build sleeps; pytest must end it (buildx and all it started), remove its containers,
    report, and exit as interrupted; a second SIGTERM during cleanup is absorbed quietly."""
    busybox_project.makefile(
        "",
        Dockerfile="""\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE}
        ARG FRESH
        RUN if [ "$(uname -m)" = aarch64 ]; then echo "$FRESH"; sleep 300; fi
        EXPOSE 8080
        CMD ["httpd", "-f", "-p", "8080"]
        """,
    )
    busybox_project.makepyfile(test_app="def test_x(multiarch_container):\n    pass\n")
    log = busybox_project.path / "out.log"
    with log.open("w") as out:
        pytest_process = subprocess.Popen(
            # -v: the plugin's lines as they come (by default they wait for pytest's line breaks)
            [
                sys.executable,
                "-m",
                "pytest",
                "-v",
                "-p",
                "no:cacheprovider",
                f"--multiarch-build-arg=FRESH={time.time()}",
            ],
            cwd=busybox_project.path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a signal to its group would be Ctrl-C; this is pytest alone
        )
        try:
            builds = wait_for(lambda: descendants_running(pytest_process.pid, "buildx"), "the arm64 build")
            wait_for(lambda: "sleep 300" in log.read_text() or log.read_text().count("build linux/amd64"), "output")
            started = time.monotonic()
            os.kill(pytest_process.pid, signal.SIGTERM)
            time.sleep(0.3)  # then a second one, as an impatient runner sends
            if pytest_process.poll() is None:
                os.kill(pytest_process.pid, signal.SIGTERM)
            code = pytest_process.wait(timeout=60)
            took = time.monotonic() - started
        finally:
            if pytest_process.poll() is None:
                pytest_process.kill()
    output = log.read_text()
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert took < 30, f"pytest took {took:.1f} s to stop\n{output}"
    assert not [pid for pid in builds if Path(f"/proc/{pid}").exists() and _running(pid)], output
    assert not descendants_running(pytest_process.pid, "buildx")
    assert "Traceback" not in output and "Exception ignored" not in output, output
    assert owned_by(pytest_process.pid) == []


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.usefixtures("docker_engine")
def test_an_engine_going_away_mid_test_is_one_error_naming_it_and_nothing_is_left(busybox_project, private_engine):
    endpoint = "tcp://127.0.0.3:2375"
    busybox_project.makepyfile(
        test_app="""
        import time
        from pathlib import Path

        def test_x(multiarch_container):
            Path("ready").write_text(multiarch_container.id)
            while not Path("engine-stopped").exists():
                time.sleep(0.1)
            multiarch_container.exec(["uname", "-m"])
        """
    )
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--multiarch-platforms=linux/arm64"]
    args.append(f"--multiarch-engine=linux/arm64={endpoint}")
    log = busybox_project.path / "out.log"
    with log.open("w") as out:
        first = subprocess.Popen(args, cwd=busybox_project.path, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: (busybox_project.path / "ready").exists() or first.poll() is not None, "the test")
            private_engine("stop")
            (busybox_project.path / "engine-stopped").write_text("")
            code = first.wait(timeout=WAIT)
        finally:
            if first.poll() is None:
                first.kill()
    output = log.read_text()
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert f"EngineGone: the Docker engine at {endpoint} stopped answering while running 'uname -m' in it" in output
    assert "Traceback" not in output and "requests.exceptions" not in output, output
    failure = output.split("___ test_x[linux/arm64] ___")[1].split("=====")[0]
    assert len(failure.splitlines()) < 10, failure  # one screen, not a library traceback
    assert "1 container(s) could not be removed: the Docker engine at tcp://127.0.0.3:2375 does not answer" in output
    # The engine is back: the next session removes what is left, and says so.
    private_engine("start")
    left = owned_by(first.pid, endpoint)
    assert len(left) == 1, output
    busybox_project.makepyfile(test_later="def test_y(multiarch_container):\n    pass\n")
    again = busybox_project.run(*args, "test_later.py")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*removed 1 container(s) left by earlier pytest runs that could not remove them*"])
    assert owned_by(first.pid, endpoint) == []


@pytest.mark.usefixtures("docker_engine")
def test_a_request_and_a_command_that_would_hang_end_with_a_timeout_naming_them(busybox_project):
    busybox_project.makepyfile(
        test_app="""
        import subprocess, time
        import pytest
        import requests
        from pytest_multiarch import MultiarchError

        def test_hang(multiarch_http, multiarch_container, multiarch_platform):
            seconds = 1 if str(multiarch_platform) == NATIVE else 5  # emulated: 5x the timeout
            subprocess.run(["docker", "pause", multiarch_container.id], check=True)
            try:
                started = time.monotonic()
                with pytest.raises(requests.Timeout) as waited:
                    multiarch_http.get("/slow")
                assert isinstance(waited.value, MultiarchError)
                message = str(waited.value)
                expected = f"GET /slow to the {multiarch_platform} container got no answer within {seconds}"
                assert message.startswith(expected)
                assert seconds <= time.monotonic() - started < seconds + 10
            finally:
                subprocess.run(["docker", "unpause", multiarch_container.id], check=True)
            expected = f"'sleep 60' in the {multiarch_platform} container did not finish within 0.5 s"
            with pytest.raises(MultiarchError, match=expected):
                multiarch_container.exec(["sleep", "60"], timeout=0.5)
        """.replace("NATIVE", repr(NATIVE))
    )
    result = busybox_project.runpytest_subprocess("--multiarch-request-timeout=1")
    result.assert_outcomes(passed=2)


# A conftest whose pytest_keyboard_interrupt and pytest_unconfigure (another plugin's, run before
# the multiarch plugin's own) say when they run and wait for the test to let them go on: a second
# Ctrl-C is sent exactly there, whatever the machine's speed.
HOLDING_CONFTEST = """
import time
from pathlib import Path

def _hold(name):
    Path(name).write_text("")
    deadline = time.monotonic() + 60
    while not Path(name + ".go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)

def pytest_keyboard_interrupt(excinfo):
    _hold("in-keyboard-interrupt")

def pytest_unconfigure(config):
    _hold("in-unconfigure")
"""


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("second", ["at-once", "0.1s-later", "in-keyboard-interrupt", "in-unconfigure"])
def test_a_second_and_third_ctrl_c_after_the_first_are_absorbed(busybox_project, second):
    """Ctrl-C (SIGINT to pytest's process group, as a terminal sends it) while a test runs, then
    again at once, a little later, or while pytest or another plugin handles the first: exit 2,
    no traceback, every container removed. Timing-dependent, hence several moments."""
    busybox_project.makeconftest(HOLDING_CONFTEST)
    busybox_project.makepyfile(
        test_app="""
        import time
        from pathlib import Path

        def test_x(multiarch_container):
            Path("running").write_text("")
            time.sleep(120)
        """
    )
    log = busybox_project.path / "out.log"
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--multiarch-platforms={NATIVE}"]
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=busybox_project.path, stdout=out, stderr=out, start_new_session=True, preexec_fn=ctrl_c_as_usual
        )
    path = busybox_project.path
    try:
        wait_for(lambda: (path / "running").exists() or process.poll() is not None, "the test")
        if second == "in-unconfigure":  # the first Ctrl-C passes pytest_keyboard_interrupt unheld
            (path / "in-keyboard-interrupt.go").write_text("")
        os.killpg(process.pid, signal.SIGINT)
        if second in ("in-keyboard-interrupt", "in-unconfigure"):
            wait_for(lambda: (path / second).exists() or process.poll() is not None, second)
        elif second == "0.1s-later":
            time.sleep(0.1)  # the moment itself is what is tested, not a wait for a state
        for _ in range(2):  # a second and a third
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for name in ("in-keyboard-interrupt", "in-unconfigure"):
            (path / f"{name}.go").write_text("")
        code = process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback" not in output and "Exception ignored" not in output, output
    assert owned_by(process.pid) == [], output
