"""Engines beyond the local socket, for real: a second dockerd on tcp://127.0.0.2:2375 stands in
for a remote host (scripts/remote-engine.sh), also reached through ssh:// and a docker context.
Each test checks on which engine each platform's container really ran, at which address its
port was reached; that neither engine keeps a container of the run is checked around every
Docker-backed test (conftest.py's ``_no_containers_left``), on both engines."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import mode

REMOTE = "tcp://127.0.0.2:2375"
LOCAL = "unix:///var/run/docker.sock"

WHERE_TESTS = """
import subprocess

EXPECTED = {expected!r}

def engine_of(container_id):
    found = [name for name, host in (("remote", "{remote}"), ("local", "{local}"))
             if subprocess.run(["docker", "-H", host, "inspect", container_id], capture_output=True).returncode == 0]
    return found

def test_where(multiarch_http, multiarch_container, multiarch_platform):
    engine, host = EXPECTED[str(multiarch_platform)]
    assert engine_of(multiarch_container.id) == [engine]
    assert multiarch_container.base_url.startswith(f"http://{{host}}:")
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {{multiarch_platform.machine}}"
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine
"""


def where_tests(arm64: tuple[str, str], amd64: tuple[str, str]) -> str:
    expected = {"linux/arm64": arm64, "linux/amd64": amd64}
    return WHERE_TESTS.format(expected=expected, remote=REMOTE, local=LOCAL)


def test_a_remote_default_engine_builds_and_runs_both_platforms_there(busybox_project, remote_engine, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", REMOTE)
    busybox_project.makepyfile(test_app=where_tests(arm64=("remote", "127.0.0.2"), amd64=("remote", "127.0.0.2")))
    result = busybox_project.runpytest_subprocess("-v", "--junitxml=report.xml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["multiarch: engine *(linux/amd64) at DOCKER_HOST=tcp://127.0.0.2:2375*"])
    assert "tcp://127.0.0.2:2375" in (busybox_project.path / "report.xml").read_text()  # the engine property


@pytest.mark.parametrize("how", ["tcp", "ssh", "context"])
def test_arm64_routed_to_a_second_engine_while_amd64_stays_local(busybox_project, remote_engine, monkeypatch, how):
    calls = busybox_project.path / "ssh-calls"
    if how == "ssh":
        # The test's ssh (its config and key), behind one that notes each call with its pid.
        noting = busybox_project.mkdir("noting")
        real = f"{remote_engine['REMOTE_SSH_PATH']}/ssh"
        (noting / "ssh").write_text(f'#!/bin/sh\necho "$$ $*" >> {calls}\nexec {real} "$@"\n')
        (noting / "ssh").chmod(0o755)
        monkeypatch.setenv("PATH", os.pathsep.join([str(noting), remote_engine["REMOTE_SSH_PATH"], os.environ["PATH"]]))
        endpoint = remote_engine["REMOTE_SSH_HOST"]
    elif how == "context":
        made = ["docker", "context", "create", "arm-box", "--docker", f"host={REMOTE}"]
        subprocess.run(made, capture_output=True, text=True, check=True)  # in pytester's HOME
        endpoint = "arm-box"
    else:
        endpoint = REMOTE
    busybox_project.makepyfile(test_app=where_tests(arm64=("remote", "127.0.0.2"), amd64=("local", "127.0.0.1")))
    result = busybox_project.runpytest_subprocess("-v", f"--multiarch-engine=linux/arm64={endpoint}")
    result.assert_outcomes(passed=2)
    name = endpoint if how != "ssh" else remote_engine["REMOTE_SSH_HOST"]
    amd, arm = mode("linux/amd64"), mode("linux/arm64")
    result.stdout.fnmatch_lines(
        [
            f"multiarch: engine {name} *",
            f"multiarch: platforms: linux/amd64 ({amd}*), linux/arm64 ({arm}*, on {name})",
            f"linux/arm64 *1 *0 *0 *0 *{arm} *{name}",
        ]
    )
    if how == "ssh":
        assert_one_ssh_connection_carried_everything(calls.read_text().splitlines())


def assert_one_ssh_connection_carried_everything(calls: list[str]) -> None:
    """One master connection, every API and CLI connection a channel of it (dialbridge.py), and
    the master ended with the session."""
    masters = [call.split()[0] for call in calls if call.split()[1:3] == ["-M", "-N"]]
    channels = [call for call in calls if "dial-stdio" in call]
    assert len(masters) == 1 and len(channels) > 5, calls
    assert all("-o ControlMaster=no" in call for call in channels), calls
    pid = int(masters[0])
    with contextlib.suppress(OSError):  # gone; or its pid is used again, by another process
        assert "-M" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0"), calls


def test_an_unreachable_engine_errors_only_its_platform_naming_the_endpoint(
    busybox_project, remote_engine, monkeypatch
):
    # Without CI (which fails every platform that cannot run): a routed platform fails by itself.
    monkeypatch.delenv("CI", raising=False)
    busybox_project.makepyfile(test_app=where_tests(arm64=("remote", "-"), amd64=("local", "127.0.0.1")))
    result = busybox_project.runpytest_subprocess("--multiarch-engine", "linux/arm64=tcp://127.0.0.9:2375")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*[[]linux/arm64[]] EngineError: the Docker daemon does not answer at tcp://127.0.0.9:2375*"]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("how", ["failure", "sigterm"])
def test_neither_engine_keeps_a_container_after_a_failing_or_interrupted_run(busybox_project, remote_engine, how):
    busybox_project.makepyfile(
        test_app=f"""
        import os, signal

        def test_x(multiarch_container, multiarch_platform):
            if {how!r} == "sigterm" and multiarch_platform.arch == "arm64":
                os.kill(os.getpid(), signal.SIGTERM)
            assert False, "failing on purpose"
        """
    )
    result = busybox_project.runpytest_subprocess(f"--multiarch-engine=linux/arm64={REMOTE}")
    if how == "failure":
        result.assert_outcomes(failed=2)
    else:
        assert result.ret == pytest.ExitCode.INTERRUPTED


def test_a_named_builder_builds_and_loads_into_each_platforms_engine(busybox_project, remote_engine):
    busybox_project.makepyfile(test_app=where_tests(arm64=("remote", "127.0.0.2"), amd64=("local", "127.0.0.1")))
    result = busybox_project.runpytest_subprocess(
        "--multiarch-builder=default", f"--multiarch-engine=linux/arm64={REMOTE}"
    )
    result.assert_outcomes(passed=2)


def test_a_docker_driver_builder_of_another_context_is_refused_for_that_platform(busybox_project, remote_engine):
    made = ["docker", "context", "create", "arm-box", "--docker", f"host={REMOTE}"]
    subprocess.run(made, capture_output=True, text=True, check=True)  # in pytester's HOME
    busybox_project.makepyfile(test_app=where_tests(arm64=("remote", "-"), amd64=("local", "127.0.0.1")))
    result = busybox_project.runpytest_subprocess(
        "--multiarch-builder=default", "--multiarch-engine=linux/arm64=arm-box"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]linux/arm64[]] EngineError: builder 'default' uses the docker driver, which builds into the engine of "
            "context default only, not into context 'arm-box' (tcp://127.0.0.2:2375)*"
        ]
    )
