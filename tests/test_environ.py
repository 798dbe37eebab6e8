"""environ.py: the plugin's threads read os.environ while pytest's thread sets and deletes
PYTEST_CURRENT_TEST in it; a variable that goes away mid-copy is no error, and the API and
registry sessions read proxies once instead of on each request."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pytest
import requests

from pytest_multiarch import environ


class Vanishing(Mapping[str, str]):
    """os.environ as another thread changes it: the first read of ``key`` after its keys were
    listed finds it gone, as pytest's PYTEST_CURRENT_TEST is between two phases."""

    def __init__(self, values: dict[str, str], key: str) -> None:
        self.known = values
        self.key = key
        self.vanished = False

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.known))

    def __len__(self) -> int:
        return len(self.known)

    def __getitem__(self, key: str) -> str:
        if key == self.key and not self.vanished:
            self.vanished = True
            raise KeyError(key)
        return self.known[key]


def test_a_variable_that_goes_away_mid_copy_is_no_error() -> None:
    vanishing = Vanishing({"PATH": "/bin", "PYTEST_CURRENT_TEST": "t.py::x (call)"}, "PYTEST_CURRENT_TEST")
    with pytest.raises(KeyError):
        dict(Vanishing(dict(vanishing.known), "PYTEST_CURRENT_TEST"))  # what a plain copy does then
    assert environ.snapshot(vanishing) == {"PATH": "/bin", "PYTEST_CURRENT_TEST": "t.py::x (call)"}


def test_a_session_reads_the_proxies_once_honouring_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    registry = requests.Session()
    environ.read_environment_once(registry, "https://registry.example/v2/")
    assert registry.proxies.get("https") == "http://proxy.example:3128"
    assert registry.trust_env is False  # never reads os.environ again, from any thread
    local = requests.Session()
    environ.read_environment_once(local, "https://127.0.0.1:5000/v2/")
    assert "https" not in local.proxies and local.trust_env is False


def test_a_ca_bundle_of_the_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corp.pem")
    session = requests.Session()
    environ.read_environment_once(session, "https://registry.example/")
    assert session.verify == "/etc/ssl/corp.pem"


def test_the_api_client_of_an_engine_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    from pytest_multiarch.engine import Engine

    made = docker.from_env
    monkeypatch.setattr(docker, "from_env", lambda **options: made(version="1.41", **options))  # no call
    engine = Engine.named("tcp://127.0.0.1:9")
    try:
        assert engine.sdk.api.trust_env is False
    finally:
        engine.close()


def test_a_call_that_failed_on_a_vanished_variable_is_made_again_and_no_other() -> None:
    calls: list[int] = []

    def copies_a_changing_environment() -> str:
        calls.append(1)
        if len(calls) == 1:
            os.environ.__getitem__("PYTEST_MULTIARCH_NOT_SET")  # raises KeyError, as os.environ does
        return "done"

    assert environ.retrying(copies_a_changing_environment) == "done" and len(calls) == 2

    def fails_on_its_own() -> str:
        known: dict[str, str] = {}
        return known["missing"]

    with pytest.raises(KeyError):
        environ.retrying(fails_on_its_own)


def test_an_error_raised_from_a_vanished_variable_is_made_again() -> None:
    """docker-py wraps the KeyError of its API-version request into a DockerException."""
    calls: list[int] = []

    def makes_a_client() -> str:
        calls.append(1)
        if len(calls) == 1:
            try:
                os.environ.__getitem__("PYTEST_MULTIARCH_NOT_SET")
            except KeyError as exc:
                raise RuntimeError('Invalid response from docker daemon: key "ApiVersion" is missing.') from exc
        return "client"

    assert environ.retrying(makes_a_client) == "client" and len(calls) == 2
