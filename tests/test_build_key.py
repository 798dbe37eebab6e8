"""The build key: every input of the build changes it, nothing else does (no engine needed)."""

from pathlib import Path

import pytest

from pytest_multiarch.build import build_key, context_files, describe_build_failure
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.names import image_tag
from pytest_multiarch.platforms import Platform

ARM = Platform.parse("linux/arm64")


@pytest.fixture
def spec(tmp_path: Path) -> ImageSpec:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY app.py /\n")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    (tmp_path / ".dockerignore").write_text("# comment\nnotes\n*.log\n")
    return ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile")


def key(spec: ImageSpec, platform: Platform = ARM, builder: str = "default") -> str:
    return build_key(spec, platform, builder)


def test_same_inputs_same_key(spec):
    assert key(spec) == key(spec)


def test_context_file_change_changes_key(spec):
    before = key(spec)
    (spec.context / "app.py").write_text("print('bye')\n")
    assert key(spec) != before


def test_new_file_and_exec_bit_change_key(spec):
    (spec.context / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")  # the whole context
    before = key(spec)
    (spec.context / "extra.py").write_text("")
    after_new = key(spec)
    assert after_new != before
    (spec.context / "extra.py").chmod(0o755)
    assert key(spec) != after_new


def test_a_file_the_dockerfile_never_copies_does_not_change_key(spec):
    """Issue 27: a test file or a junit.xml written into the context rebuilt every platform."""
    before = key(spec)
    (spec.context / "test_app.py").write_text("def test_x(): pass\n")
    (spec.context / "junit.xml").write_text("<testsuites/>")
    assert key(spec) == before
    (spec.context / "app.py").chmod(0o755)  # what it copies still counts, exec bit included
    assert key(spec) != before


def test_dockerignored_files_do_not_change_key(spec):
    before = key(spec)
    (spec.context / "notes" / "todo.txt").write_text("changed")
    (spec.context / "debug.log").write_text("noise")
    assert key(spec) == before
    assert "notes/todo.txt" not in context_files(spec)


def test_dockerfile_args_target_platform_builder_change_key(spec):
    import dataclasses

    base = key(spec)
    assert key(dataclasses.replace(spec, build_args={"A": "1"})) != base
    assert key(dataclasses.replace(spec, target="runtime")) != base
    assert key(spec, Platform.parse("linux/amd64")) != base
    assert key(spec, builder="other") != base
    (spec.context / "Dockerfile").write_text("FROM scratch\n")
    assert key(spec) != base


def test_tag_is_unique_per_platform(spec):
    k = key(spec)
    assert image_tag(spec, ARM, k) != image_tag(spec, Platform.parse("amd64"), k)
    assert ":linux-arm64-" in image_tag(spec, ARM, k)


def test_failure_message_puts_the_failing_step_first(spec):
    log = [
        "#5 [2/3] RUN echo one",
        "#5 DONE 0.1s",
        "#6 [3/3] RUN false",
        '#6 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1',
        "------",
        'ERROR: failed to solve: process "/bin/sh -c false" did not complete successfully: exit code: 1',
    ]
    message = describe_build_failure(spec, ARM, log)
    first = message.splitlines()[0]
    assert "for linux/arm64 failed at step: [3/3] RUN false" in first
    assert "exit code: 1" in message
    assert "| ERROR: failed to solve" in message


def test_files_that_test_runs_write_do_not_change_key(spec):
    before = key(spec)
    (spec.context / "__pycache__").mkdir()
    (spec.context / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    (spec.context / ".pytest_cache").mkdir()
    (spec.context / ".pytest_cache" / "README.md").write_text("x")
    assert key(spec) == before


def test_build_args_named_like_secrets_are_masked_in_logs():
    from pytest_multiarch.build import secret_masker

    mask = secret_masker({"NPM_TOKEN": "s3cr3t-value", "BASE_IMAGE": "python:3.12-slim", "API_KEY": "x"})
    assert mask("#5 RUN echo s3cr3t-value > ~/.npmrc") == "#5 RUN echo *** > ~/.npmrc"
    assert mask("FROM python:3.12-slim") == "FROM python:3.12-slim"  # not a secret's name


# Every name part README lists, in any case and place of the name.
SECRET_NAMES = [
    "NPM_TOKEN",
    "MY_SECRET",
    "DB_PASSWORD",
    "passwd",
    "API_KEY",
    "GH_AUTH",
    "CREDENTIALS_JSON",
    "private_repo",
    "CA_CERT",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_every_secret_name_is_masked_from_four_characters_on(name):
    from pytest_multiarch.build import secret_masker

    assert secret_masker({name: "abcd"})("token abcd here") == "token *** here"
    assert secret_masker({name: "s3cr3t-value"})("s3cr3t-value!") == "***!"
    # Shorter values would mask unrelated text (a "1" in every line): they are shown.
    assert secret_masker({name: "abc"})("token abc here") == "token abc here"


def test_names_that_hold_no_secret_part_are_not_masked():
    from pytest_multiarch.build import secret_masker

    mask = secret_masker({"BASE_IMAGE": "python:3.12-slim", "GREETING": "hello world", "TARGET_ARCH": "arm64"})
    line = "FROM python:3.12-slim; echo hello world for arm64"
    assert mask(line) == line


def test_engine_timestamps_are_read_with_their_zone_and_fraction():
    """LastTagTime comes in the daemon's zone (classic image store), Created in UTC: pruning
    compares them with this machine's clock."""
    from pytest_multiarch.build import _epoch

    utc = _epoch("2025-06-29T14:38:20.992008831Z")
    assert utc == pytest.approx(1751207900.992008831, abs=1e-6)  # the fraction counts
    assert _epoch("2025-06-29T14:38:20Z") == 1751207900.0
    assert _epoch("2025-06-29T22:38:20.992008831+08:00") == utc
    assert _epoch("2025-06-29T09:38:20.992008831-05:00") == utc
    assert _epoch("0001-01-01T00:00:00Z") is None  # never tagged
    assert _epoch("") is None
