"""The orphan sweep (cleanup.sweep_orphans) against a fake engine API: a container that goes
away while the sweep runs (its own session removed it, beside this one) costs nothing else."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

import docker.errors

from pytest_multiarch.cleanup import sweep_orphans
from pytest_multiarch.names import OWNER_LABEL


class FakeAPI:
    """The low-level calls the sweep makes; ``gone`` ids were removed by someone else first."""

    def __init__(self, containers: list[dict[str, Any]], networks: list[dict[str, Any]], gone: set[str]) -> None:
        self._containers, self._networks, self.gone = containers, networks, gone
        self.removed: list[str] = []

    def containers(self, all: bool, filters: dict[str, str]) -> list[dict[str, Any]]:
        assert all and filters == {"label": OWNER_LABEL}
        return self._containers

    def networks(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        return self._networks

    def remove_container(self, container: str, force: bool, v: bool) -> None:
        self._remove(container)

    def remove_network(self, network: str) -> None:
        self._remove(network)

    def _remove(self, name: str) -> None:
        if name in self.gone:
            raise docker.errors.NotFound(f"No such container: {name}")
        self.removed.append(name)


def _ended_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_a_container_removed_meanwhile_is_not_counted_and_the_rest_are_swept() -> None:
    host = socket.gethostname()
    dead, alive = f"{host}:{_ended_pid()}", f"{host}:{os.getpid()}"
    containers = [
        {"Id": "gone-first", "Labels": {OWNER_LABEL: dead}},
        {"Id": "orphan", "Labels": {OWNER_LABEL: dead}},
        {"Id": "running", "Labels": {OWNER_LABEL: alive}},
        {"Id": "other-host", "Labels": {OWNER_LABEL: f"elsewhere-{host}:1"}},
    ]
    networks = [{"Id": "net-orphan", "Labels": {OWNER_LABEL: dead}}, {"Id": "net-live", "Labels": {OWNER_LABEL: alive}}]
    api = FakeAPI(containers, networks, gone={"gone-first"})
    sdk: Any = type("Sdk", (), {"api": api})()
    assert sweep_orphans(sdk) == (1, 1)
    assert api.removed == ["orphan", "net-orphan"]
