"""A container that exits between two looks of the plugin is reported by how it exited, not by
what its exit took away (its port mapping)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pytest_multiarch.errors import ContainerError
from pytest_multiarch.start import _publish


class ExitsAfterFirstLook:
    """A docker-py Container stand-in: running when first asked, exited (code 3) after that."""

    id = "c0ffee"

    def __init__(self) -> None:
        self.looks = 0
        self.status = "running"
        self.attrs: dict[str, Any] = {"State": {"Status": "running"}}

    def reload(self) -> None:
        self.looks += 1
        self.status = "exited"
        self.attrs = {"State": {"Status": "exited", "ExitCode": 3}}

    def logs(self, **_: Any) -> bytes:
        return b"app: config missing\n"


def test_a_container_gone_before_its_ports_are_read_is_reported_with_its_exit_code() -> None:
    inner = ExitsAfterFirstLook()
    engine = SimpleNamespace(sdk=SimpleNamespace(api=SimpleNamespace(port=lambda *_: [])), container_host="127.0.0.1")
    container = SimpleNamespace(urls={}, base_url=None)
    plan = SimpleNamespace(published=[8080], port=8080)
    with pytest.raises(ContainerError) as raised:
        _publish(container, inner, plan, engine)  # type: ignore[arg-type]
    assert "exited during start with exit code 3" in str(raised.value)
    assert "app: config missing" in str(raised.value)
    assert raised.value.exit_code == 3


def test_a_running_container_without_a_mapping_is_reported_as_such() -> None:
    inner = ExitsAfterFirstLook()
    inner.reload = lambda: None  # type: ignore[method-assign]  # stays running
    engine = SimpleNamespace(sdk=SimpleNamespace(api=SimpleNamespace(port=lambda *_: [])), container_host="127.0.0.1")
    container = SimpleNamespace(urls={}, base_url=None)
    plan = SimpleNamespace(published=[8080], port=8080)
    with pytest.raises(ContainerError, match="published no host port for container port 8080"):
        _publish(container, inner, plan, engine)  # type: ignore[arg-type]
