"""Typos in the plugin's settings (issue 27): a usage error (exit 4) naming the closest known
key or option, never pytest's generic warning with a green run that silently lost a platform."""

from __future__ import annotations

import pytest

from pytest_multiarch.typos import closest, unknown_keys_message


def test_a_mistyped_ini_key_stops_the_run_naming_the_key_it_meant(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmultiarch_platfroms = linux/amd64, linux/arm64\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pytest-multiarch: unknown ini key multiarch_platfroms in *tox.ini: did you mean multiarch_platforms?"]
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_the_same_in_pyproject_toml(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nmultiarch_strcit = "true"\n')
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*unknown ini key multiarch_strcit in *pyproject.toml: did you mean multiarch_strict?*"]
    )


def test_a_known_key_and_other_plugins_keys_are_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmultiarch_strict = false\nfoo_bar = 1\n")
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*Unknown config option: foo_bar*"])  # pytest's own warning, as before


def test_a_mistyped_option_names_the_option_it_meant(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    typed = ["--multiarch-platfroms=linux/arm64", "--no-multiarch-stric"]
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *typed)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-multiarch: unknown option --multiarch-platfroms: did you mean --multiarch-platforms?",
            "unknown option --no-multiarch-stric: did you mean --no-multiarch-strict?",
        ]
    )


def test_an_option_unlike_any_says_where_they_are_listed() -> None:
    assert closest("multiarch_zzzzzzzzzz", ["multiarch_platforms"]) is None
    message = unknown_keys_message(["multiarch_zzzzzzzzzz", "other_key"], ["multiarch_platforms"], "pytest.ini")
    assert message == "unknown ini key multiarch_zzzzzzzzzz in pytest.ini: `pytest --help` lists the multiarch_* keys"


def test_help_still_works_to_look_the_right_key_up(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmultiarch_platfroms = linux/amd64\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*multiarch_platforms (string):*"])
