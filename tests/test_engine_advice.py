"""An engine that does not answer gets advice that fits how it is reached (issue 27): never
"sudo systemctl start docker" for an engine on another host."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytest_multiarch.endpoints import DEFAULT_SOCKET, Endpoint


def test_a_local_socket_is_started_here() -> None:
    advice = Endpoint(DEFAULT_SOCKET).start_advice()
    assert "sudo systemctl start docker" in advice
    rootless = Endpoint("unix:///run/user/1000/docker.sock", from_env=True).start_advice()
    assert "/run/user/1000/docker.sock" in rootless and "systemctl --user start docker" in rootless
    assert rootless.endswith("or unset DOCKER_HOST to use this machine's engine.")


def test_a_remote_engine_is_checked_where_it_runs() -> None:
    tcp = Endpoint("tcp://docker:2376", tls_verify=True, context="ci").start_advice()
    assert "docker is reachable from here" in tcp and "port 2376" in tcp and "DOCKER_CERT_PATH" in tcp
    assert "pick another context than 'ci'" in tcp and "systemctl" not in tcp
    ssh = Endpoint("ssh://ci@graviton.internal", given=True).start_advice()
    assert "`ssh ci@graviton.internal docker info`" in ssh and "--multiarch-engine" in ssh
    assert "sudo systemctl" not in ssh


def test_a_run_and_the_doctor_give_a_remote_engines_advice(pytester: pytest.Pytester) -> None:
    environment = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:9", "CI": ""}
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\n")
    pytester.makepyfile(test_app="def test_x(multiarch_image): pass")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Check that 127.0.0.1 is reachable from here and that its Docker engine listens on port 9" in run.stdout
    assert "systemctl" not in run.stdout, run.stdout
    doctor = subprocess.run(
        [sys.executable, "-m", "pytest_multiarch", "doctor"],
        cwd=pytester.path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "fix: Check that 127.0.0.1 is reachable" in doctor.stdout and "systemctl" not in doctor.stdout, doctor.stdout
