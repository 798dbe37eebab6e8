"""Which error reports show a message in full (failures.py): an identical build failure of two
platforms once, naming both; different failures each in full."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pytest_multiarch.errors import BuildError, ContainerError
from pytest_multiarch.failures import ShownErrors

FAILED = (
    "build of /p/Dockerfile for {p} failed at step: [2/2] RUN make\n  exit code: {code}\n"
    "last 2 lines of the build log:\n  | #5 {t} make"
)


def build_error(platform: str, code: int = 1, timing: str = "0.25") -> BuildError:
    return BuildError(FAILED.format(p=platform, code=code, t=timing))


def report() -> Any:
    return SimpleNamespace(longrepr=None)


def test_the_same_failure_on_two_platforms_is_shown_once_naming_both() -> None:
    shown = ShownErrors()
    amd64, arm64, later = report(), report(), report()
    arm64_error = build_error("linux/arm64", timing="1.75")
    shown.show(amd64, "t.py::a[linux/amd64]", "linux/amd64", build_error("linux/amd64"))
    shown.show(arm64, "t.py::a[linux/arm64]", "linux/arm64", arm64_error)
    shown.show(later, "t.py::b[linux/arm64]", "linux/arm64", arm64_error)
    assert amd64.longrepr.startswith("[linux/amd64, linux/arm64] BuildError: build of /p/Dockerfile for linux/amd64")
    assert "last 2 lines of the build log" in amd64.longrepr
    assert arm64.longrepr == (
        "[linux/arm64] BuildError: build of /p/Dockerfile for linux/arm64 failed at step: [2/2] RUN make "
        "(the same failure as on linux/amd64: in full above, at t.py::a[linux/amd64])"
    )
    assert later.longrepr.endswith("(in full above, at t.py::a[linux/amd64])")


def test_different_failures_and_other_errors_are_each_shown_in_full() -> None:
    shown = ShownErrors()
    amd64, arm64, start, start_too = report(), report(), report(), report()
    shown.show(amd64, "t.py::a[linux/amd64]", "linux/amd64", build_error("linux/amd64", code=1))
    shown.show(arm64, "t.py::a[linux/arm64]", "linux/arm64", build_error("linux/arm64", code=2))
    shown.show(start, "t.py::c[linux/amd64]", "linux/amd64", ContainerError("the linux/amd64 container exited"))
    shown.show(start_too, "t.py::c[linux/arm64]", "linux/arm64", ContainerError("the linux/arm64 container exited"))
    assert amd64.longrepr.startswith("[linux/amd64] BuildError:") and "build log" in amd64.longrepr
    assert arm64.longrepr.startswith("[linux/arm64] BuildError:") and "build log" in arm64.longrepr
    assert start_too.longrepr == "[linux/arm64] ContainerError: the linux/arm64 container exited"
