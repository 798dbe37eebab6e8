"""The session's networks: one user-defined network per engine and platform, made when the first
container of that platform starts and removed at the end of the session.

Every container the plugin starts joins it, with its declared name as a network alias (``app``
for the default image), so images reach each other by name; tests attach their own service
containers to it (``multiarch_network``). One per platform, not one per engine: the amd64 and
arm64 containers of one image may run at the same time on one engine, and one alias must name
one container.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING

from pytest_multiarch import cleanup
from pytest_multiarch.errors import ContainerError
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine

DEFAULT_ALIAS = "app"


@dataclasses.dataclass(frozen=True)
class ServiceNetwork:
    """``multiarch_network``: attach your own containers to ``name`` on the engine at
    ``docker_host``; the plugin's containers are there as ``app`` and their declared names."""

    name: str
    id: str
    platform: Platform
    docker_host: str


class Networks:
    """Makes and removes the session's networks."""

    def __init__(self, session_id: str) -> None:
        self._session_id = session_id[:12]
        self._lock = threading.Lock()
        self._made: dict[tuple[int, Platform], tuple[Engine, ServiceNetwork]] = {}

    def of(self, engine: Engine, platform: Platform) -> ServiceNetwork:
        """The network of ``platform`` on ``engine``, made on first use."""
        key = (id(engine), platform)
        with self._lock:
            found = self._made.get(key)
            if found is None:
                name = f"pytest-multiarch-{self._session_id}-{platform.slug}"
                try:
                    made = engine.sdk.networks.create(name, driver="bridge", labels=cleanup.owner_labels())
                except Exception as exc:
                    raise ContainerError(
                        f"the engine at {engine.endpoint.describe()} could not create network {name}: {exc}"
                    ) from None
                found = self._made[key] = (engine, ServiceNetwork(name, str(made.id), platform, engine.endpoint.url))
            return found[1]

    def close(self) -> None:
        """Remove every network made (after the containers on them are gone); one still in use
        (a container of yours on it) is left, with the owner label the next session sweeps."""
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for engine, network in made:
            try:
                engine.sdk.networks.get(network.id).remove()
            except Exception:
                pass
