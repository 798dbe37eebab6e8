"""Progress on the terminal: ``multiarch:`` lines, and a heartbeat for a build that runs long.

pytest's own output comes first. In its default verbosity a test file's results share one line
(``tests/test_app.py ..``): a line of ours written into it would break it, and pytest would print
the file's name again. So there, our lines wait until pytest's line is closed (before the first
test, when pytest wraps a line, at the summary). With ``-v`` each line is written at once.

The heartbeat ("still building linux/arm64 (45 s)…") counts the build's own running time, not
the time a test has waited, and is shown only while a build runs: on a terminal it is rewritten
in place every second; elsewhere (CI logs) it is a plain line every ``PLAIN_EVERY_SECONDS`` of
build time. In the default verbosity it is shown only where it breaks no line.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before 3.11
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

PLAIN_EVERY_SECONDS = 15.0

# What a wait reports each second: (what runs, for how long), or None when nothing runs yet.
Running = Callable[[], "tuple[str, float] | None"]


class Terminal:
    """Writes to pytest's terminal reporter, with output capture suspended (fixtures run with
    output captured). Does nothing where there is no terminal reporter (xdist workers)."""

    def __init__(self, config: pytest.Config) -> None:
        self._reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._capture = config.pluginmanager.get_plugin("capturemanager")
        self.live = bool(self._reporter is not None and getattr(self._reporter, "isatty", False))
        self.verbose = config.get_verbosity() > 0
        self._status_shown = False
        self._next_plain: dict[str, float] = {}
        self._held: list[str] = []

    def __call__(self, message: str) -> None:
        """A line that stays; it takes the place of a status line shown just before. In the
        default verbosity it waits while pytest's line is open (see ``release``)."""
        if not self.verbose and not self._status_shown and not self.at_line_start():
            self._held.append(message)
            return
        self.release()
        self._line(message)

    def release(self, *, at_end: bool = False) -> None:
        """Write the lines held back, if pytest's line is closed now (or ``at_end``: the run's
        summary follows, whatever the line)."""
        if not self._held or not (at_end or self.verbose or self._status_shown or self.at_line_start()):
            return
        held, self._held = self._held, []
        if not self.verbose and not self._status_shown and not self.at_line_start():  # at_end: close it
            self._write(lambda r: (r.ensure_newline(), self.at_line_start() or r.write("\n")))
        for message in held:
            self._line(message)

    def at_line_start(self) -> bool:
        """Whether pytest's terminal line is empty, so that a whole line breaks nothing."""
        if self._reporter is None:
            return True
        writer = getattr(self._reporter, "_tw", None)  # what config.get_terminal_writer() returns
        return writer is None or writer.width_of_current_line == 0

    def _line(self, message: str) -> None:
        if self._status_shown:
            self._write(lambda r: r.rewrite(f"multiarch: {message}", erase=True))
            self._write(lambda r: r.write("\n"))
            self._status_shown = False
        elif self.verbose:
            self._write(lambda r: r.write_line(f"multiarch: {message}"))
        else:  # at the start of a line: write_line would end pytest's file line (and its name again)
            self._write(lambda r: r.write(f"multiarch: {message}\n", flush=True))

    def status(self, doing: str, elapsed: float) -> None:
        """``still <doing> (12 s)…``: rewritten in place on a TTY; elsewhere a plain line once
        every PLAIN_EVERY_SECONDS of ``elapsed``. Never into an open line of pytest's (default
        verbosity)."""
        if not self.verbose and not self._status_shown and not self.at_line_start():
            return
        message = f"still {doing} ({elapsed:.0f} s)…"
        if self.live:
            if self._status_shown:
                self._write(lambda r: r.rewrite(f"multiarch: {message}", erase=True))
            else:  # on a line of its own, left open so that the next rewrite replaces it
                self._write(lambda r: (r.ensure_newline(), r.write(f"multiarch: {message}")))
                self._status_shown = True
        elif elapsed >= self._next_plain.get(doing, PLAIN_EVERY_SECONDS):
            self._next_plain[doing] = (elapsed // PLAIN_EVERY_SECONDS + 1) * PLAIN_EVERY_SECONDS
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


def wait(future: Future[T], running: Running, say: Terminal, flush: Callable[[Terminal], None]) -> T:
    """Wait for ``future``, showing what background work reports (``flush``) and, while
    ``running`` names work under way, a heartbeat with that work's own running time."""
    while True:
        try:
            result = future.result(timeout=1.0)
        except FutureTimeout:
            flush(say)
            now = running()
            if now is not None:
                say.status(*now)
            continue
        except BaseException:
            flush(say)
            say.end_status()
            raise
        flush(say)
        say.end_status()
        return result
