"""An engine killed (SIGKILL, as a crash or the OOM killer ends it) while a test uses it: during a
one-shot run, a streamed file read and a build. Each is one message naming the engine, with no
library traceback and none of the plugin's own frames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import NATIVE, WAIT, owned_by, wait_for

# What a library traceback would show; none of it may reach the report.
LIBRARY_NAMES = ("Traceback", "requests.exceptions", "urllib3", "docker.errors", "pytest_multiarch/", "http.client")


def start_session(project: pytest.Pytester, engine: str, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    """pytest in a child process, the native platform routed to ``engine``; its output in out.log."""
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--multiarch-platforms={NATIVE}"]
    args += [f"--multiarch-engine={NATIVE}={engine}", *extra]
    log = project.path / "out.log"
    with log.open("w") as out:
        process = subprocess.Popen(args, cwd=project.path, stdout=out, stderr=subprocess.STDOUT)
    return process, log


def finished(process: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    try:
        code = process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
    return code, log.read_text()


def failure_of(output: str, test: str) -> str:
    """The report section of ``test`` (failures or errors)."""
    return output.split(f"___ {test} ___")[1].split("=====")[0]


def assert_one_error_naming_the_engine(
    process: subprocess.Popen[bytes], log: Path, endpoint: str, test: str, doing: str
) -> None:
    """The session failed, and ``test``'s report is a few lines naming the engine and what the
    test was doing, with no library traceback anywhere in the output."""
    code, output = finished(process, log)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    failure = failure_of(output, test)
    assert f"EngineGone: the Docker engine at {endpoint} " in failure, output
    assert doing in failure, failure
    assert not [name for name in LIBRARY_NAMES if name in output], output
    assert len(failure.splitlines()) < 12, failure


def resident_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


@pytest.mark.usefixtures("docker_engine")
def test_an_engine_killed_during_a_one_shot_run_is_one_error_naming_it(busybox_project, private_engine):
    busybox_project.makepyfile(test_run="def test_run(multiarch_run):\n    multiarch_run('sleep', '300')\n")
    process, log = start_session(busybox_project, private_engine.endpoint)
    # Running: the architecture check's never-started container exists before the run's, and
    # killing the engine then would fail the session's sweep instead of the run.
    endpoint = private_engine.endpoint
    wait_for(lambda: owned_by(process.pid, endpoint, running=True) or process.poll() is not None, "the run")
    private_engine.kill()
    assert_one_error_naming_the_engine(process, log, private_engine.endpoint, f"test_run[{NATIVE}]", "`sleep 300`")


@pytest.mark.usefixtures("docker_engine")
def test_an_engine_killed_during_a_streamed_file_read_is_one_error_naming_it(busybox_project, private_engine):
    busybox_project.makepyfile(
        test_read="""
        from pathlib import Path

        def test_read(multiarch_container):
            multiarch_container.exec(["dd", "if=/dev/zero", "of=/big", "bs=1M", "count=1536"], timeout=120)
            Path("reading").write_text("")
            multiarch_container.read_file("/big")
        """
    )
    process, log = start_session(busybox_project, private_engine.endpoint)
    wait_for(lambda: (busybox_project.path / "reading").exists() or process.poll() is not None, "the read")
    before = resident_mib(process.pid)
    # Streaming: the archive piles up in the reading process.
    wait_for(lambda: process.poll() is not None or resident_mib(process.pid) > before + 64, "the stream")
    private_engine.kill()
    assert_one_error_naming_the_engine(process, log, private_engine.endpoint, f"test_read[{NATIVE}]", "reading /big")


@pytest.mark.usefixtures("docker_engine")
def test_an_engine_killed_during_a_build_is_named_and_not_blamed_on_the_dockerfile(busybox_project, private_engine):
    busybox_project.makefile(
        "",
        Dockerfile="""\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE}
        RUN echo building-slowly && sleep 300
        """,
    )
    busybox_project.makepyfile(test_app="def test_x(multiarch_image):\n    pass\n")
    process, log = start_session(busybox_project, private_engine.endpoint, "-v")
    wait_for(lambda: "building-slowly" in log.read_text() or process.poll() is not None, "the RUN step")
    private_engine.kill()
    code, output = finished(process, log)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    error = failure_of(output, f"ERROR at setup of test_x[{NATIVE}]")
    assert f"the Docker engine at {private_engine.endpoint} " in error, output
    assert "did not fail on its own" in error, error
    assert "build of" not in error and "failed at step" not in error, error
    assert "Traceback" not in output, output
