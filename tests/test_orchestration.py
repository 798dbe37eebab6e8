"""The orchestrator's concurrency against a fake engine: keyed jobs, results kept once, and the
session's containers started, handed out, released, cancelled and removed at close. Every wait
here is on an event, never a sleep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from pytest_multiarch import containers as containers_module
from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import ImageSpec, Settings
from pytest_multiarch.containers import Containers
from pytest_multiarch.errors import ContainerError
from pytest_multiarch.jobs import Closed, Jobs, Once
from pytest_multiarch.platforms import Platform
from pytest_multiarch.report import Notes
from pytest_multiarch.run import MultiarchContainer

WAIT = 30  # seconds an event may take on a loaded machine before the test fails
ARM64 = Platform.parse("linux/arm64").with_emulated(True)


# -- Jobs and Once ------------------------------------------------------------------------------


def test_one_job_per_key_and_a_new_one_after_forget():
    jobs: Jobs[str, int] = Jobs("test", 2)
    calls: list[str] = []
    first = jobs.submit("a", lambda: calls.append("a") or 1)
    assert jobs.submit("a", lambda: calls.append("again") or 2) is first
    assert first.result(WAIT) == 1
    assert jobs.forget("a") is first
    assert jobs.submit("a", lambda: calls.append("b") or 3).result(WAIT) == 3
    assert calls == ["a", "b"]
    assert jobs.done() == [("a", 3)]
    jobs.close()


def test_the_pool_is_bounded_and_close_cancels_what_is_queued():
    jobs: Jobs[int, int] = Jobs("test", 1)
    running, release = threading.Event(), threading.Event()

    def blocking() -> int:
        running.set()
        assert release.wait(WAIT)
        return 1

    first = jobs.submit(1, blocking)
    assert running.wait(WAIT)
    queued = jobs.submit(2, lambda: 2)
    assert not queued.done()  # one worker: the second waits for the first
    jobs.close()
    assert queued.cancelled()
    with pytest.raises(Closed):
        jobs.submit(3, lambda: 3)
    release.set()
    assert first.result(WAIT) == 1  # running work is not interrupted


def test_once_computes_once_across_threads_and_keeps_its_error():
    started = threading.Barrier(4)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return 42

    once = Once(compute)
    results: list[int] = []

    def ask() -> None:
        started.wait(WAIT)
        results.append(once.get())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert results == [42] * 4 and calls == [1]

    failing = Once(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError) as first:
        failing.get()
    with pytest.raises(ZeroDivisionError) as second:
        failing.get()
    assert first.value is second.value  # the same error, so it is shown in full once
    assert failing.peek() is None


# -- the session's containers, on a fake engine -----------------------------------------------------


class FakeDocker:
    """What the containers module asks of an engine's client: no orphans (containers or networks) to sweep."""

    class api:
        @staticmethod
        def containers(**_: Any) -> list[Any]:
            return []

        @staticmethod
        def networks(**_: Any) -> list[Any]:
            return []


class FakeEngine:
    sdk = FakeDocker()
    label = ""  # the docker CLI's own local engine


class FakeContainer(MultiarchContainer):
    """A container handle whose removal is an event instead of an engine call."""

    def __init__(self, image: BuiltImage) -> None:
        self.image = image
        self.reused = False
        self.ready_seconds = 0.1
        self.base_url = "http://127.0.0.1:1/"
        self.engine_name = "the fake engine"
        self.engine_answers = lambda: True
        self.engine = None  # no engine: what asks it (podman's low-port note) has nothing to say
        self.urls = {}
        self.removed = threading.Event()

    def stop(self) -> None:
        self.removed.set()


class FakeStarts:
    """Stands in for start.start_container: makes a FakeContainer, tells cleanup at once, and
    waits for ``proceed`` (or for the session to give up) before it is ready."""

    def __init__(self) -> None:
        self.proceed = threading.Event()
        self.created: list[FakeContainer] = []
        self.made = threading.Event()

    def __call__(
        self,
        engine: Any,
        image: BuiltImage,
        spec: ImageSpec,
        setup: Any,  # start.ContainerSetup: environment, network, alias, reuse
        *,
        timeout: float,
        command_timeout: float,
        on_created: Callable[[Any], None],
        cancelled: Callable[[], bool],
    ) -> FakeContainer:
        container = FakeContainer(image)
        self.created.append(container)
        on_created(container)
        self.made.set()
        while not self.proceed.wait(0.01):
            if cancelled():
                container.stop()  # as start_container removes what it made before raising
                raise ContainerError("the session ended while the container was starting")
        return container


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> FakeStarts:
    fake = FakeStarts()
    import pytest_multiarch.start

    monkeypatch.setattr(pytest_multiarch.start, "start_container", fake)
    return fake


def built(spec: ImageSpec) -> Future[BuiltImage]:
    future: Future[BuiltImage] = Future()
    future.set_result(BuiltImage("t:1", "sha256:1", ARM64, "k", reused=False, seconds=0.0))
    return future


@pytest.fixture
def session_containers(tmp_path: Path):
    spec = ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    made = Containers(Settings(platforms=None, image=spec), lambda platform: FakeEngine(), Notes())  # type: ignore[arg-type,return-value]
    yield made, (spec, ARM64)
    made.close()


