"""When the session's networks are made and who joins them (networks.py), against a fake engine:
a lone container stays on the default bridge; the second container of a platform, or a test
asking for multiarch_network, makes the network and connects those already there."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_multiarch.errors import ContainerError
from pytest_multiarch.networks import Networks
from pytest_multiarch.platforms import Platform

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")


class FakeEngine:
    """Records the network calls the docker-py client would get."""

    def __init__(self, connect_error: str | None = None) -> None:
        self.created: list[str] = []
        self.connected: list[tuple[str, str, list[str] | None]] = []
        self.removed: list[str] = []
        self.connect_error = connect_error
        self.endpoint = SimpleNamespace(url="unix:///fake.sock", describe=lambda: "the fake engine")
        self.sdk = SimpleNamespace(
            networks=SimpleNamespace(create=self._create),
            api=SimpleNamespace(connect_container_to_network=self._connect, remove_network=self.removed.append),
        )

    def failure(self, doing: str, exc: BaseException) -> BaseException:
        return exc  # not the engine's loss: the network's own messages

    def _create(self, name: str, **_: Any) -> Any:
        self.created.append(name)
        return SimpleNamespace(id=f"net-{name}")

    def _connect(self, container: str, network: str, aliases: list[str] | None = None) -> None:
        if self.connect_error:
            raise RuntimeError(self.connect_error)
        self.connected.append((container, network, aliases))


def test_a_lone_container_makes_no_network():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    seat = networks.seat(engine, AMD64, "app")
    networks.seated(seat, "c1")
    assert seat.network is None and engine.created == []
    networks.close()
    assert engine.removed == []


def test_the_second_container_of_a_platform_makes_it_and_the_first_joins_as_its_alias():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    first = networks.seat(engine, AMD64, "app")
    networks.seated(first, "c1")
    other_platform = networks.seat(engine, ARM64, "app")
    second = networks.seat(engine, AMD64, "api")
    assert engine.created == ["pytest-multiarch-0123456789ab-linux-amd64"]
    assert second.network == first.network == "pytest-multiarch-0123456789ab-linux-amd64"
    assert engine.connected == [("c1", "net-pytest-multiarch-0123456789ab-linux-amd64", ["app"])]
    assert other_platform.network is None  # one network per platform: arm64's container is alone
    networks.seated(second, "c2")
    assert len(engine.connected) == 1  # created on it: no connect


def test_a_container_still_being_created_when_the_network_is_made_joins_once_it_exists():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    pending = networks.seat(engine, AMD64, "app")
    made = networks.of(engine, AMD64)  # multiarch_network meanwhile
    assert engine.connected == [] and pending.network is None
    networks.seated(pending, "c1")
    assert engine.connected == [("c1", made.id, ["app"])] and pending.network == made.name


def test_a_container_that_left_does_not_make_the_next_one_need_a_network():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    first = networks.seat(engine, AMD64, "app")
    networks.seated(first, "c1")
    networks.leave_container("c1")
    one_shot = networks.seat(engine, AMD64, None)
    assert one_shot.network is None and engine.created == []
    networks.leave(one_shot)
    assert networks.seat(engine, AMD64, None).network is None


def test_of_two_containers_seated_at_once_the_second_always_sees_the_first():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    barrier = threading.Barrier(8)
    seats: list[Any] = []

    def take() -> None:
        barrier.wait()
        seats.append(networks.seat(engine, AMD64, "x"))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(seat.network is None for seat in seats) == 1  # only the first is alone
    assert engine.created == ["pytest-multiarch-0123456789ab-linux-amd64"]


@pytest.mark.parametrize(
    "said",
    [
        "404 Client Error: No such container: c1",
        "409 Client Error: removal of container c1 is already in progress",
        "409 Client Error: container c1 is marked for removal and cannot be started",
    ],
)
def test_a_container_removed_meanwhile_is_no_error_but_another_failure_says_which_container(said):
    gone: Any = FakeEngine(connect_error=said)
    networks = Networks("0123456789abcdef")
    networks.seated(networks.seat(gone, AMD64, "app"), "c1")
    networks.of(gone, AMD64)
    broken: Any = FakeEngine(connect_error="500 Server Error: endpoint with name app already exists")
    networks = Networks("0123456789abcdef")
    networks.seated(networks.seat(broken, AMD64, "app"), "c1")
    with pytest.raises(ContainerError, match=r"linux/amd64 container c1 to network pytest-multiarch-.*already exists"):
        networks.of(broken, AMD64)


def test_close_removes_every_network_made():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    networks.of(engine, AMD64)
    networks.of(engine, ARM64)
    networks.close()
    assert sorted(engine.removed) == sorted(f"net-{name}" for name in engine.created) and len(engine.removed) == 2


def test_a_declared_images_container_is_on_the_network_from_its_start_even_alone():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    seat = networks.seat(engine, AMD64, "api", wanted=True)
    assert seat.network == "pytest-multiarch-0123456789ab-linux-amd64" and engine.created == [seat.network]


def test_a_container_that_could_not_join_is_tried_again_when_the_network_is_next_asked_for():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    lone = networks.seat(engine, AMD64, "app")
    networks.seated(lone, "c1")
    engine.connect_error = "500 Server Error: timeout"
    with pytest.raises(ContainerError, match="container c1 to network"):
        networks.of(engine, AMD64)
    assert lone.network is None and len(engine.created) == 1  # made, to be removed at close
    engine.connect_error = None  # the engine answers again
    made = networks.of(engine, AMD64)
    assert engine.connected == [("c1", made.id, ["app"])] and lone.network == made.name
    assert len(engine.created) == 1


def test_no_network_is_made_after_close():
    engine: Any = FakeEngine()
    networks = Networks("0123456789abcdef")
    networks.close()
    assert networks.seat(engine, AMD64, "app", wanted=True).network is None
    with pytest.raises(ContainerError, match="session ended"):
        networks.of(engine, AMD64)
    assert engine.created == []
