"""Preflight decisions from what the engine reports (pure logic on a Capabilities value), and
which endpoint the engine seam picks, as the docker CLI would."""

import os
import subprocess

import pytest
from python_on_whales.exceptions import DockerException

from pytest_multiarch import EngineError, Platform, PlatformUnavailable
from pytest_multiarch.engine import DEFAULT_SOCKET, Engine, cli_context_name, resolve_endpoint
from pytest_multiarch.preflight import Capabilities

P = Platform.parse


def engine(native: str, listed: list[str], local: bool = False) -> Capabilities:
    return Capabilities(
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
def test_the_engine_follows_the_docker_context_variable_without_touching_the_environment(tmp_path, monkeypatch):
    endpoint = docker_context(tmp_path, monkeypatch, "elsewhere")
    assert resolve_endpoint().url == DEFAULT_SOCKET  # the default context
    monkeypatch.setenv("DOCKER_CONTEXT", "elsewhere")
    before = dict(os.environ)
    found = resolve_endpoint()
    assert (found.url, found.context) == (endpoint, "elsewhere")
    engine = Engine(found)
    assert engine.sdk.ping()
    assert engine.cli.system.info().id == Engine(resolve_endpoint({})).sdk.info()["ID"]  # the same daemon
    (tmp_path / "docker.sock").unlink()  # the context's way in is gone: both clients must fail
    cut_off = Engine(resolve_endpoint())
    with pytest.raises(Exception, match="No such file or directory"):
        cut_off.sdk.ping()
    with pytest.raises(DockerException):
        cut_off.cli.system.info()
    assert dict(os.environ) == before


@pytest.mark.usefixtures("docker_engine")
def test_the_engine_follows_docker_context_use(tmp_path, monkeypatch):
    endpoint = docker_context(tmp_path, monkeypatch, "desktop", "use")
    assert cli_context_name() == "desktop"
    assert resolve_endpoint().url == endpoint
    assert "DOCKER_HOST" not in os.environ


def test_docker_host_wins_and_names_its_host(monkeypatch):
    found = resolve_endpoint(
        {"DOCKER_HOST": "tcp://builder.example:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CONTEXT": "x"}
    )
    assert found.url == "tcp://builder.example:2376" and found.tls_verify and found.from_env
    assert found.describe() == "DOCKER_HOST=tcp://builder.example:2376"
    assert Engine(found).container_host == "builder.example"
    assert Engine(found).publish_ip == ""
    local = Engine(resolve_endpoint({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}))
    assert (local.container_host, local.publish_ip) == ("127.0.0.1", "127.0.0.1")


def test_a_context_that_does_not_exist_is_an_engine_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(EngineError, match=r"context 'nowhere' .from DOCKER_CONTEXT.*docker context ls"):
        resolve_endpoint({"DOCKER_CONTEXT": "nowhere", "DOCKER_CONFIG": str(tmp_path)})
    broken = Engine.default()  # the process's own variables: no such context either
    monkeypatch.setenv("DOCKER_CONTEXT", "nowhere")
    broken = Engine.default()
    with pytest.raises(EngineError, match="nowhere"):
        broken.capabilities()


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
