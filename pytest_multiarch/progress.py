"""Progress on the terminal: ``multiarch:`` lines, and a waiting status that never looks hung.

On a TTY the status ("still building linux/arm64 (12 s)…") is rewritten in place every second;
elsewhere (CI logs) it is a plain line every ``PLAIN_EVERY_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before 3.11
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

PLAIN_EVERY_SECONDS = 15.0


class Terminal:
    """Writes to pytest's terminal reporter, with output capture suspended (fixtures run with
    output captured). Does nothing where there is no terminal reporter (xdist workers)."""

    def __init__(self, config: pytest.Config) -> None:
        self._reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._capture = config.pluginmanager.get_plugin("capturemanager")
        self.live = bool(self._reporter is not None and getattr(self._reporter, "isatty", False))
        self._status_shown = False
        self._next_plain: dict[str, float] = {}

    def __call__(self, message: str) -> None:
        """A line that stays; it takes the place of a status line shown just before."""
        if self._status_shown:
            self._write(lambda r: r.rewrite(f"multiarch: {message}", erase=True))
            self._write(lambda r: r.write("\n"))
            self._status_shown = False
        else:
            self._write(lambda r: r.write_line(f"multiarch: {message}"))

    def status(self, doing: str, elapsed: float) -> None:
        """``still <doing> (12 s)…``: rewritten in place on a TTY; elsewhere a plain line once
        every PLAIN_EVERY_SECONDS of the same wait."""
        message = f"still {doing} ({elapsed:.0f} s)…"
        if self.live:
            if self._status_shown:
                self._write(lambda r: r.rewrite(f"multiarch: {message}", erase=True))
            else:  # on a line of its own, left open so that the next rewrite replaces it
                self._write(lambda r: (r.ensure_newline(), r.write(f"multiarch: {message}")))
                self._status_shown = True
        elif elapsed >= self._next_plain.get(doing, PLAIN_EVERY_SECONDS):
            self._next_plain[doing] = elapsed + PLAIN_EVERY_SECONDS
            self(message)

    def end_status(self) -> None:
        """Close a status line left open, so that pytest's own output starts on a new line."""
        if self._status_shown:
            self._write(lambda r: r.write("\n"))
            self._status_shown = False

    def _write(self, action: Callable[[Any], object]) -> None:
        reporter = self._reporter
        if reporter is None:
            return
        if self._capture is None:
            action(reporter)
            return
        with self._capture.global_and_fixture_disabled():
            action(reporter)


def wait(future: Future[T], doing: str, say: Terminal, flush: Callable[[Terminal], None]) -> T:
    """Wait for ``future``, showing what background work reports (``flush``) and a status line
    that says what is awaited and for how long."""
    started = time.monotonic()
    while True:
        try:
            result = future.result(timeout=1.0)
        except FutureTimeout:
            flush(say)
            say.status(doing, time.monotonic() - started)
            continue
        except BaseException:
            flush(say)
            say.end_status()
            raise
        flush(say)
        say.end_status()
        return result
