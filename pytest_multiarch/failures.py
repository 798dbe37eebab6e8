"""Errors of the environment shown once in full: a kept error (a failed build or container
start) errors every test of its platform, and the first such test shows it in full, the others
its first line. A build that fails the same way on several platforms (the same step, the same
reason) is shown in full once, naming those platforms; the log tails differ only in timings."""

from __future__ import annotations

import dataclasses
from typing import Any

from pytest_multiarch.errors import BuildError

LOG_TAIL_MARK = "lines of the build log:"  # buildx.py's tail starts with "last N lines of ..."


@dataclasses.dataclass
class _Shown:
    nodeid: str
    report: Any  # the pytest.TestReport that shows it in full
    platforms: list[str]
    text: str


def signature(error: BaseException, platform: str) -> str | None:
    """What makes two platforms' build failures the same: the message before the log's tail,
    with the platform's name taken out. None for errors other than a BuildError."""
    if not isinstance(error, BuildError) or not platform:
        return None
    head = str(error).split("\n")
    for index, line in enumerate(head):
        if LOG_TAIL_MARK in line:
            head = head[:index]
            break
    return "\n".join(head).replace(platform, "{platform}")


class ShownErrors:
    """Sets each error report's text (``report.longrepr``) so that nothing is shown twice."""

    def __init__(self) -> None:
        # id of an error → (the test that shows it in full, the error, kept alive so ids stay unique)
        self._by_id: dict[int, tuple[str, BaseException]] = {}
        self._by_signature: dict[str, _Shown] = {}

    def show(self, report: Any, nodeid: str, platform: str | None, error: BaseException) -> None:
        prefix = f"[{platform}] " if platform else ""
        name = type(error).__name__
        headline = str(error).splitlines()[0] if str(error) else name
        first = self._by_id.setdefault(id(error), (nodeid, error))[0]
        if first != nodeid:  # a kept build or start error: every test of the platform gets it
            report.longrepr = f"{prefix}{name}: {headline} (in full above, at {first})"
            return
        key = signature(error, platform or "")
        shown = self._by_signature.get(key) if key is not None else None
        if shown is None or platform in shown.platforms:
            report.longrepr = f"{prefix}{name}: {error}"
            if key is not None:
                self._by_signature.setdefault(key, _Shown(nodeid, report, [platform or ""], str(error)))
            return
        shown.platforms.append(platform or "")
        shown.report.longrepr = f"[{', '.join(shown.platforms)}] {name}: {shown.text}"
        self._by_id[id(error)] = (shown.nodeid, error)
        report.longrepr = (
            f"{prefix}{name}: {headline} (the same failure as on {shown.platforms[0]}: in full above, "
            f"at {shown.nodeid})"
        )
