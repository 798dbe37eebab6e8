"""``python -m pytest_multiarch doctor`` run as a user runs it: a subprocess against the real engine.

Nothing is mocked: the point of the doctor is to tell the truth about this machine, so the tests
check its verdict on a working engine, on an unreachable one, and on a bad platform argument.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUSYBOX
from tests.integration.helpers import NATIVE

ROOT = Path(__file__).resolve().parents[1]


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_multiarch", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,  # a first pull of each platform, then a QEMU start
    )


def assert_lines(output: str, *patterns: str) -> None:
    for pattern in patterns:
        assert re.search(pattern, output, re.MULTILINE), f"no line matching {pattern!r} in:\n{output}"


def test_doctor_on_a_working_engine_runs_each_platform(docker_engine: None) -> None:
    result = doctor("doctor", "--platforms", "linux/amd64,linux/arm64", "--image", BUSYBOX)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert_lines(
        result.stdout,
        r"^ok +Docker daemon: server \S+, native linux/",
        r"^ok +buildx \S+",
        r"^ok +builder \S+ \(driver \S+\): .*linux/arm64",
        r"^ok +linux/amd64: (native|emulated)",
        r"^ok +linux/arm64: (native|emulated)",
        r"^ok +run linux/amd64: uname -m = x86_64\b",
        r"^ok +run linux/arm64: uname -m = aarch64\b",
    )
    assert not re.search(r"^fail", result.stdout, re.MULTILINE)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (not a daemon)")
def test_doctor_reports_an_unreachable_daemon_with_its_fix() -> None:
    result = doctor("doctor", "--image", BUSYBOX, env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert_lines(
        result.stdout,
        r"^fail +Docker daemon unreachable at DOCKER_HOST=tcp://127\.0\.0\.1:9",
        r"^ +fix: Check that 127\.0\.0\.1 is reachable from here .* port 9 .*or unset DOCKER_HOST",
    )
    assert "Traceback" not in output


def test_an_unknown_platform_is_a_usage_error_naming_it() -> None:
    result = doctor("doctor", "--platforms", "linux/arm65")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown platform 'linux/arm65'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_the_command_line_needs_a_command_and_documents_doctor() -> None:
    bare = doctor()
    assert bare.returncode == 2
    assert bare.stderr.startswith("usage: python -m pytest_multiarch")
    helped = doctor("doctor", "--help")
    assert helped.returncode == 0
    assert "--platforms LIST" in helped.stdout
    assert "--image REF" in helped.stdout


def test_doctor_checks_each_engine_for_its_platforms(remote_engine: dict[str, str]) -> None:
    result = doctor(
        "doctor",
        "--image",
        BUSYBOX,
        "--engine",
        f"linux/arm64={remote_engine['REMOTE_DOCKER_HOST']}",
        "--builder",
        "default",
    )
    for host in ("unix:///var/run/docker.sock", remote_engine["REMOTE_DOCKER_HOST"]):
        subprocess.run(["docker", "-H", host, "image", "rm", BUSYBOX], capture_output=True)  # keep the index first
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    local, remote = result.stdout.split("\ntcp://127.0.0.2:2375 (for linux/arm64):\n")
    assert_lines(
        local, r"^ok +Docker daemon: .*\(unix:///var/run/docker\.sock\)", r"^ok +run linux/amd64: uname -m = x86_64"
    )
    assert not re.search(r"^\S+ +(run )?linux/arm64", local, re.MULTILINE)  # checked on its own engine only
    assert_lines(
        remote,
        r"^ok +Docker daemon: .*\(tcp://127\.0\.0\.2:2375\)",
        # The remote engine runs on this machine: arm64 is native there when it is here.
        r"^ok +linux/arm64: native" if NATIVE == "linux/arm64" else r"^ok +linux/arm64: emulated \(remote daemon",
        r"^ok +run linux/arm64: uname -m = aarch64",
    )
    assert not re.search(r"^\S+ +(run )?linux/amd64", remote, re.MULTILINE)