def test_a_container_is_started_once_announced_once_and_removed_after_release(session_containers, starts):
    containers, key = session_containers
    starts.proceed.set()
    announced: list[Any] = []

    def start() -> Any:
        return containers.future(key, built(key[0])).result(WAIT)

    first = containers.get(key, start, announced.append)
    assert containers.get(key, start, announced.append) is first
    assert announced == [first] and len(starts.created) == 1
    containers.release(key)
    assert first.removed.wait(WAIT)  # in the background, before the session ends
    again = containers.get(key, start, announced.append)  # a test asking later gets a new one
    assert again is not first and len(starts.created) == 2


def test_close_while_a_start_is_under_way_removes_what_it_made(session_containers, starts):
    containers, key = session_containers
    future = containers.future(key, built(key[0]))
    assert starts.made.wait(WAIT)  # created and tracked, not ready yet
    containers.close()
    with pytest.raises(ContainerError, match="session ended"):
        future.result(WAIT)
    assert starts.created[0].removed.is_set()
    other = (key[0], Platform.parse("linux/amd64"))
    with pytest.raises(ContainerError, match="session ended before the linux/amd64 container started"):
        containers.future(other, built(key[0]))


def test_a_start_cancelled_before_its_image_is_built_never_starts(session_containers, starts):
    containers, key = session_containers
    build: Future[BuiltImage] = Future()
    future = containers.future(key, build)
    containers.forget(key)  # nothing collected needs it
    build.set_result(built(key[0]).result())
    with pytest.raises(ContainerError, match="no longer needed"):
        future.result(WAIT)
    assert starts.created == []


def test_a_cancelled_start_that_finished_anyway_is_removed(session_containers, starts):
    containers, key = session_containers
    future = containers.future(key, built(key[0]))
    assert starts.made.wait(WAIT)
    containers.forget(key)
    with pytest.raises(ContainerError):
        future.result(WAIT)  # it saw it was dropped and removed its container
    assert starts.created[0].removed.wait(WAIT)


def test_a_failing_hook_removes_the_container_and_errors_every_later_test_alike(session_containers, starts):
    containers, key = session_containers
    starts.proceed.set()

    def start() -> Any:
        return containers.future(key, built(key[0])).result(WAIT)

    def hook(container: Any) -> None:
        raise RuntimeError("seeding failed")

    with pytest.raises(ContainerError, match=r"container_started failed.*RuntimeError: seeding failed") as first:
        containers.get(key, start, hook)
    with pytest.raises(ContainerError) as second:
        containers.get(key, start, hook)
    assert first.value is second.value
    assert starts.created[0].removed.is_set() and len(starts.created) == 1


def test_the_containers_module_keeps_no_global_state():
    """Two sessions in one process (pytester in-process runs) must not share containers."""
    names = {
        name
        for name, value in vars(containers_module).items()
        if isinstance(value, (list, dict, set)) and not name.startswith("__")
    }
    assert names == set()


class Unreachable(FakeContainer):
    """A container whose engine does not answer until ``back`` is set."""

    def __init__(self, image: BuiltImage, back: threading.Event) -> None:
        super().__init__(image)
        self.back = back
        self.engine_answers = back.is_set

    @property
    def id(self) -> str:
        return "0123456789abcdef"

    def stop(self) -> None:
        if not self.back.is_set():
            raise ConnectionError("engine gone")
        self.removed.set()


def test_close_retries_a_removal_once_the_engine_answers_again_and_names_what_is_left(session_containers):
    containers, key = session_containers
    image = built(key[0]).result()
    back = threading.Event()
    returning, gone = Unreachable(image, back), Unreachable(image, threading.Event())
    containers.tracker.track(returning)
    threading.Timer(0.3, back.set).start()  # the engine comes back while the session closes
    assert containers.close(grace=WAIT) == []
    assert returning.removed.is_set()

    other = Containers(containers.settings, lambda platform: FakeEngine(), Notes())  # type: ignore[arg-type,return-value]
    other.tracker.track(gone)
    (line,) = other.close(grace=0.5)
    assert line.startswith("1 container(s) could not be removed: the fake engine does not answer (0123456789ab)")
    assert "docker rm -f 0123456789ab" in line


def test_only_slots_where_a_build_ran_are_pruned_with_every_id_the_session_used_kept(tmp_path):
    from pytest_multiarch.images import Images
    from pytest_multiarch.names import image_slot

    spec = ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    amd64 = Platform.parse("linux/amd64")
    images = Images(
        Settings(platforms=None, image=spec),
        lambda p: FakeEngine(),
        FakeEngine(),
        Notes(),
        run_id="r",
        verbose=False,
    )
    done = {
        (spec, ARM64): BuiltImage("t:arm", "sha256:new-arm", ARM64, "k1", reused=False, seconds=1.0),
        (spec, amd64): BuiltImage("t:amd", "sha256:same-amd", amd64, "k2", reused=True, seconds=0.0),
    }
    for key, image in done.items():
        images.jobs.submit(key, lambda image=image: image).result(WAIT)
    assert images.built_slots() == {image_slot(spec, ARM64): {"sha256:new-arm"}}  # amd64: found, nothing to prune
    images.jobs.close()
