"""Secrets as pure logic: what looks secret, what is masked, the build key's view of secrets,
the keyed digest, and buildx's command line (no value on it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pytest_multiarch import Platform, UsageError
from pytest_multiarch.build import build_key
from pytest_multiarch.buildx import buildx_command
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.secrets import BuildSecret, keyed_digest, looks_secret, parse_secret, secret_masker

ARM64 = Platform.parse("linux/arm64")


def spec(tmp_path: Path, **fields: object) -> ImageSpec:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("NPM_TOKEN", "x", True),
        ("GITHUB_PAT", "x", True),
        ("SENTRY_DSN", "x", True),
        ("DATABASE_URL", "postgres://app:hunter22@db/app", True),  # a URL with credentials
        ("DATABASE_URL", "postgres://db/app", False),
        ("BASE_IMAGE", "python:3.12-slim", False),
        ("PATTERN", "x", False),  # PAT only as a word of its own
    ],
)
def test_what_looks_secret(name, value, secret):
    assert looks_secret(name, value) is secret


def test_masking_covers_build_args_environment_and_secret_values():
    mask = secret_masker(
        {"NPM_TOKEN": "npm-value-1"}, {"DB_PASSWORD": "env-value-2", "MODE": "debug"}, ["file-value-3"]
    )
    assert mask("npm-value-1 env-value-2 file-value-3 debug") == "*** *** *** debug"


def test_secret_ids_and_sources_are_in_the_key_their_values_are_not(tmp_path, monkeypatch):
    token = tmp_path / "token.txt"
    token.write_text("first")
    context = tmp_path / "app"
    context.mkdir()
    with_secret = spec(context, secrets=(BuildSecret("token", src=str(token)),))
    before = build_key(with_secret, ARM64, "default")
    token.write_text("second")  # a new token: BuildKit's cache would not rebuild either
    assert build_key(with_secret, ARM64, "default") == before
    assert build_key(spec(context, secrets=(BuildSecret("token", env="TOKEN"),)), ARM64, "default") != before
    assert build_key(spec(context, ssh=("default",)), ARM64, "default") != build_key(spec(context), ARM64, "default")


def test_the_digest_is_keyed_per_user_and_its_key_is_private(tmp_path):
    value = b"s3cr3t"
    digest = keyed_digest(value, tmp_path)
    assert digest == keyed_digest(value, tmp_path)
    assert digest != hashlib.sha256(value).hexdigest()  # a guess cannot be confirmed by hashing it
    assert digest != keyed_digest(value, tmp_path / "another-user")
    assert (tmp_path / "digest.key").stat().st_mode & 0o777 == 0o600


def test_build_args_go_to_buildx_by_name_their_values_in_its_environment(tmp_path):
    image = spec(tmp_path, build_args={"API_TOKEN": "s3cr3t", "PATH": "/opt/bin"}, secrets=(BuildSecret("npm"),))
    command, environment = buildx_command(["docker"], image, ARM64, "t:1", {}, (None, None), None)
    assert "s3cr3t" not in " ".join(command)
    assert command[command.index("API_TOKEN") - 1] == "--build-arg"
    assert environment == {"API_TOKEN": "s3cr3t"}
    assert "PATH=/opt/bin" in command  # the CLI needs its own PATH: never a secret's name
    assert "id=npm,env=npm" in command


def test_a_malformed_secret_never_echoes_its_text():
    with pytest.raises(UsageError) as error:
        parse_secret("hunter2-token-value", "--multiarch-secret")
    assert "hunter2" not in str(error.value)
    assert parse_secret("id=npm,src=~/.npmrc", "x") == BuildSecret("npm", src="~/.npmrc")
    assert parse_secret("type=env,id=gh,src=GH_TOKEN", "x") == BuildSecret("gh", env="GH_TOKEN")
