"""Opt-in pytest-xdist scheduling: all tests of one platform go to the same worker.

xdist's default ``--dist load`` spreads a platform's tests over every worker, so each worker
starts a container of every platform (two emulated boots where one would do).
``--dist loadgroup`` with ``xdist_group`` marks would group them, but with pytest 9.2 it
silently stops grouping (pytest-dev/pytest-xdist#1386). Opt in with
``-p pytest_multiarch.xdist_scheduling`` (on the command line or in ``addopts``).

Tests without a platform are scheduled one by one, as with ``--dist load``.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from pytest_multiarch.errors import UsageError
from pytest_multiarch.platforms import Platform


def platform_scope(nodeid: str) -> str:
    """The platform in a test id (``test_x[linux/arm64]``, ``test_y[linux/arm/v7-2]``), or the
    id itself when the test is not parametrized by platform."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid
    for part in nodeid[nodeid.rindex("[") + 1 : -1].split("-"):
        if "/" in part:
            try:
                return str(Platform.parse(part))
            except UsageError:
                continue
    return nodeid


@functools.cache
def _scheduler_class() -> type:
    from xdist.scheduler.loadscope import LoadScopeScheduling  # only where xdist runs

    class PlatformScheduling(LoadScopeScheduling):
        """``--dist loadscope`` with the platform as the scope."""

        def _split_scope(self, nodeid: str) -> str:
            return platform_scope(nodeid)

    return PlatformScheduling


@pytest.hookimpl(optionalhook=True)  # a run without xdist never calls it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    return _scheduler_class()(config, log)
