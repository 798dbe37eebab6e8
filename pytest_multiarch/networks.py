"""The session's networks: one user-defined network per engine and platform, made only when a
platform's containers need one, and removed at the end of the session.

A platform's network is made as soon as two of the session's containers of that platform exist
at once (a one-shot run beside the app), when a declared image's container starts (images
declared with ``multiarch_fixtures`` are there to talk to each other), or when a test asks for
``multiarch_network`` to attach services of its own. Containers then on the default bridge are
connected to it at that moment (Docker then points their resolver at its embedded DNS), and
later ones are created on it; each is there as its declared name (``app`` for the default
image), so images reach each other by name. The default image's container alone stays on the
default bridge: making, joining and removing a network costs about half a second per run that
nothing would use. One network per platform, not per engine: the amd64 and arm64
containers of one image may run at the same time on one engine, and one alias must name one
container.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pytest_multiarch import cleanup
from pytest_multiarch.errors import ContainerError, EngineGone
from pytest_multiarch.names import network_name
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine

DEFAULT_ALIAS = "app"
# What the engine says when connecting a container that is gone or going (released after its
# last test while another test asks for the network): it needs no network any more.
_GONE = ("no such container", "not running", "in progress", "marked for removal", "is dead")


@dataclasses.dataclass(frozen=True)
class ServiceNetwork:
    """``multiarch_network``: attach your own containers to ``name`` on the engine at
    ``docker_host``; the plugin's containers are there as ``app`` and their declared names."""

    name: str
    id: str
    platform: Platform
    docker_host: str


@dataclasses.dataclass(eq=False)
class Seat:
    """One container's place among its platform's containers: ``network`` is the network it is
    on (None: the default bridge), ``container_id`` None until the container exists."""

    engine: Engine
    platform: Platform
    alias: str | None
    network: str | None = None
    container_id: str | None = None


class Networks:
    """Makes, joins and removes the session's networks. Each (engine, platform) has a lock of
    its own, held across that platform's engine calls: an engine that hangs stalls its own
    platform only."""

    def __init__(self, session_id: str) -> None:
        self._session_id = session_id[:12]
        self._lock = threading.Lock()  # guards the dicts below and _closed, never held over a call
        self._locks: dict[tuple[int, Platform], threading.Lock] = {}
        self._made: dict[tuple[int, Platform], tuple[Engine, ServiceNetwork]] = {}
        self._seats: dict[tuple[int, Platform], list[Seat]] = {}
        self._closed = False

    def _key_lock(self, engine: Engine, platform: Platform) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault((id(engine), platform), threading.Lock())

    def of(self, engine: Engine, platform: Platform) -> ServiceNetwork:
        """The network of ``platform`` on ``engine``, made on first use; the platform's
        containers on the default bridge are connected to it before this returns."""
        with self._key_lock(engine, platform):
            return self._network_locked(engine, platform)

    def seat(self, engine: Engine, platform: Platform, alias: str | None, *, wanted: bool = False) -> Seat:
        """Place a container about to be created: on the platform's network when ``wanted``,
        when the network exists or when another container of the platform does (then the
        network is made now), else on the default bridge. Deciding and taking the seat happen
        under the platform's lock, so of two containers starting at once the second always
        sees the first."""
        key = (id(engine), platform)
        with self._key_lock(engine, platform):
            with self._lock:
                others = bool(self._seats.get(key)) or key in self._made
            seat = Seat(engine, platform, alias)
            if (wanted or others) and not self._closed:
                seat.network = self._network_locked(engine, platform).name
            with self._lock:
                self._seats.setdefault(key, []).append(seat)
            return seat

    def seated(self, seat: Seat, container_id: str) -> None:
        """The container of ``seat`` exists; if the network was made while it was being
        created on the default bridge, it joins it now."""
        with self._key_lock(seat.engine, seat.platform):
            seat.container_id = container_id
            with self._lock:
                made = self._made.get((id(seat.engine), seat.platform))
            if made is not None and seat.network is None:
                self._connect(made[1], seat)

    def leave(self, seat: Seat) -> None:
        """The container of ``seat`` is gone, going, or was never made."""
        with self._lock:
            seats = self._seats.get((id(seat.engine), seat.platform), [])
            if seat in seats:
                seats.remove(seat)

    def leave_container(self, container_id: str) -> None:
        """The container ``container_id`` is gone or going: its seat is free."""
        with self._lock:
            for seats in self._seats.values():
                seats[:] = [seat for seat in seats if seat.container_id != container_id]

    def _network_locked(self, engine: Engine, platform: Platform) -> ServiceNetwork:
        """With the platform's lock held: the network, made if needed, with every seated
        container that is not on it yet connected (again, if an earlier try failed)."""
        key = (id(engine), platform)
        with self._lock:
            if self._closed:
                raise ContainerError(f"the session ended: no network for {platform} any more")
            found = self._made.get(key)
        if found is None:
            name = network_name(self._session_id, platform)
            try:
                made = engine.sdk.networks.create(name, driver="bridge", labels=cleanup.owner_labels())
            except Exception as exc:
                mapped = engine.failure(f"creating network {name}", exc)
                if isinstance(mapped, EngineGone):
                    raise mapped from None
                raise ContainerError(
                    f"the engine at {engine.endpoint.describe()} could not create network {name}: {exc}"
                ) from None
            found = (engine, ServiceNetwork(name, str(made.id), platform, engine.endpoint.url))
            with self._lock:
                closed = self._closed
                if not closed:
                    self._made[key] = found  # made: removed at close, whatever happens next
            if closed:  # the session ended while it was being made: close() has not seen it
                _remove_quietly(found)
                raise ContainerError(f"the session ended: no network for {platform} any more")
        network = found[1]
        with self._lock:
            waiting = [seat for seat in self._seats.get(key, []) if seat.container_id and seat.network is None]
        failures: list[ContainerError] = []
        for seat in waiting:
            try:
                self._connect(network, seat)
            except ContainerError as exc:
                failures.append(exc)  # the others still join; this one is tried again next time
        if failures:
            raise failures[0]
        return network

    @staticmethod
    def _connect(network: ServiceNetwork, seat: Seat) -> None:
        """Connect a running (or just created) container to ``network`` under its alias. One
        removed (or being removed) meanwhile is no error: it needs no network any more."""
        assert seat.container_id is not None
        try:
            seat.engine.sdk.api.connect_container_to_network(
                seat.container_id, network.id, aliases=[seat.alias] if seat.alias else None
            )
        except Exception as exc:
            mapped = seat.engine.failure(f"connecting the {seat.platform} container to network {network.name}", exc)
            if isinstance(mapped, EngineGone):
                raise mapped from None
            if not any(gone in str(exc).lower() for gone in _GONE):
                raise ContainerError(
                    f"could not connect the {seat.platform} container {seat.container_id[:12]} to "
                    f"network {network.name}: {exc}"
                ) from None
            return
        seat.network = network.name

    def close(self) -> None:
        """Remove every network made, at once (after the containers on them are gone); one still
        in use (a container of yours on it) is left, with the owner label the next session sweeps.
        No network is made after this."""
        with self._lock:
            self._closed = True
            made, self._made = list(self._made.values()), {}
            self._seats.clear()
        if not made:
            return
        with ThreadPoolExecutor(len(made), thread_name_prefix="multiarch-network") as pool:
            list(pool.map(_remove_quietly, made))


def _remove_quietly(made: tuple[Engine, ServiceNetwork]) -> None:
    engine, network = made
    try:
        engine.sdk.api.remove_network(network.id)
    except Exception:
        pass
