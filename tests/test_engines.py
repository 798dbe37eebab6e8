"""Which engine runs which platform: --multiarch-engine's forms and mistakes, how an endpoint is
named and reached, and the engines a session makes of them (no engine is asked here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_multiarch import EngineError, Platform, UsageError
from pytest_multiarch.config import parse_engines
from pytest_multiarch.engine import DEFAULT_SOCKET, Engine, named_endpoint, route

ARM64 = Platform.parse("linux/arm64")
AMD64 = Platform.parse("linux/amd64")


def test_engines_are_platform_equals_endpoint_from_the_cli_or_one_per_ini_line():
    assert parse_engines(["arm64=ssh://me@arm-host", "linux/amd64=tcp://x86:2375"], "--multiarch-engine") == {
        ARM64: "ssh://me@arm-host",
        AMD64: "tcp://x86:2375",
    }
    assert parse_engines("\nlinux/arm64=graviton\nlinux/amd64=default\n", "ini") == {
        ARM64: "graviton",
        AMD64: "default",
    }
    assert parse_engines("", "ini") == {}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("linux/arm64", "is not PLATFORM=ENDPOINT"),
        ("linux/arm64=", "is not PLATFORM=ENDPOINT"),
        ("linux/arm64=http://host:2375", "is not a Docker endpoint; use unix://, tcp:// or ssh://"),
        ("linux/arm64=my context", "is not PLATFORM=ENDPOINT"),  # split into two items
        ("linux/arm64=ctx!", "neither a URL nor a docker context name"),
        ("linux/sparc=tcp://h:2375", "sparc"),
    ],
)
def test_a_malformed_engine_is_a_usage_error_naming_it(item, message):
    with pytest.raises(UsageError, match=message):
        parse_engines(item, "ini multiarch_engines")


def test_two_engines_for_one_platform_are_refused():
    with pytest.raises(UsageError, match="two engines for linux/arm64"):
        parse_engines(["arm64=tcp://a:2375", "linux/arm64=tcp://b:2375"], "--multiarch-engine")


def test_an_endpoint_is_a_url_or_a_context(tmp_path, monkeypatch):
    assert named_endpoint("ssh://me@arm-host").url == "ssh://me@arm-host"
    assert named_endpoint("default").url == DEFAULT_SOCKET
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(EngineError, match="context 'graviton', which does not exist"):
        named_endpoint("graviton")
    broken = Engine.named("graviton")
    with pytest.raises(EngineError, match="graviton"):
        broken.capabilities()  # the platforms routed there report it; the others run


def test_published_ports_are_reached_at_the_engines_host():
    remote = Engine.named("ssh://me@arm-host:2222")
    assert (remote.container_host, remote.publish_ip, remote.label) == ("arm-host", "", "ssh://me@arm-host:2222")
    local = Engine.named("unix:///run/docker.sock")
    assert (local.container_host, local.publish_ip) == ("127.0.0.1", "127.0.0.1")


def test_a_session_makes_one_engine_per_endpoint(tmp_path):
    routes = {ARM64: "tcp://127.0.0.2:2375", Platform.parse("linux/arm/v7"): "tcp://127.0.0.2:2375", AMD64: "default"}
    default = Engine.named("default")
    routed = route(default, routes, builder=None, cache_dir=Path(tmp_path))
    assert routed[ARM64] is routed[Platform.parse("linux/arm/v7")]
    assert routed[AMD64] is default  # "default" names the docker CLI's own local engine
    assert routed[ARM64].endpoint.url == "tcp://127.0.0.2:2375"


def test_the_cli_is_told_the_endpoint_as_the_user_named_it():
    """Builds run ``docker buildx`` with exactly these flags (buildx.py); the default context is
    left to the CLI, a context goes by name, a URL with its TLS files."""
    from pytest_multiarch.engine import Endpoint

    assert Engine(Endpoint(DEFAULT_SOCKET)).docker_command() == ["docker"]
    assert Engine(Endpoint("tcp://box:2376", context="arm-box")).docker_command() == ["docker", "--context", "arm-box"]
    assert Engine.named("ssh://me@arm-host:2222").docker_command() == ["docker", "--host", "ssh://me@arm-host:2222"]
    tls = Endpoint("tcp://box:2376", from_env=True, tls_verify=True, cert_path="/certs")
    assert Engine(tls).docker_command() == [
        *("docker", "--host", "tcp://box:2376", "--tls", "--tlsverify"),
        *("--tlscacert", "/certs/ca.pem", "--tlscert", "/certs/cert.pem", "--tlskey", "/certs/key.pem"),
    ]
    assert Engine(tls).cli.client_config.docker_cmd[1:] == Engine(tls).docker_command()[1:]  # one source


def test_the_cli_reaches_an_ssh_engine_through_its_bridge_and_shows_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI calls the plugin runs share the API client's DialBridge (one ssh connection);
    what users are told to type keeps the ssh:// URL."""
    made: list[str] = []

    class Bridge:
        def __init__(self, url: str) -> None:
            made.append(url)
            self.url = "unix:///tmp/pytest-multiarch-dial-x/docker.sock"

        def close(self) -> None:
            pass

    monkeypatch.setattr("pytest_multiarch.dialbridge.DialBridge", Bridge)
    engine = Engine.named("ssh://me@arm-host:2222")
    assert engine.cli_command() == ["docker", "--host", "unix:///tmp/pytest-multiarch-dial-x/docker.sock"]
    assert engine.cli_command() == engine.cli_command() and made == ["ssh://me@arm-host:2222"]  # one bridge
    assert engine.docker_command() == ["docker", "--host", "ssh://me@arm-host:2222"]
    assert "`docker --host ssh://me@arm-host:2222 info`" in str(engine.gone("building", "EOF"))
    assert Engine.named("tcp://box:2375").cli_command() == ["docker", "--host", "tcp://box:2375"]
