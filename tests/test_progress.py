"""The heartbeat while a test waits (issue 27): it counts the build's own running time and
appears only while a build runs, never for the time a test spent waiting for a queued one."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from pytest_multiarch.progress import wait


class Recorder:
    def __init__(self) -> None:
        self.shown: list[tuple[str, float]] = []
        self.ended = 0

    def status(self, doing: str, elapsed: float) -> None:
        self.shown.append((doing, elapsed))

    def end_status(self) -> None:
        self.ended += 1


def test_the_heartbeat_shows_the_running_builds_time_and_nothing_while_it_is_queued() -> None:
    future: Future[str] = Future()
    answers: list[Any] = [None, ("building linux/arm64", 95.0), ("building linux/arm64", 96.0)]

    def running() -> tuple[str, float] | None:
        answer = answers.pop(0)
        if not answers:
            future.set_result("image")
        return answer

    recorder = Recorder()
    say: Any = recorder
    assert wait(future, running, say, lambda _: None) == "image"
    assert recorder.shown == [("building linux/arm64", 95.0), ("building linux/arm64", 96.0)]
    assert recorder.ended == 1
