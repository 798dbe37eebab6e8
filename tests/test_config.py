"""Configuration: ini and CLI merging, validation messages (no engine needed)."""

import re
from pathlib import Path

import pytest

from pytest_multiarch import UsageError
from pytest_multiarch.config import EMULATION_TIMEOUT_FACTOR, ImageSpec, Settings, parse_build_args
from pytest_multiarch.declare import multiarch_fixtures
from pytest_multiarch.http import join_url
from pytest_multiarch.platforms import Platform


def settings(pytester: pytest.Pytester, *args: str) -> Settings:
    return Settings.from_pytest(pytester.parseconfigure(*args))


def test_defaults(pytester: pytest.Pytester):
    s = settings(pytester)
    assert s.platforms is None
    assert s.image.context == Path(pytester.path)
    assert s.image.dockerfile == Path(pytester.path) / "Dockerfile"
    assert s.image.build_args == {}
    assert (s.image.target, s.image.port, s.image.ready_path) == (None, None, "/")
    assert (s.timeout, s.strict, s.rebuild) == (30.0, False, False)


def test_ini_values_are_read(pytester: pytest.Pytester):
    pytester.makeini(
        """
        [pytest]
        multiarch_platforms =
            linux/amd64
            arm64
        multiarch_context = app
        multiarch_dockerfile = docker/Dockerfile.prod
        multiarch_build_args =
            BASE_IMAGE=python:3.12-slim
            GREETING=hello world
        multiarch_target = runtime
        multiarch_port = 8000
        multiarch_ready_path = health
        multiarch_timeout = 12.5
        multiarch_strict = true
        """
    )
    s = settings(pytester)
    assert s.platforms == [Platform.parse("linux/amd64"), Platform.parse("linux/arm64")]
    assert s.image.dockerfile == Path(pytester.path) / "app" / "docker" / "Dockerfile.prod"
    assert s.image.build_args == {"BASE_IMAGE": "python:3.12-slim", "GREETING": "hello world"}
    assert (s.image.target, s.image.port, s.image.ready_path) == ("runtime", 8000, "/health")
    assert s.timeout == 12.5 and s.strict is True


def test_one_build_arg_on_its_own_line_may_hold_spaces(pytester: pytest.Pytester):
    """pytest hands the one-per-line form holding a single arg over as one line."""
    pytester.makeini(
        """
        [pytest]
        multiarch_build_args =
            GREETING=hello world
        """
    )
    assert settings(pytester).image.build_args == {"GREETING": "hello world"}


def test_cli_wins_over_ini(pytester: pytest.Pytester):
    pytester.makeini(
        """
        [pytest]
        multiarch_platforms = linux/amd64
        multiarch_build_args = A=ini, B=ini
        multiarch_port = 8000
        multiarch_reuse = true
        """
    )
    s = settings(
        pytester,
        "--multiarch-platforms=linux/arm64",
        "--multiarch-build-arg",
        "B=cli",
        "--multiarch-build-arg",
        "C=x=y",
        "--multiarch-port",
        "9000",
        "--no-multiarch-reuse",
    )
    assert s.platforms == [Platform.parse("linux/arm64")]
    assert s.reuse is False
    assert s.image.build_args == {"A": "ini", "B": "cli", "C": "x=y"}
    assert s.image.port == 9000


