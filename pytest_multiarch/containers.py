"""The session's containers: one per (image, platform), started in the background once its
image is ready, announced to the container-started hook, released after its last test and
removed at the end, on the engine of its platform.

With --multiarch-reuse a container is looked for among those earlier sessions left running
(reuse.find_reusable) and outlives the session, once its hook has run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

import pytest
from filelock import FileLock

from pytest_multiarch import cleanup
from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import ImageSpec, Settings
from pytest_multiarch.errors import ContainerError, HookSkipped, MultiarchError
from pytest_multiarch.jobs import Closed, Jobs
from pytest_multiarch.names import LOCK_DIR
from pytest_multiarch.networks import DEFAULT_ALIAS, Networks
from pytest_multiarch.platforms import Platform
from pytest_multiarch.report import Notes
from pytest_multiarch.reuse import (
    REUSE_SLOT_LABEL,
    StarterPending,
    find_reusable,
    mark_verified,
    reuse_labels,
    wait_until_renamed,
)
from pytest_multiarch.run import MultiarchContainer

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine

Key = tuple[ImageSpec, Platform]
RETRY_SECONDS = 10.0  # how long close() waits for an engine that stopped answering to come back
# Runs pytest_multiarch_container_started; raises what the hook raised.
Announce = Callable[[MultiarchContainer], None]


class Containers:
    """Starts, hands out, releases and removes the containers of one session."""

    def __init__(
        self,
        settings: Settings,
        engine_for: Callable[[Platform], Engine],
        notes: Notes,
        networks: Networks | None = None,
    ) -> None:
        self.settings = settings
        self._engine_for = engine_for
        self._notes = notes
        self.networks = networks
        self.tracker = cleanup.Tracker()
        self.jobs: Jobs[Key, MultiarchContainer] = Jobs("start", 4)
        self._lock = threading.Lock()
        self._dropped: dict[Key, threading.Event] = {}  # set: its start gives up (forget)
        self._ready: dict[Key, MultiarchContainer | MultiarchError] = {}  # handed out (or failed), by key
        self._unannounced: list[MultiarchContainer] = []  # --multiarch-reuse ones whose hook has not run
        self._removers: list[threading.Thread] = []
        self._swept: set[int] = set()  # engines (by id) whose orphans were swept
        self.closing = threading.Event()
        cleanup.open_session(self.tracker)

    # -- starting ----------------------------------------------------------------------------------

    def future(
        self, key: Key, build: Future[BuiltImage], run_spec: ImageSpec | None = None
    ) -> Future[MultiarchContainer]:
        """The start of ``key``'s container, once ``build`` is done (at most one per key), as
        ``run_spec`` says (default: key's spec; one whose environment its fixtures completed)."""
        with self._lock:
            dropped = self._dropped.setdefault(key, threading.Event())
        spec = run_spec or key[0]
        try:
            return self.jobs.submit(key, lambda: self._start((spec, key[1]), build, dropped.is_set))
        except Closed:
            raise ContainerError(f"the session ended before the {key[1]} container started") from None

    def _start(self, key: Key, build: Future[BuiltImage], dropped: Callable[[], bool]) -> MultiarchContainer:
        spec, platform = key
        image = build.result()

        def given_up() -> bool:
            return self.closing.is_set() or dropped()

        try:
            if not self.settings.reuse:
                started = self._start_or_reuse(image, spec, platform, given_up)
                assert not isinstance(started, StarterPending)  # only with --multiarch-reuse
                return started
            # One session at a time per slot: another may be starting the very container.
            slot = reuse_labels(image, spec)[REUSE_SLOT_LABEL].replace("/", "_")
            lock = FileLock(LOCK_DIR / f"reuse-{slot}.lock")
            waited = False
            while True:
                with lock:
                    found = self._start_or_reuse(image, spec, platform, given_up, waited=waited)
                if not isinstance(found, StarterPending):
                    return found
                # Not holding the lock: other sessions waiting for the slot wait alongside.
                self._notes.say(f"waiting for the session that started the reusable {platform} container")
                wait_until_renamed(found, self.settings.timeout_for(platform), given_up)
                waited = True
        except MultiarchError:
            raise
        except Exception as exc:
            mapped = self._engine_for(platform).failure(f"starting the {platform} container", exc)
            if isinstance(mapped, MultiarchError):  # the engine gone, or its refusal
                raise mapped from None
            raise ContainerError(f"starting the {platform} container failed: {type(exc).__name__}: {exc}") from None

    def _start_or_reuse(
        self,
        image: BuiltImage,
        spec: ImageSpec,
        platform: Platform,
        given_up: Callable[[], bool],
        *,
        waited: bool = False,
    ) -> MultiarchContainer | StarterPending:
        """The container of (spec, platform): with --multiarch-reuse a running one found, else
        a new one on the session's network; the network seat is left again if it fails."""
        if self.closing.is_set():
            raise ContainerError(f"the session ended before the {platform} container started")
        if given_up():
            raise ContainerError(f"the {platform} container was no longer needed when its image was ready")
        engine = self._engine_for(platform)
        if self.settings.reuse:
            found = self._reusable(engine, image, spec, platform, waited=waited)
            if found is not None:
                return found
        self.sweep_once(engine)
        on = f" on {engine.label}" if engine.label else ""
        self._notes.say(f"starting the {platform} container of {image.tag}{on}…")
        from pytest_multiarch.start import ContainerSetup, start_container  # only when starting one

        alias = spec.name or DEFAULT_ALIAS
        # Reused containers outlive the session: they join no network of its own. A declared
        # image's container is on the network from its start: its app may resolve the others'
        # names once, at startup.
        seat = None
        if self.networks is not None and not self.settings.reuse:
            seat = self.networks.seat(engine, platform, alias, wanted=bool(spec.name))

        def created(container: MultiarchContainer) -> None:
            self._track(container)  # first: cleanup knows it even if joining the network fails
            if seat is not None and self.networks is not None:
                self.networks.seated(seat, container.id)

        try:
            setup = ContainerSetup(
                environment=spec.resolved_environment,
                network=seat.network if seat is not None else None,
                alias=alias,
                reuse=self.settings.reuse,
            )
            return start_container(
                engine,
                image,
                spec,
                setup,
                timeout=self.settings.timeout_for(platform),
                command_timeout=self.settings.request_timeout_for(platform),
                on_created=created,
                cancelled=given_up,
            )
        except BaseException:
            if seat is not None and self.networks is not None:
                self.networks.leave(seat)  # its container was removed before the error
            raise

    def _reusable(
        self, engine: Engine, image: BuiltImage, spec: ImageSpec, platform: Platform, *, waited: bool
    ) -> MultiarchContainer | StarterPending | None:
        """A running --multiarch-reuse container for (spec, platform), said when found; or the
        StarterPending of one its starter is still setting up (reuse.find_reusable)."""
        timeout = self.settings.request_timeout_for(platform)
        found = find_reusable(engine, image, spec, waited=waited, command_timeout=timeout)
        if isinstance(found, MultiarchContainer):
            self._notes.say(f"reusing the running {platform} container at {found.base_url}")
        return found

    def sweep_once(self, engine: Engine) -> None:
        """Remove what ended pytest runs left on ``engine`` (cleanup.sweep_orphans), once per
        session and engine: before the session starts anything there, a one-shot run included."""
        with self._lock:
            if id(engine) in self._swept:
                return
            self._swept.add(id(engine))
        removed = cleanup.sweep_orphans(engine.sdk)
        if any(removed):
            self._notes.say(cleanup.swept_message(*removed))

    def _track(self, container: MultiarchContainer) -> None:
        """Cleanup must know a container from the moment it exists. A --multiarch-reuse one is
        kept after the session only once its hook has run (see announce)."""
        if self.settings.reuse:
            with self._lock:
                self._unannounced.append(container)
        else:
            self.tracker.track(container)
        if self.closing.is_set():  # the session ended while it was being created
            container.stop()

    # -- handing out -------------------------------------------------------------------------------

    def get(self, key: Key, start: Callable[[], MultiarchContainer], announce: Announce) -> MultiarchContainer:
        """The ready container of ``key``: ``start`` waits for it (in pytest's thread), then the
        container-started hook runs once. Its error, or the hook's, is kept for every later test."""
        cached = self._ready.get(key)
        if cached is None:
            try:
                started = start()
            except MultiarchError as exc:
                cached = exc
            except Exception as exc:
                cached = ContainerError(f"the {key[1]} container: {type(exc).__name__}: {exc}")
            else:
                cached = started if started.reused else self._announce(started, announce)
                if started.reused:
                    self._notes.of(key[1]).ready = "reused"
            self._ready[key] = cached
        if isinstance(cached, HookSkipped):
            pytest.skip(str(cached))
        if isinstance(cached, MultiarchError):
            raise cached
        return cached

    def _announce(self, container: MultiarchContainer, announce: Announce) -> MultiarchContainer | MultiarchError:
        """Run the container-started hook; if it raises, the container is removed and its
        platform's tests error with the hook's exception (once, not once per test)."""
        try:
            announce(container)
        except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:
            if self.networks is not None:
                self.networks.leave_container(container.id)
            cleanup.stop_quietly(container)
            if isinstance(exc, pytest.skip.Exception):
                return HookSkipped(exc.msg or f"skipped by pytest_multiarch_container_started on {container.platform}")
            return ContainerError(
                f"pytest_multiarch_container_started failed for the {container.platform} container: "
                f"{type(exc).__name__}: {exc}"
            )
        with self._lock:
            if container in self._unannounced:
                self._unannounced.remove(container)
        if self.settings.reuse:
            mark_verified(container)  # from now on later sessions may reuse it as it is
        self._notes.of(container.platform).ready = f"{container.ready_seconds:.1f} s"
        from pytest_multiarch.podman import low_port_note

        where = f"at {container.base_url}" if container.base_url else "(no port published)"
        self._notes.say(
            f"{container.platform} container ready in {container.ready_seconds:.1f} s {where}"
            + low_port_note(container.engine, container.urls)
        )
        return container

    # -- releasing and removing --------------------------------------------------------------------

    def release(self, key: Key) -> None:
        """Remove ``key``'s container in the background: its last test is done. A test asking
        later gets a new one. Containers of --multiarch-reuse stay."""
        if self.settings.reuse:
            return
        cached = self._ready.get(key)
        if not isinstance(cached, MultiarchContainer):
            return  # never started, or its error stays cached for the tests still to come
        del self._ready[key]
        self.jobs.forget(key)
        with self._lock:
            self._dropped.pop(key, None)
        self._remove_in_background(cached)

    def forget(self, key: Key) -> Future[MultiarchContainer] | None:
        """Take ``key``'s start out of the session (a test asking later starts a new one); a start
        under way gives up at its next step, and its container is removed."""
        with self._lock:
            dropped = self._dropped.pop(key, None)
        if dropped is not None:
            dropped.set()
        future = self.jobs.forget(key)
        if future is not None and not future.cancel():
            future.add_done_callback(self._remove_started)
        return future

    def _remove_started(self, future: Future[MultiarchContainer]) -> None:
        """Done-callback of a forgotten start: remove what it started, unless it was found
        running from an earlier --multiarch-reuse session."""
        if future.cancelled() or future.exception() is not None:
            return
        container = future.result()
        if not container.reused:
            self._remove_in_background(container)

    def _remove_in_background(self, container: MultiarchContainer) -> None:
        """Remove ``container`` in a thread that close() joins. It stays tracked (or listed as
        unannounced) until removed, so an interrupt meanwhile, or a failed removal, is handled
        by close() again (removal is idempotent)."""

        if self.networks is not None:
            self.networks.leave_container(container.id)  # going: a later start needs no network for it

        def remove() -> None:
            if self.tracker.remove(container):
                with self._lock:
                    if container in self._unannounced:
                        self._unannounced.remove(container)

        remover = threading.Thread(target=remove, name="multiarch-release")
        remover.start()
        self._removers.append(remover)

    def close(self, grace: float = RETRY_SECONDS) -> list[str]:
        """Remove every container of this session; nothing starts after this. Queued starts are
        cancelled; one under way gives up and removes its container. Containers of
        --multiarch-reuse stay, except those whose container-started hook never ran.

        A removal that fails (the engine does not answer) is tried again while the engine comes
        back within ``grace`` seconds. Returns one line per engine on what is left."""
        self.closing.set()
        self.jobs.close()
        for remover in self._removers:
            remover.join()
        with self._lock:
            unannounced, self._unannounced = self._unannounced, []
        for container in unannounced:
            self.tracker.track(container)  # removed with the others below
        left = self.tracker.remove_all()
        deadline = time.monotonic() + grace
        while left and time.monotonic() < deadline:
            if any(container.engine_answers() for container in left):
                left = self.tracker.remove_all()
            else:
                time.sleep(0.25)
        cleanup.close_session(self.tracker)
        if self.networks is not None:
            self.networks.close()
        return _left_over(left)


def _left_over(containers: list[MultiarchContainer]) -> list[str]:
    """One line per engine: which containers could not be removed, and how to remove them."""
    by_engine: dict[str, list[str]] = {}
    for container in containers:
        by_engine.setdefault(container.engine_name, []).append(container.id[:12])
    return [
        f"{len(ids)} container(s) could not be removed: {name} does not answer ({' '.join(ids)}). The next "
        f"pytest-multiarch session removes them, or run `docker rm -f {' '.join(ids)}` against that engine."
        for name, ids in by_engine.items()
    ]
