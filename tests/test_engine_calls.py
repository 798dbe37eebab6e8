"""Engine.call, the one place engine calls a test can trigger go through: whatever the libraries
raise when the engine goes away is one EngineGone naming it; an error the engine answered is one
EngineRefused; anything else passes unchanged. And a test's failure shows none of the plugin's
frames."""

from __future__ import annotations

import http.client
from typing import Any

import docker.errors
import pytest
import requests
import urllib3.exceptions

from pytest_multiarch import cleanup
from pytest_multiarch.build import BuiltImage
from pytest_multiarch.engine import Endpoint, Engine
from pytest_multiarch.enginefaults import lost_connection
from pytest_multiarch.errors import EngineGone, EngineRefused
from pytest_multiarch.oneshot import RunCommand, RunTimeout, run_once
from pytest_multiarch.platforms import Platform

ENDPOINT = "tcp://127.0.0.1:9"


def _wrapped(outer: type[BaseException], inner: BaseException, *args: Any) -> BaseException:
    """``outer`` raised while handling ``inner``, as libraries do."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer(*args, exc) from exc
    except BaseException as found:
        return found


def _chunked() -> BaseException:
    """What requests raises for a streamed answer cut short (a killed engine): seen for real."""
    return _wrapped(requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError("Response ended"))


LOST = {
    "streamed answer cut short": _chunked(),
    "incomplete read in urllib3": urllib3.exceptions.ProtocolError(
        "Connection broken", http.client.IncompleteRead(b"", 2)
    ),
    "connection refused": requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))
    ),
    "remote disconnected": requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    ),
    "docker-py's version check": _wrapped(
        docker.errors.DockerException,
        requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("aborted", FileNotFoundError(2, "x"))),
        "Error while fetching server API version",
    ),
    "a bare reset socket": ConnectionResetError(104, "Connection reset by peer"),
    "a read timeout": requests.exceptions.ReadTimeout("Read timed out."),
}


@pytest.mark.parametrize("raised", LOST.values(), ids=LOST.keys())
def test_every_way_of_losing_the_engine_is_one_engine_gone_naming_it(raised):
    engine = Engine(Endpoint(ENDPOINT, given=True))
    with pytest.raises(EngineGone) as gone, engine.call("reading /x (linux/arm64 container)"):
        raise raised
    message = str(gone.value)
    assert message.startswith(f"the Docker engine at {ENDPOINT} stopped answering while reading /x (linux/arm64")
    assert f"`docker --host {ENDPOINT} info`" in message
    assert gone.value.__suppress_context__ and gone.value.__cause__ is None  # no library traceback below


def test_the_reason_is_the_innermost_error_in_a_few_words():
    assert lost_connection(LOST["remote disconnected"]) == "connection closed without an answer"
    assert lost_connection(LOST["incomplete read in urllib3"]) == "the connection broke in the middle of an answer"
    assert lost_connection(LOST["a read timeout"]) == "no answer within 60 s"
    assert lost_connection(ValueError("no")) is None


def test_an_error_the_engine_answered_is_one_engine_refused_in_its_words():
    engine = Engine(Endpoint(ENDPOINT, given=True))
    response = requests.Response()
    response.status_code = 404
    with pytest.raises(EngineRefused) as refused, engine.call("reading /x (linux/arm64 container)"):
        raise docker.errors.NotFound("404 Client Error", response=response, explanation="No such container: abc")
    assert str(refused.value) == (
        f"the Docker engine at {ENDPOINT} refused reading /x (linux/arm64 container): No such container: abc"
    )


def test_other_errors_pass_unchanged():
    engine = Engine(Endpoint(ENDPOINT, given=True))
    with pytest.raises(KeyError), engine.call("anything"):
        raise KeyError("x")
    with pytest.raises(RunTimeout), engine.call("anything"):
        raise RunTimeout("the plugin's own errors are complete already")


class _Container:
    """A one-shot container whose engine fails as ``failures`` says, per method."""

    id = "c0ffee"

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = failures

    def _maybe(self, name: str) -> None:
        if name in self.failures:
            raise self.failures[name]

    def start(self) -> None:
        self._maybe("start")

    def wait(self, timeout: float) -> dict[str, int]:
        self._maybe("wait")
        return {"StatusCode": 0}

    def logs(self, **_: Any) -> bytes:
        self._maybe("logs")
        return b""

    def remove(self, **_: Any) -> None:
        pass


class _Engine(Engine):
    def __init__(self, container: _Container, *, answers: bool) -> None:
        super().__init__(Endpoint(ENDPOINT, given=True))
        self._container = container
        self._answers = answers

    @property
    def sdk(self) -> Any:
        container = self._container

        class Containers:
            @staticmethod
            def create(*_: Any, **__: Any) -> _Container:
                return container

        class Client:
            containers = Containers

        return Client()

    def answers(self) -> bool:
        return self._answers


IMAGE = BuiltImage("t:1", "sha256:1", Platform.parse("linux/arm64"), "k", False, 0.0)


@pytest.mark.parametrize(
    ("failing", "answers"),
    [("wait", False), ("wait", True), ("logs", False), ("start", False)],
    ids=["wait-engine-gone", "wait-connection-dropped-ping-answers", "logs", "start"],
)
def test_a_one_shot_run_whose_engine_goes_away_is_one_engine_gone(failing, answers):
    """A dropped connection is the engine's loss even when a ping answers afterwards (it was
    reported as a timeout), and the logs are read through Engine.call too."""
    engine = _Engine(_Container({failing: _chunked()}), answers=answers)
    with pytest.raises(EngineGone, match=f"the Docker engine at {ENDPOINT} stopped answering while .*`sleep 1`"):
        run_once(engine, IMAGE, RunCommand(["sleep", "1"]), tracker=cleanup.Tracker(), timeout=5)


TIMEOUTS = {
    "read timeout": requests.exceptions.ReadTimeout("Read timed out."),
    # what docker-py's wait gives on the local socket: requests wraps it after urllib3's retries
    "after retries": requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/wait", urllib3.exceptions.ReadTimeoutError(None, "/wait", "timed out"))
    ),
}


@pytest.mark.parametrize("raised", TIMEOUTS.values(), ids=TIMEOUTS.keys())
def test_a_one_shot_run_that_times_out_while_its_engine_answers_is_a_run_timeout(raised):
    engine = _Engine(_Container({"wait": raised}), answers=True)
    with pytest.raises(RunTimeout, match="`sleep 1` on linux/arm64 did not exit within 5 s"):
        run_once(engine, IMAGE, RunCommand(["sleep", "1"]), tracker=cleanup.Tracker(), timeout=5)


def test_a_failure_raised_by_the_plugin_in_a_test_shows_the_tests_line_not_the_plugins_frames(pytester):
    pytester.makepyfile(
        """
        import docker.errors
        from pytest_multiarch.engine import Endpoint, Engine

        def test_x():
            engine = Engine(Endpoint("tcp://127.0.0.1:9", given=True))
            with engine.call("reading /x"):
                raise docker.errors.DockerException("no such thing")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert 'with engine.call("reading /x"):' in output  # the test's own line
    assert "EngineRefused: the Docker engine at tcp://127.0.0.1:9 refused reading /x: no such thing" in output
    assert "pytest_multiarch/" not in output and "contextlib" not in output, output
    full = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--fulltrace")
    assert "pytest_multiarch/engine.py" in full.stdout.str()  # still there for the plugin's developers
