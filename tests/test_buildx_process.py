"""The buildx child process (buildx.py), with a stand-in for the docker CLI: the build arg's value
reaches it through the environment only, its log is masked, a failure names the failing step,
and a build still running when the session stops is ended on any system."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_multiarch.buildx import end_running_builds, run_buildx
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.engine import Endpoint, Engine
from pytest_multiarch.errors import BuildError, EngineGone
from pytest_multiarch.platforms import Platform

ARM64 = Platform.parse("linux/arm64")

# Stands in for `docker`: prints what it was given (the command line and the build arg from its
# environment), then exits with $EXIT or sleeps when told.
FAKE_CLI = """
import os, sys, time
print("#1 argv " + " ".join(sys.argv[1:]), flush=True)
print("#1 env TOKEN=" + os.environ.get("TOKEN", "-"), flush=True)
if os.environ.get("FAKE_SLEEP"):
    time.sleep(60)
if os.environ.get("FAKE_FAIL"):
    print("#2 [2/2] RUN make", flush=True)
    print("#2 ERROR: process did not complete successfully", flush=True)
    sys.exit(1)
if os.environ.get("FAKE_LOST"):  # what buildx printed when its engine was SIGKILLed mid-build
    print("#2 [2/2] RUN make", flush=True)
    print("ERROR: failed to solve: Unavailable: error reading from server: EOF", flush=True)
    sys.exit(1)
"""


class FakeEngine(Engine):
    """An engine whose CLI is the fake above, answering a ping as ``answering`` says."""

    def __init__(self, script: Path) -> None:
        super().__init__(Endpoint("tcp://127.0.0.1:9", given=True))
        self.script = script
        self.answering = True

    def docker_command(self) -> list[str]:
        return [sys.executable, str(self.script)]

    def answers(self) -> bool:
        return self.answering


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    script = tmp_path / "fake_docker.py"
    script.write_text(FAKE_CLI)
    return FakeEngine(script)


@pytest.fixture
def spec(tmp_path: Path) -> ImageSpec:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return ImageSpec(
        name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile", build_args={"TOKEN": "s3cr3t-v4lue"}
    )


def test_the_build_arg_goes_by_environment_and_the_log_is_masked(engine, spec):
    lines: list[str] = []
    run_buildx(engine, spec, ARM64, "t:1", {}, lines.append, (None, None))
    assert "--build-arg TOKEN " in lines[0] + " " and "s3cr3t" not in lines[0]  # by name on the command line
    assert lines[1].startswith("#1 env TOKEN=") and "s3cr3t" not in lines[1]  # reached it, masked in the log


def test_a_failed_build_names_its_step_and_never_shows_the_value(engine, spec, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(BuildError) as failed:
        run_buildx(engine, spec, ARM64, "t:1", {}, None, (None, None))
    assert "failed at step: [2/2] RUN make" in str(failed.value) and "s3cr3t" not in str(failed.value)


@pytest.mark.parametrize("answering", [True, False], ids=["engine-back-already", "engine-down"])
def test_an_engine_lost_mid_build_is_named_and_the_dockerfile_not_blamed(engine, spec, monkeypatch, answering):
    monkeypatch.setenv("FAKE_LOST", "1")
    engine.answering = answering
    with pytest.raises(EngineGone) as lost:
        run_buildx(engine, spec, ARM64, "t:1", {}, None, (None, None))
    message = str(lost.value)
    assert message.startswith(
        f"the Docker engine at tcp://127.0.0.1:9 stopped answering while building {spec.dockerfile}"
    )
    assert (
        "'failed to solve: Unavailable: error reading from server: EOF'; the build did not fail on its own" in message
    )


def test_a_failed_build_whose_engine_is_down_is_not_blamed_on_the_dockerfile(engine, spec, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    engine.answering = False
    with pytest.raises(EngineGone, match="the build did not fail on its own"):
        run_buildx(engine, spec, ARM64, "t:1", {}, None, (None, None))


def test_a_build_still_running_when_the_session_stops_is_ended(engine, spec, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "1")
    outcome: list[BaseException] = []
    started = threading.Event()

    def build() -> None:
        try:
            run_buildx(engine, spec, ARM64, "t:1", {}, lambda _: started.set(), (None, None))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    assert started.wait(30)  # it runs and has printed
    began = time.monotonic()
    assert end_running_builds(grace=5) == 1
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - began < 20
    assert len(outcome) == 1 and isinstance(outcome[0], BuildError)
    assert end_running_builds() == 0  # nothing left to end
