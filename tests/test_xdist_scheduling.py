"""Opt-in xdist scheduling by platform: the scope function, and a real -n 2 run."""

from __future__ import annotations

import pytest

from pytest_multiarch.xdist_scheduling import platform_scope


@pytest.mark.parametrize(
    ("nodeid", "scope"),
    [
        ("tests/test_app.py::test_x[linux/arm64]", "linux/arm64"),
        ("tests/test_app.py::TestA::test_x[linux/arm/v7]", "linux/arm/v7"),
        ("tests/test_app.py::test_x[linux/amd64-3]", "linux/amd64"),
        ("tests/test_app.py::test_x[3-linux/amd64]", "linux/amd64"),
        ("tests/test_app.py::test_x[a/b]", "tests/test_app.py::test_x[a/b]"),  # not a platform
        ("tests/test_app.py::test_x[7]", "tests/test_app.py::test_x[7]"),
        ("tests/test_app.py::test_plain", "tests/test_app.py::test_plain"),
    ],
)
def test_the_scope_is_the_platform_of_the_test_id(nodeid, scope):
    assert platform_scope(nodeid) == scope


@pytest.mark.usefixtures("docker_engine")
def test_each_platform_runs_on_one_worker_with_one_container(busybox_project):
    busybox_project.makepyfile(
        test_app="""
        import pytest
        from pathlib import Path

        @pytest.mark.parametrize("n", range(4))
        def test_x(multiarch_container, multiarch_platform, worker_id, n):
            Path(f"ran-{worker_id}-{multiarch_platform.slug}-{n}").write_text(multiarch_container.id)

        def test_plain():
            pass
        """
    )
    opt_in = ("-p", "pytest_multiarch.xdist_scheduling")
    result = busybox_project.runpytest_subprocess("-p", "xdist", "-n", "2", "-v", *opt_in)
    result.assert_outcomes(passed=9)
    runs = [
        (p.name.split("-")[1], p.name.split("-", 2)[2].rsplit("-", 1)[0], p.read_text())
        for p in busybox_project.path.glob("ran-*")
    ]
    assert len(runs) == 8
    for slug in ("linux-amd64", "linux-arm64"):
        workers = {w for w, s, _ in runs if s == slug}
        containers = {c for _, s, c in runs if s == slug}
        assert len(workers) == 1, runs  # all tests of a platform on one worker ...
        assert len(containers) == 1, runs  # ... so one container per platform in the whole run


def test_without_xdist_the_option_changes_nothing(pytester):
    pytester.makepyfile(test_plain="def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "pytest_multiarch.xdist_scheduling")
    result.assert_outcomes(passed=1)
