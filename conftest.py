"""Repository-wide test setup: pytester, and the rule that in CI no Docker-backed test may skip.

Tests that need a Docker engine carry ``@pytest.mark.docker``. On a developer machine without
Docker they skip with one reason; with CI=true a skipped one fails the run.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]

_skipped_docker_tests: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine with buildx and QEMU")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "docker" in report.keywords:
        _skipped_docker_tests.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _in_ci() and _skipped_docker_tests:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"CI=true but {len(_skipped_docker_tests)} Docker-backed test(s) were skipped, "
                f"e.g. {_skipped_docker_tests[0]}: failing the run.",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
