"""Preflight decisions from what the engine reports (pure logic on an Engine value)."""

import os
import subprocess

import pytest

from pytest_multiarch import Platform, PlatformUnavailable
from pytest_multiarch.preflight import Engine, cli_context_name, follow_cli_context

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


def docker_context(tmp_path, monkeypatch, name: str, *then: str) -> str:
    """A context NAME reaching the same daemon by a second path (as Docker Desktop's does), in
    a CLI config of its own; ``then``: e.g. "use". Returns its endpoint."""
    link = tmp_path / "docker.sock"
    link.symlink_to("/var/run/docker.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "config"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    for args in (["create", name, "--docker", f"host=unix://{link}"], *([verb, name] for verb in then)):
        done = subprocess.run(["docker", "context", *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    return f"unix://{link}"


@pytest.mark.usefixtures("docker_engine")
def test_the_sdk_follows_the_docker_context_variable(tmp_path, monkeypatch):
    endpoint = docker_context(tmp_path, monkeypatch, "elsewhere")
    assert follow_cli_context() is None  # the default context: nothing to do
    monkeypatch.setenv("DOCKER_CONTEXT", "elsewhere")
    assert follow_cli_context() == endpoint
    assert os.environ["DOCKER_HOST"] == endpoint


@pytest.mark.usefixtures("docker_engine")
def test_the_sdk_follows_docker_context_use(tmp_path, monkeypatch):
    endpoint = docker_context(tmp_path, monkeypatch, "desktop", "use")
    assert cli_context_name() == "desktop"
    assert follow_cli_context() == endpoint


def test_no_context_configured_means_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert cli_context_name() == ""
    (tmp_path / "config.json").write_text('{"auths": {}}')
    assert cli_context_name() == ""
    (tmp_path / "config.json").write_text('{"currentContext": "default"}')
    assert cli_context_name() == "default"
    (tmp_path / "config.json").write_text("not json")
    assert cli_context_name() == ""
