"""The summary table's cells when pytest-xdist workers report the same platform."""

from __future__ import annotations

import pytest

from pytest_multiarch.report import merged_stat


@pytest.mark.parametrize(
    ("name", "current", "reported", "shown"),
    [
        ("build", "", "3.1 s", "3.1 s"),  # the first value known
        ("build", "reused", "3.1 s", "3.1 s"),  # the worker that built it knows the time
        ("build", "3.1 s", "reused", "3.1 s"),
        ("build", "3.1 s", "failed", "failed"),  # a failure always shows ...
        ("build", "failed", "3.1 s", "failed"),  # ... whichever worker reports first
        ("image", "abc", "def", "abc"),
        ("ready", "1.2 s", "", "1.2 s"),
    ],
)
def test_workers_values_merge(name, current, reported, shown):
    assert merged_stat(name, current, reported) == shown
