"""The heartbeat while a test waits (issue 27): it counts the build's own running time and
appears only while a build runs, never for the time a test spent waiting for a queued one."""

from __future__ import annotations

import re
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


def test_lines_said_during_tests_wait_for_pytests_line_breaks(pytester) -> None:
    """Default verbosity, 120 tests in one file, each saying a line while it runs (as a fixture
    waiting for a build does): the file's name is printed once, its results are never split by
    one of ours, and every line is shown, between pytest's wrapped lines or at the end."""
    pytester.makepyfile(
        test_many="""
        import pytest
        from pytest_multiarch.fixtures import state

        @pytest.mark.parametrize("n", range(120))
        def test_says(request, n):
            state(request.config).say(f"line {n}")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--color=no")
    result.assert_outcomes(passed=120)
    lines = result.stdout.lines
    named = [line for line in lines if "test_many.py" in line]
    assert len(named) == 1 and named[0].startswith("test_many.py ."), named
    said = [line for line in lines if line.startswith("multiarch: line ")]
    assert said == [f"multiarch: line {n}" for n in range(120)]
    results = [re.fullmatch(r"(test_many\.py )?(\.+) +\[ *\d+%\]", line) for line in lines]
    assert sum(len(found.group(2)) for found in results if found) == 120, lines  # whole lines of results
    wrapped = [i for i, found in enumerate(results) if found and not found.group(1)]  # pytest's own wrap
    assert wrapped and lines[wrapped[0] - 1].startswith("multiarch: line "), lines  # ours came at the wrap


def test_in_a_log_the_heartbeat_is_one_line_per_15_s_of_build_time(pytester) -> None:
    """Not on a terminal (a CI log), -v: the status at 1 … 46 s of one build's time gives a line
    at 15, 30 and 45 s only; another build counts on its own."""
    pytester.makepyfile(
        test_beat="""
        from pytest_multiarch.fixtures import state

        def test_beat(request):
            say = state(request.config).say
            for second in range(1, 47):
                say.status("building linux/arm64", float(second))
            say.status("building linux/amd64", 15.2)
        """
    )
    result = pytester.runpytest_inprocess("-v", "-p", "no:cacheprovider", "--color=no")
    result.assert_outcomes(passed=1)
    shown = [line for line in result.stdout.lines if "still building" in line]
    assert shown == [
        "multiarch: still building linux/arm64 (15 s)…",
        "multiarch: still building linux/arm64 (30 s)…",
        "multiarch: still building linux/arm64 (45 s)…",
        "multiarch: still building linux/amd64 (15 s)…",
    ], result.stdout.str()
