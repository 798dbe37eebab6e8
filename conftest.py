"""Repository-wide test setup: pytester, and the rules that keep CI from turning green without
Docker.

Tests that need a Docker engine carry ``@pytest.mark.docker``. On a developer machine without
Docker they skip with one reason. With CI=true a run fails when a Docker-backed test skipped, and
when no Docker-backed test passed at all, however they were left out (``-m "not docker"``, ``-k``,
``PYTEST_ADDOPTS``, a path). Runs that only list tests (``--co``, ``--fixtures``...) are exempt.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]

_skipped_docker_tests: list[str] = []
_passed_docker_tests: list[str] = []
_ci_failures: list[str] = []

_LISTING_OPTIONS = ("collectonly", "showfixtures", "show_fixtures_per_test", "setupplan")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine with buildx and QEMU")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "docker" not in report.keywords:
        return
    if report.skipped:
        _skipped_docker_tests.append(report.nodeid)
    elif report.passed and report.when == "call":
        _passed_docker_tests.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _in_ci():
        return
    if _skipped_docker_tests:
        _ci_failures.append(
            f"CI=true but {len(_skipped_docker_tests)} Docker-backed test(s) were skipped, "
            f"e.g. {_skipped_docker_tests[0]}: failing the run."
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    listing = any(getattr(session.config.option, name, False) for name in _LISTING_OPTIONS)
    # An xdist worker sees only its share; the controller, which gets every report, judges the run.
    worker = hasattr(session.config, "workerinput")
    if not _passed_docker_tests and not listing and not worker:
        _ci_failures.append(
            "CI=true but no Docker-backed test passed (none was selected, or none ran): failing the run. "
            "CI must run them: check -m, -k, the paths given and PYTEST_ADDOPTS."
        )
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # other codes (nothing collected...) fail already


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for failure in _ci_failures:  # here, after the progress line: sessionfinish comes before its end
        terminalreporter.write_line(failure, red=True)
