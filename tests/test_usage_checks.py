"""Values that cannot work are usage errors at configuration time (exit 4, one line each),
not an error per test, a skip of every test, or nothing at all (issue 29, D5, D7, D8)."""

from __future__ import annotations

import pytest

from pytest_multiarch import multiarch_fixtures
from pytest_multiarch.checks import reference_problem
from pytest_multiarch.endpoints import url_problem
from pytest_multiarch.errors import UsageError

TEST = "def test_x(multiarch_platform):\n    pass\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64,linux/arm64\n")
    pytester.makepyfile(test_a=TEST)
    return pytester


def usage_error(project: pytest.Pytester, *args: str) -> list[str]:
    """The plugin's lines of a run that must stop with a usage error before any test."""
    result = project.runpytest_inprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    text = result.stderr.str().split("ERROR: pytest-multiarch: ", 1)[1].strip()
    return text.splitlines()


def test_an_endpoint_whose_port_is_not_a_number_is_a_usage_error(project):
    lines = usage_error(project, "--multiarch-engine=linux/arm64=tcp://host:notaport")
    assert lines == [
        "--multiarch-engine (ini multiarch_engines) linux/arm64=tcp://host:notaport: "
        "port 'notaport' is not a number from 1 to 65535."
    ]


def test_an_image_reference_that_is_not_one_is_a_usage_error(project):
    lines = usage_error(project, "--multiarch-image=UPPER/Case::bad")
    assert len(lines) == 1 and lines[0].startswith("--multiarch-image (ini multiarch_image) 'UPPER/Case::bad': not an")


def test_an_engine_for_a_platform_not_configured_is_a_usage_error(project):
    lines = usage_error(project, "--multiarch-engine=linux/s390x=tcp://127.0.0.1:2375")
    assert lines == [
        "--multiarch-engine (ini multiarch_engines) names an engine for linux/s390x, which is not a configured "
        "platform (linux/amd64, linux/arm64): add it to --multiarch-platforms, or drop that engine."
    ]


def test_each_bad_value_is_one_line(project):
    args = ["--multiarch-engine=linux/s390x=tcp://h:x", "--multiarch-image=A::b"]
    assert len(usage_error(project, *args)) == 3  # the port, the platform, the reference


@pytest.mark.usefixtures("docker_engine")  # buildx lists the builders
def test_a_builder_that_does_not_exist_is_a_usage_error_naming_the_ones_that_do(project):
    lines = usage_error(project, "--multiarch-builder=no-such-builder")
    assert len(lines) == 1, lines
    assert lines[0].startswith("--multiarch-builder (ini multiarch_builder) 'no-such-builder': buildx has no such")
    assert "(it has: default" in lines[0]


def test_a_bool_key_that_is_not_one_names_the_key(pytester):
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\nmultiarch_strict = maybe\n")
    pytester.makepyfile(test_a=TEST)
    assert usage_error(pytester) == ["ini multiarch_strict: invalid truth value 'maybe'; use true or false."]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("tcp://127.0.0.1:2375", None),
        ("ssh://user@host", None),
        ("unix:///var/run/docker.sock", None),
        ("tcp://h:70000", "port '70000' is not a number from 1 to 65535"),
        ("tcp://:2375", "it names no host"),
        ("unix://", "unix:// needs a path"),
    ],
)
def test_endpoint_urls(url, problem):
    assert url_problem(url) == problem


@pytest.mark.parametrize(
    "ref",
    ["busybox", "ghcr.io/owner/app:1.2.0", "127.0.0.1:5000/multiarch/busybox:1", "localhost:5000/a@sha256:" + "a" * 64],
)
def test_image_references_that_are_fine(ref):
    assert reference_problem(ref) is None


@pytest.mark.parametrize("ref", ["UPPER/Case::bad", "Busybox", "a:b:c", "app@sha256:short", "a//b"])
def test_image_references_that_are_not(ref):
    assert reference_problem(ref) is not None


def test_an_unknown_declaration_keyword_is_a_usage_error_naming_the_nearest_one():
    with pytest.raises(UsageError) as refused:
        multiarch_fixtures("api", buildargs={"A": "1"})  # type: ignore[call-arg]
    message = str(refused.value)
    assert message.startswith("multiarch_fixtures() takes no keyword buildargs= (did you mean build_args=?); it takes")


def test_a_declaration_still_defines_its_run_fixture_where_it_is_made():
    multiarch_fixtures("api", port=8000)
    assert "api_run" in globals()
