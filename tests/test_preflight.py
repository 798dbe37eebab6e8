"""Preflight decisions from what the engine reports (pure logic on an Engine value)."""

import os
import subprocess

import pytest

from pytest_multiarch import Platform, PlatformUnavailable
from pytest_multiarch.preflight import Engine, follow_cli_context

P = Platform.parse


def engine(native: str, listed: list[str], local: bool = False) -> Engine:
    return Engine(
        server_version="26.1",
        native=P(native),
        builder_name="default",
        builder_driver="docker",
        builder_platforms=tuple(P(p) for p in listed),
        buildx_version="0.13",
        local=local,
    )


def test_native_and_compatible_platforms_are_not_emulated():
    e = engine("linux/amd64", ["linux/amd64"])
    assert e.resolve(P("amd64")).emulated is False
    assert e.resolve(P("linux/386")).emulated is False


def test_a_platform_the_builder_lists_is_emulated():
    assert engine("linux/amd64", ["linux/amd64", "linux/arm64"]).resolve(P("arm64")).emulated is True
    assert engine("linux/arm64", ["linux/arm64", "linux/amd64"]).resolve(P("amd64")).emulated is True


def test_a_platform_without_emulator_names_the_fix():
    with pytest.raises(PlatformUnavailable) as err:
        engine("linux/amd64", ["linux/amd64"]).resolve(P("linux/s390x"))
    message = str(err.value)
    assert "linux/s390x cannot run on this engine" in message
    assert "tonistiigi/binfmt --install s390x" in message
    assert "qemu-user-static" in message
    assert "python -m pytest_multiarch doctor" in message


@pytest.mark.usefixtures("docker_engine")
def test_the_sdk_follows_the_docker_cli_context(tmp_path, monkeypatch):
    # A second way to reach the same daemon, as Docker Desktop's context is.
    link = tmp_path / "docker.sock"
    link.symlink_to("/var/run/docker.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "config"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    created = subprocess.run(
        ["docker", "context", "create", "elsewhere", "--docker", f"host=unix://{link}"], capture_output=True, text=True
    )
    assert created.returncode == 0, created.stderr
    assert follow_cli_context() is None  # the default context: nothing to do
    monkeypatch.setenv("DOCKER_CONTEXT", "elsewhere")
    assert follow_cli_context() == f"unix://{link}"
    assert os.environ["DOCKER_HOST"] == f"unix://{link}"
