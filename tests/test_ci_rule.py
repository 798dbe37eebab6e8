"""The root conftest's CI rule: with CI=true a run in which no Docker-backed test passed fails,
however they were left out; and a skipped one fails it too."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = "CI=true but no Docker-backed test passed (none was selected, or none ran): failing the run.*"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A tiny project under the repository's own root conftest: a unit test and a test marked
    docker that needs no engine (what counts is the mark)."""
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(
        test_units="def test_unit():\n    pass\n",
        test_engine="import pytest\n\n@pytest.mark.docker\ndef test_in_docker():\n    pass\n",
    )
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester


@pytest.mark.parametrize(
    ("args", "addopts"),
    [(["-m", "not docker"], None), (["-k", "unit"], None), (["test_units.py"], None), ([], '-m "not docker"')],
    ids=["marker", "keyword", "path", "addopts"],
)
def test_ci_fails_a_run_in_which_no_docker_test_passed(project, monkeypatch, args, addopts):
    if addopts:
        monkeypatch.setenv("PYTEST_ADDOPTS", addopts)
    result = project.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)  # the unit test passed, and yet:
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([MESSAGE])


def test_ci_passes_a_run_in_which_docker_tests_passed(project):
    result = project.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*CI=true but*")


def test_ci_fails_a_run_whose_docker_test_skipped(project):
    project.makepyfile(test_engine="import pytest\n\n@pytest.mark.docker\ndef test_in_docker():\n    pytest.skip()\n")
    result = project.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["CI=true but 1 Docker-backed test(s) were skipped, e.g. test_engine.py::test_in_do*"])


def test_without_ci_a_run_without_docker_tests_passes(project, monkeypatch):
    monkeypatch.delenv("CI")
    result = project.runpytest_subprocess("-m", "not docker")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*CI=true but*")


def test_ci_lets_listing_runs_be_and_a_run_that_selects_nothing_fail_as_it_does(project):
    listed = project.runpytest_subprocess("--co", "-m", "not docker")
    assert listed.ret == pytest.ExitCode.OK
    nothing = project.runpytest_subprocess("-k", "no_such_test")
    assert nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # failing already, with pytest's own code
    nothing.stdout.fnmatch_lines([MESSAGE])


def test_the_suite_itself_fails_in_ci_with_docker_tests_deselected_by_pytest_addopts(tmp_path):
    """This repository's own suite, as CI would run it with a stray PYTEST_ADDOPTS (a few fast unit
    tests selected with -k): the real conftest and the real docker marking."""
    env = {**os.environ, "CI": "true", "PYTEST_ADDOPTS": '-m "not docker"'}
    args = ["-m", "pytest", "-p", "no:cacheprovider", "-k", "test_platforms", f"--basetemp={tmp_path / 'inner'}"]
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert re.search(r"\b[1-9][0-9]* passed, [1-9][0-9]* deselected", done.stdout), (
        done.stdout
    )  # units ran, Docker's did not
    assert "CI=true but no Docker-backed test passed" in done.stdout, done.stdout