def test_pyproject_toml_is_read(pytester: pytest.Pytester):
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        multiarch_platforms = "linux/arm64 linux/amd64"
        """
    )
    assert [str(p) for p in settings(pytester).platforms] == ["linux/arm64", "linux/amd64"]


@pytest.mark.skipif(int(pytest.__version__.split(".")[0]) < 9, reason="pytest.toml came with pytest 9")
def test_native_toml_takes_strings_as_the_readme_shows(pytester: pytest.Pytester):
    """pytest 9's pytest.toml is typed: the README's forms (strings, true/false, one build arg
    per line in a multi-line string) must be the ones that work."""
    pytester.path.joinpath("pytest.toml").write_text(
        "[pytest]\n"
        'multiarch_platforms = "linux/amd64, linux/arm64"\n'
        'multiarch_timeout = "60"\n'
        "multiarch_rebuild = true\n"
        'multiarch_build_args = """\nBASE_IMAGE=python:3.12-slim\nGREETING=hello world\n"""\n'
    )
    s = settings(pytester)
    assert [str(p) for p in s.platforms] == ["linux/amd64", "linux/arm64"]
    assert (s.timeout, s.rebuild) == (60.0, True)
    assert s.image.build_args == {"BASE_IMAGE": "python:3.12-slim", "GREETING": "hello world"}


def test_emulated_platforms_get_a_longer_timeout(pytester: pytest.Pytester):
    s = settings(pytester, "--multiarch-timeout=10")
    assert s.timeout_for(Platform.parse("arm64")) == 10
    assert s.timeout_for(Platform.parse("arm64").with_emulated(True)) == 10 * EMULATION_TIMEOUT_FACTOR


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--multiarch-platforms=linux/arm65"], "unknown platform 'linux/arm65'"),
        (["--multiarch-platforms= , "], "the platform list is empty"),
        (
            ["--multiarch-build-arg=s3cr3t"],
            "malformed build arg number 1 of --multiarch-build-arg (it has no '='; its text is not shown*",
        ),
        (
            ["--multiarch-build-arg=A=1", "--multiarch-build-arg=API_KEY: s3cr3t=="],
            "malformed build arg number 2 of --multiarch-build-arg (its text is not shown*",
        ),
        (["--multiarch-timeout=nan"], "is not a positive finite number"),
        (["--multiarch-build-arg=ghp_R2d2C3poS3cr3t/abc=="], "malformed build arg number 1 *"),
        (["--multiarch-build-jobs=0.5"], "is not a whole number of at least 1"),
        (["--multiarch-port=http"], "is not a port number"),
        (["--multiarch-timeout=-3"], "is not a positive finite number"),
        (["--multiarch-ready-path=http://localhost:8000/health"], "*is a URL; give the path only, e.g. /health*"),
        (["--multiarch-image=ghcr.io/acme/app:1.4.0"], "--multiarch-image checks a published image on the platforms*"),
    ],
)
def test_bad_input_is_a_usage_error_before_any_test(pytester: pytest.Pytester, args, message):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-multiarch: *{message}*"])
    assert "Traceback" not in result.stderr.str()
    assert "s3cr3t" not in (result.stderr.str() + result.stdout.str()).lower()  # any case: S3cr3t too


def test_build_args_forms():
    assert parse_build_args("A=1, B=2 C=3") == {"A": "1", "B": "2", "C": "3"}
    assert parse_build_args("A=1 2\nB=") == {"A": "1 2", "B": ""}
    assert parse_build_args(["A=1"]) == {"A": "1"}
    assert parse_build_args("\nGREETING=hello world") == {"GREETING": "hello world"}
    # A mistake on a line of several args is refused, not swallowed into a value unmasked:
    for line in (
        "GREETING=hello world API_TOKEN=s3cr3t",
        "BASE_IMAGE=python:3, NPM_TOKEN s3cr3t",
        "GREETING=hello world API_TOKEN=s3cr3t\n",  # a TOML multi-line string holding one line
    ):
        with pytest.raises(UsageError, match="malformed build arg number 2 "):
            parse_build_args(line)
    assert parse_build_args("GREETING=hello world\n") == {"GREETING": "hello world"}  # a TOML \"\"\" string
    with pytest.raises(UsageError, match=r"malformed build arg number 1 of build args \(its text"):
        parse_build_args(["=x"])


def test_a_project_that_does_not_use_the_plugin_loads_no_engine_client(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import sys

        def test_unit():
            heavy = {"python_on_whales", "testcontainers", "docker", "requests"} & set(sys.modules)
            assert not heavy
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("multiarch:*")


def test_paths_are_joined_to_the_container_url_as_paths():
    base = "http://127.0.0.1:49153/"
    assert join_url(base, "/items:search") == "http://127.0.0.1:49153/items:search"  # urljoin: scheme items
    assert join_url(base, "health?full=1") == "http://127.0.0.1:49153/health?full=1"
    assert join_url(base, "https://example.org/x") == "https://example.org/x"


def test_a_declared_images_settings_are_checked_when_declared(monkeypatch):
    fixtures = multiarch_fixtures("api", build_args={"WORKERS": 2, "BASE_IMAGE": "python:3"})
    assert fixtures.image is not None
    bad = [
        (
            {"build_args": {"TOKEN": None}},
            'build_args= of multiarch_fixtures("api", ...): the value of TOKEN is a NoneType',
        ),
        ({"build_args": {"NOT A KEY": "x"}}, "'NOT A KEY' is not a build arg name"),
        ({"build_args": ["A=1"]}, "must be a dict of KEY: value, not a list"),
        ({"port": 0}, 'port= of multiarch_fixtures("api", ...) 0 is not a port number'),
        ({"ready_path": "http://localhost/health"}, "is a URL; give the path only"),
    ]
    for kwargs, message in bad:
        with pytest.raises(UsageError, match=re.escape(message)):
            multiarch_fixtures("api", **kwargs)


def test_messages_about_a_declared_image_point_to_its_declaration(tmp_path):
    declared = ImageSpec(name="api", context=tmp_path / "apii", dockerfile=tmp_path / "apii" / "Dockerfile")
    with pytest.raises(UsageError, match=re.escape('set context= in multiarch_fixtures("api", ...) to the folder')):
        declared.check_paths()
    default = ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    with pytest.raises(UsageError, match=re.escape("Set --multiarch-dockerfile (ini multiarch_dockerfile), relative")):
        default.check_paths()
