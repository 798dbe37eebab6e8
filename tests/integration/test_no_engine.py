"""Without a Docker engine: Docker-backed tests skip with one reason, or fail under CI or a release gate."""

from __future__ import annotations

import pytest

from conftest import BUSYBOX, PLATFORMS


def test_without_an_engine_docker_tests_skip_with_one_reason(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini(f"[pytest]\nmultiarch_platforms = {PLATFORMS}\n")
    pytester.makepyfile(test_app="def test_x(multiarch_container): pass\ndef test_unit(): pass")
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]2[]] *the Docker daemon does not answer at DOCKER_HOST=tcp://127.0.0.1:9*"]
    )
    assert result.ret == pytest.ExitCode.OK and "Traceback" not in result.stderr.str()
    listed = pytester.runpytest_subprocess("--co", "-q")  # an IDE listing tests with Docker stopped
    assert listed.ret == pytest.ExitCode.OK and "Traceback" not in listed.stderr.str()


@pytest.mark.parametrize(
    ("ci", "args", "because"),
    [
        ("true", [], "*because CI is set*"),
        (None, ["--multiarch-strict"], "*because --multiarch-strict is set*"),
        # --multiarch-image verifies a pushed release: no engine must not turn it green.
        (
            None,
            ["--multiarch-image=127.0.0.1:5000/some/release:1.0"],
            "*because --multiarch-image makes this run a release gate*",
        ),
    ],
    ids=["ci", "strict", "release-gate"],
)
def test_without_an_engine_ci_or_a_release_gate_fails_instead_of_skipping(pytester, monkeypatch, ci, args, because):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeini(f"[pytest]\nmultiarch_platforms = {PLATFORMS}\nmultiarch_build_args = BASE_IMAGE={BUSYBOX}\n")
    pytester.makepyfile(test_app="def test_x(multiarch_container): pass")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*EngineError: the Docker daemon does not answer at DOCKER_HOST=tcp://127.0.0.1:9*", because]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
