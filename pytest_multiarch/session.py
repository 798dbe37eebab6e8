"""The test session's images and containers, one per (image, platform), made at most once.

Builds start in a thread pool as soon as collection knows which platforms are needed (or, when
the same command ran before, when the session starts: see early.py), so a platform's tests can
run while another platform is still building. Every outcome, success or error, is cached: a
failed build errors that platform's tests once, without retrying per test, and never touches
another platform. Under pytest-xdist each worker has its own session; the controller's only
builds early and gathers the workers' figures (worker_report).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before 3.11
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from filelock import FileLock

from pytest_multiarch import cleanup, early
from pytest_multiarch.build import LOCK_DIR, BuiltImage, build_image, image_slot, prune_stale
from pytest_multiarch.config import ImageSpec, Settings
from pytest_multiarch.errors import (
    BuildError,
    ContainerError,
    EngineError,
    HookSkipped,
    MultiarchError,
    UsageError,
    docker_said,
)
from pytest_multiarch.platforms import Platform, parse_platforms
from pytest_multiarch.preflight import Engine, cached_engine, follow_cli_context
from pytest_multiarch.progress import Terminal
from pytest_multiarch.run import (
    REUSE_SLOT_LABEL,
    MultiarchContainer,
    StarterPending,
    find_reusable,
    mark_verified,
    reuse_labels,
    wait_until_renamed,
)

Key = tuple[ImageSpec, Platform]
T = TypeVar("T")

if TYPE_CHECKING:
    import docker
    from python_on_whales import DockerClient

    from pytest_multiarch import gate


@dataclasses.dataclass
class PlatformStats:
    """What the session learned about one platform, for the summary table."""

    build: str = ""  # "12.3 s", "reused", "failed"
    image: str = ""
    ready: str = ""


class MultiarchSession:
    """Owns the engine connection, the builds and the containers of one pytest session."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.started_at = time.time()  # images made after it may be another session's: not pruned
        follow_cli_context()
        self._cli: DockerClient | None = None
        self._sdk: docker.DockerClient | None = None
        self._engine: Engine | EngineError | None = None
        # One lock per resource: nobody waits on a slow engine or registry call to submit a build.
        self._engine_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._futures_lock = threading.Lock()
        self._sweep_lock = threading.Lock()
        self.closing = threading.Event()  # set by close(): background starts give up
        self._pool: ThreadPoolExecutor | None = None
        self._builds: dict[Key, Future[BuiltImage]] = {}
        self._starts: dict[Key, Future[MultiarchContainer]] = {}
        self._start_pool: ThreadPoolExecutor | None = None
        self._unannounced: list[MultiarchContainer] = []
        self._containers: dict[Key, MultiarchContainer | MultiarchError] = {}
        self._releases: list[threading.Thread] = []
        self._early: early.EarlyStart | None = None
        self._start_dropped: dict[Key, threading.Event] = {}  # set: its start gives up (forget_start)
        self._reported_slots: dict[str, set[str]] = {}  # image ids from xdist workers, for pruning
        # What the collected tests need (on an xdist controller: all workers'); None: not known.
        self.needed: list[early.Needed] | None = None
        self._specs: dict[Key, ImageSpec | UsageError] = {}  # (declared spec, platform) → with hook build args
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.stats: dict[str, PlatformStats] = {}
        self.verbose = config.get_verbosity() > 0
        # Shared by all xdist workers of one run (their testrunuid), so --multiarch-rebuild builds once.
        worker_input = getattr(config, "workerinput", None)
        self.run_id = str(worker_input["testrunuid"]) if worker_input else uuid.uuid4().hex
        self.cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-multiarch"
        self._swept = False
        self._platforms: list[Platform] | UsageError | None = None
        self._index: gate.PublishedIndex | gate.GateError | None = None

    @property
    def cli(self) -> DockerClient:
        """python-on-whales, for what only the CLI does (buildx, imagetools); loaded on first use."""
        if self._cli is None:
            from python_on_whales import DockerClient

            self._cli = DockerClient()
        return self._cli

    @property
    def sdk(self) -> docker.DockerClient:
        """The Docker API client (docker-py), for the quick questions on every run."""
        if self._sdk is None:
            import docker

            self._sdk = docker.from_env()
        return self._sdk

    # -- engine and platforms ------------------------------------------------------------------

    def engine(self) -> Engine:
        """The preflight result, asked once; raises EngineError when Docker is unusable."""
        with self._engine_lock:
            if self._engine is None:
                try:
                    self._engine = cached_engine(self.cache_dir)
                except EngineError as exc:
                    self._engine = exc
                except Exception as exc:  # a broken install, say: a message, not an INTERNALERROR
                    self._engine = EngineError(f"inspecting the Docker engine failed: {type(exc).__name__}: {exc}")
        if isinstance(self._engine, EngineError):
            raise self._engine
        return self._engine

    def start_preflight(self) -> None:
        """Ask the engine in the background while pytest collects (it takes about a second)."""
        threading.Thread(target=self._preflight_quietly, name="multiarch-preflight", daemon=True).start()

    def _preflight_quietly(self) -> None:
        try:
            self.engine()
        except Exception:
            # Reported where it is needed: engine() raises it there. Not joined at close: a run
            # that never needed the engine does not wait for it (it may outlive an in-process
            # pytester run, whose module restore can then break its imports).
            pass

    def platforms(self) -> list[Platform]:
        """The configured platforms (or the engine's native one), after the plugin hook (once)."""
        if isinstance(self._platforms, UsageError):
            raise self._platforms  # the hook ran once; each module's collection reports it
        if self._platforms is not None:
            return list(self._platforms)
        if self.settings.platforms is not None:
            platforms = list(self.settings.platforms)
        else:
            try:
                platforms = [self.engine().native]
            except EngineError:
                platforms = [_host_platform()]
        try:
            self.config.hook.pytest_multiarch_modify_platforms(config=self.config, platforms=platforms)
        except Exception as exc:
            self._platforms = UsageError(f"pytest_multiarch_modify_platforms raised: {type(exc).__name__}: {exc}")
            return self.platforms()
        try:  # what the hook added may be a string, an alias, a duplicate
            self._platforms = parse_platforms(platforms)
        except UsageError as exc:
            self._platforms = UsageError(
                f"pytest_multiarch_modify_platforms left an entry that is not a platform: {exc}"
            )
        return self.platforms()

    def resolve(self, platform: Platform) -> Platform:
        """``platform`` with ``emulated`` set; EngineError or PlatformUnavailable otherwise."""
        return self.engine().resolve(platform)

    def published_index(self) -> gate.PublishedIndex:
        """The index of --multiarch-image, read once; GateError when unreadable or not set."""
        if not self.settings.published:
            raise UsageError("multiarch_index needs --multiarch-image REF (ini multiarch_image).")
        from pytest_multiarch import gate

        with self._index_lock:
            if self._index is None:
                try:
                    self._index = gate.inspect_published(self.cli, self.settings.published)
                except gate.GateError as exc:
                    self._index = exc
        if isinstance(self._index, gate.GateError):
            raise self._index
        return self._index

    # -- images ----------------------------------------------------------------------------------

    def spec_for(self, spec: ImageSpec, platform: Platform) -> ImageSpec:
        """``spec`` with the build args plugins add for this platform (asked once per session)."""
        key = (spec, platform)  # all of it: two declarations may differ in target or build args only
        if key not in self._specs:
            try:
                self._specs[key] = self.full_spec(spec, platform)
            except UsageError as exc:
                self._specs[key] = exc  # a failing hook is asked once too, and fails alike each time
        found = self._specs[key]
        if isinstance(found, UsageError):
            raise found
        return found

    def full_spec(self, spec: ImageSpec, platform: Platform) -> ImageSpec:
        """``spec`` with the build args of the pytest_multiarch_build_args hooks registered now."""
        extra: dict[str, str] = {}
        try:
            results = self.config.hook.pytest_multiarch_build_args(config=self.config, image=spec, platform=platform)
            for result in reversed(results):
                extra.update({str(k): str(v) for k, v in (result or {}).items()})
        except Exception as exc:
            raise UsageError(
                f"pytest_multiarch_build_args raised for {platform}: {type(exc).__name__}: {exc}"
            ) from None
        return dataclasses.replace(spec, build_args={**spec.build_args, **extra})

    def prefetch(self, wanted: list[tuple[ImageSpec, Platform, bool]]) -> None:
        """Start the builds, and the containers, that collected tests will need, before the first
        test asks: ``(spec, platform, needs_container)``."""
        # An xdist worker learns which tests it runs only later; with --dist loadgroup it may
        # never need some platform's container, so it starts containers on first use.
        start_early = not os.environ.get("PYTEST_XDIST_WORKER")
        for spec, platform, needs_container in wanted:
            try:
                resolved = self.resolve(platform)
                self.build_future(spec, resolved)
                if needs_container and start_early:
                    self.start_future(spec, resolved)
            except MultiarchError:
                pass  # the test's own fixture reports it (skip or error)

    def start_early(self, needed: list[early.Needed], *, containers: bool = True) -> None:
        """Start what the last run of this command needed, while pytest collects (early.py)."""
        self._early = early.EarlyStart(self, needed, containers=containers)

    def settle_early(self, wanted: list[tuple[ImageSpec, Platform, bool]]) -> None:
        """After collection: drop what was started early and is not wanted (early.py)."""
        if self._early is not None:
            self._early.settle(wanted)

    def forget_start(self, key: Key) -> Future[MultiarchContainer] | None:
        """Take the container start of ``key`` out of the session (a test asking later starts
        a new one); a start under way gives up at its next step (see _start), and the caller
        cancels it or removes what it started."""
        with self._futures_lock:
            dropped = self._start_dropped.pop(key, None)
            if dropped is not None:
                dropped.set()
            return self._starts.pop(key, None)

    def forget_build(self, key: Key) -> Future[BuiltImage] | None:
        with self._futures_lock:
            return self._builds.pop(key, None)

    def remove_started(self, future: Future[MultiarchContainer]) -> None:
        """Done-callback of a forgotten start: remove its container in the background, unless it
        was found running from an earlier --multiarch-reuse session."""
        if future.cancelled() or future.exception() is not None:
            return
        container = future.result()
        if not container.reused:
            self._remove_in_background(container)

    def _remove_in_background(self, container: MultiarchContainer) -> None:
        """Remove ``container`` in a thread that close() joins. It stays tracked (or listed as
        unannounced) until removed, so an interrupt meanwhile, or a failed removal, is handled
        by close() again (stop is idempotent)."""

        def remove() -> None:
            if cleanup.remove(container):
                with self._futures_lock:
                    if container in self._unannounced:
                        self._unannounced.remove(container)

        remover = threading.Thread(target=remove, name="multiarch-release")
        remover.start()
        self._releases.append(remover)

    def build_future(self, spec: ImageSpec, platform: Platform) -> Future[BuiltImage]:
        return self.build_future_of(self.spec_for(spec, platform), platform)

    def build_future_of(self, full: ImageSpec, platform: Platform) -> Future[BuiltImage]:
        """The build of ``full``, a spec with its build args already complete."""
        with self._futures_lock:
            key = (full, platform)
            if key not in self._builds:
                if self.closing.is_set():
                    raise BuildError(f"the session ended before the build for {platform} started")
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.settings.build_jobs, thread_name_prefix="multiarch-build")
                self._builds[key] = self._pool.submit(self._build, full, platform)
            return self._builds[key]

    def _build(self, spec: ImageSpec, platform: Platform) -> BuiltImage:
        label = f"{platform}{' (' + spec.name + ')' if spec.name else ''}"
        mode = "emulated" if platform.emulated else "native"
        pulling = self.settings.published and not spec.name
        if pulling:
            self.events.put(f"pulling {label} ({mode})…")
        on_line: Callable[[str], None] | None = None
        if self.verbose:

            def on_line(line: str) -> None:
                if line.strip():
                    self.events.put(f"[{platform}] {line}")

        started = time.monotonic()
        try:
            if self.settings.published and not spec.name:
                from pytest_multiarch import gate

                image = gate.pull_platform(self.cli, self.published_index(), platform)
                self.events.put(f"{platform}: testing manifest {image.key} of {self.settings.published}")
            else:
                image = build_image(
                    self.sdk,
                    spec,
                    platform,
                    builder=self.engine().builder_name,
                    rebuild_run=self.run_id if self.settings.rebuild else None,
                    on_line=on_line,
                    cache=(self.settings.cache_from, self.settings.cache_to),
                    on_build=lambda: self._building(label, mode),
                )
        except BaseException as exc:
            self.events.put(f"build {label}: failed after {time.monotonic() - started:.1f} s")
            self._stats(platform).build = "failed"
            if type(exc).__module__.startswith("python_on_whales"):
                # Only docker's own words: the exception's text holds the command line, build args too.
                raise BuildError(f"the engine failed while preparing {label}: {docker_said(exc)}") from None
            if isinstance(exc, Exception) and not isinstance(exc, MultiarchError):
                raise BuildError(f"preparing {label} failed: {type(exc).__name__}: {exc}") from None
            raise
        done = "reused (unchanged)" if image.reused else f"done in {image.seconds:.1f} s"
        self.events.put(f"build {label}: {done}")
        stats = self._stats(platform)
        if stats.build != "failed":  # with several images per platform, a failed build stays shown
            stats.build = "reused" if image.reused else f"{image.seconds:.1f} s"
        is_pulled = self.settings.published and not spec.name
        stats.image = image.key if is_pulled else image.id.removeprefix("sha256:")[:12]
        return image

    def _building(self, label: str, mode: str) -> None:
        """buildx is about to run: say so, and load testcontainers meanwhile (~0.1 s of CPU that
        would otherwise come between the build and the container start)."""
        self.events.put(f"building {label} ({mode})…")
        if self._starts and not self.settings.reuse:  # a container will start (not on an xdist controller)
            threading.Thread(target=importlib.import_module, args=("pytest_multiarch.start",), daemon=True).start()

    def image(self, spec: ImageSpec, platform: Platform, say: Terminal) -> BuiltImage:
        """The built image, waiting for its build and reporting progress meanwhile."""
        return self._wait(self.build_future(spec, platform), f"building {platform}", say)

    def _wait(self, future: Future[T], doing: str, say: Terminal) -> T:
        """Wait for ``future``, printing what the background work reports and a status line."""
        started = time.monotonic()
        while True:
            try:
                result = future.result(timeout=1.0)
            except FutureTimeout:
                self.flush_events(say)
                say.status(doing, time.monotonic() - started)
                continue
            except BaseException:
                self.flush_events(say)
                say.end_status()
                raise
            self.flush_events(say)
            say.end_status()
            return result

    # -- containers ------------------------------------------------------------------------------

    def start_future(self, spec: ImageSpec, platform: Platform) -> Future[MultiarchContainer]:
        """The container of (spec, platform), started in the background once its image is ready,
        so that platforms start concurrently and while other tests run."""
        return self.start_future_of(self.spec_for(spec, platform), platform)

    def start_future_of(self, full: ImageSpec, platform: Platform) -> Future[MultiarchContainer]:
        """The container start of ``full``, a spec with its build args already complete."""
        build = self.build_future_of(full, platform)
        with self._futures_lock:
            key = (full, platform)
            if key not in self._starts:
                if self.closing.is_set():
                    raise ContainerError(f"the session ended before the {platform} container started")
                if self._start_pool is None:
                    self._start_pool = ThreadPoolExecutor(4, thread_name_prefix="multiarch-start")
                dropped = self._start_dropped[key] = threading.Event()
                self._starts[key] = self._start_pool.submit(self._start, full, platform, build, dropped.is_set)
            return self._starts[key]

    def _start(
        self, spec: ImageSpec, platform: Platform, build: Future[BuiltImage], dropped: Callable[[], bool]
    ) -> MultiarchContainer:
        image = build.result()

        def given_up() -> bool:
            return self.closing.is_set() or dropped()

        try:
            if self.settings.reuse:
                # One session at a time per slot: another may be starting the very container.
                lock = FileLock(
                    LOCK_DIR / f"reuse-{reuse_labels(image, spec)[REUSE_SLOT_LABEL].replace('/', '_')}.lock"
                )
                waited = False
                while True:
                    with lock:
                        started = self._start_or_reuse(image, spec, platform, dropped, given_up, waited=waited)
                    if not isinstance(started, StarterPending):
                        return started
                    # Not holding the lock: other sessions waiting for the slot wait alongside.
                    self.events.put(f"waiting for the session that started the reusable {platform} container")
                    wait_until_renamed(started, self.settings.timeout_for(platform), given_up)
                    waited = True
            started = self._start_or_reuse(image, spec, platform, dropped, given_up)
            assert not isinstance(started, StarterPending)  # only with --multiarch-reuse
            return started
        except MultiarchError:
            raise
        except Exception as exc:
            raise ContainerError(f"starting the {platform} container failed: {type(exc).__name__}: {exc}") from None

    def _start_or_reuse(
        self,
        image: BuiltImage,
        spec: ImageSpec,
        platform: Platform,
        dropped: Callable[[], bool],
        given_up: Callable[[], bool],
        *,
        waited: bool = False,
    ) -> MultiarchContainer | StarterPending:
        if self.closing.is_set():
            raise ContainerError(f"the session ended before the {platform} container started")
        if dropped():
            raise ContainerError(f"the {platform} container was no longer needed when its image was ready")
        if self.settings.reuse:
            found = find_reusable(image, spec, waited=waited)
            if isinstance(found, StarterPending):
                return found
            if found is not None:
                self.events.put(f"reusing the running {platform} container at {found.base_url}")
                return found
        with self._sweep_lock:
            if not self._swept:
                self._swept = True
                removed = cleanup.sweep_orphans(self.sdk)
                if removed:
                    self.events.put(f"removed {removed} container(s) left by killed pytest runs")
        self.events.put(f"starting the {platform} container of {image.tag}…")
        from pytest_multiarch.start import start_container  # testcontainers: only when starting one

        return start_container(
            image,
            spec,
            timeout=self.settings.timeout_for(platform),
            reuse=self.settings.reuse,
            on_created=self._track,
            cancelled=given_up,
        )

    def _track(self, container: MultiarchContainer) -> None:
        """Cleanup must know a container from the moment it exists. A --multiarch-reuse one is
        kept after the session only once its hook has run (see _announce)."""
        if self.settings.reuse:
            with self._futures_lock:
                self._unannounced.append(container)
        else:
            cleanup.track(container)
        if self.closing.is_set():  # the session ended while it was being created
            container.stop()

    def container(self, spec: ImageSpec, platform: Platform, say: Terminal) -> MultiarchContainer:
        """The ready container; the container-started hook runs here, in pytest's thread."""
        key = (self.spec_for(spec, platform), platform)
        cached = self._containers.get(key)
        if cached is None:
            future = self.start_future(spec, platform)
            try:
                self.image(spec, platform, say)  # build errors come first, with their own message
                started = self._wait(future, f"starting the {platform} container", say)
            except MultiarchError as exc:
                cached = exc
            except Exception as exc:
                cached = ContainerError(f"the {platform} container: {type(exc).__name__}: {exc}")
            else:
                cached = started if started.reused else self._announce(started, say)
                if started.reused:
                    self._stats(platform).ready = "reused"
            self._containers[key] = cached
        if isinstance(cached, HookSkipped):
            pytest.skip(str(cached))
        if isinstance(cached, MultiarchError):
            raise cached
        return cached

    def release(self, spec: ImageSpec, platform: Platform) -> None:
        """Remove the container of (spec, platform) in the background: its last test is done.

        Called by the plugin after the last collected test that uses it, so that removal overlaps
        the other platforms' tests instead of adding to the end of the session. Should a test
        still ask for it later (a plugin reordered the tests), a new one is started. Containers
        of --multiarch-reuse stay.
        """
        if self.settings.reuse:
            return
        try:
            key = (self.spec_for(spec, platform), platform)
        except MultiarchError:
            return  # its build args hook failed: no container was ever started for it
        cached = self._containers.get(key)
        if not isinstance(cached, MultiarchContainer):
            return  # never started, or its error stays cached for the tests still to come
        del self._containers[key]
        with self._futures_lock:
            self._starts.pop(key, None)
            self._start_dropped.pop(key, None)
        self._remove_in_background(cached)

    def _announce(self, container: MultiarchContainer, say: Terminal) -> MultiarchContainer | MultiarchError:
        """Run the container-started hook; if it raises, the container is stopped and its
        platform's tests error with the hook's exception (once, not once per test)."""
        try:
            self.config.hook.pytest_multiarch_container_started(config=self.config, container=container)
        except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:
            cleanup.stop_quietly(container)
            if isinstance(exc, pytest.skip.Exception):
                return HookSkipped(exc.msg or f"skipped by pytest_multiarch_container_started on {container.platform}")
            return ContainerError(
                f"pytest_multiarch_container_started failed for the {container.platform} container: "
                f"{type(exc).__name__}: {exc}"
            )
        with self._futures_lock:
            if container in self._unannounced:
                self._unannounced.remove(container)
        if self.settings.reuse:
            mark_verified(container)  # from now on later sessions may reuse it as it is
        self._stats(container.platform).ready = f"{container.ready_seconds:.1f} s"
        say(f"{container.platform} container ready in {container.ready_seconds:.1f} s at {container.base_url}")
        return container

    # -- reporting and the end -------------------------------------------------------------------

    def flush_events(self, say: Terminal) -> None:
        while True:
            try:
                say(self.events.get_nowait())
            except queue.Empty:
                return

    def emulation_of(self, platform_text: str) -> str:
        """ "native", "emulated" or "unavailable", for the summary."""
        try:
            resolved = self.resolve(Platform.parse(platform_text))
        except MultiarchError:
            return "unavailable"
        return "emulated" if resolved.emulated else "native"

    def _stats(self, platform: Platform) -> PlatformStats:
        return self.stats.setdefault(str(platform), PlatformStats())

    def close(self) -> None:
        """Stop every container of this session, then drop older builds of the images it built.

        Nothing starts after this: queued work is cancelled and a container start under way gives
        up (and removes its container). A buildx build already running cannot be interrupted from
        here; Python waits for it before it exits. Containers of --multiarch-reuse stay, except
        those whose container-started hook never ran. xdist workers leave pruning to the
        controller: another worker may still need an image.
        """
        with self._futures_lock:  # no build or start is submitted after this
            self.closing.set()
        for pool in (self._pool, self._start_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        cleanup.remove_all()
        for remover in self._releases:
            remover.join()
        with self._futures_lock:
            unannounced, self._unannounced = self._unannounced, []
        for container in unannounced:
            cleanup.stop_quietly(container)
        if os.environ.get("PYTEST_XDIST_WORKER"):
            return  # the controller prunes, once every worker is done (see worker_report)
        slots = self.built_slots()
        for slot, keys in self._reported_slots.items():
            slots.setdefault(slot, set()).update(keys)
        if not slots:
            return  # nothing built or found: no need to ask the engine (it may not even run)
        try:
            sdk = self.sdk
        except Exception:
            return  # no engine to tidy up on; a later session prunes
        for slot, keys in slots.items():
            prune_stale(sdk, slot, keys, made_before=self.started_at)

    def built_slots(self) -> dict[str, set[str]]:
        """Ids of the images this session built or found, per slot (project image and platform);
        pulled images (--multiarch-image) are not the project's builds. Ids, not build keys: a
        --multiarch-rebuild leaves the key's older image behind, which pruning should remove."""
        slots: dict[str, set[str]] = {}
        for (spec, platform), future in list(self._builds.items()):
            if future.done() and not future.cancelled() and future.exception() is None:
                image = future.result()
                if not image.key.startswith("sha256:"):
                    slots.setdefault(image_slot(spec, platform), set()).add(image.id)
        return slots

    # -- pytest-xdist: what a worker tells the controller -------------------------------------------

    def worker_report(self) -> dict[str, Any]:
        """What the controller needs from a worker (sent with xdist's workeroutput): the summary's
        per-platform columns, and which builds to keep when it prunes older ones."""
        return {
            "stats": {platform: dataclasses.asdict(stats) for platform, stats in self.stats.items()},
            "slots": {slot: sorted(keys) for slot, keys in self.built_slots().items()},
            "needed": [dataclasses.asdict(entry) for entry in self.needed or []],
        }

    def merge_worker_report(self, report: dict[str, Any]) -> None:
        """Fold a worker's report in: the worker that built an image knows its build time, the
        others only "reused"; a failed build always shows; the first value known wins otherwise."""
        for platform, fields in report.get("stats", {}).items():
            mine = self.stats.setdefault(platform, PlatformStats())
            for name, value in fields.items():
                if hasattr(mine, name):
                    setattr(mine, name, merged_stat(name, getattr(mine, name), value))
        for slot, keys in report.get("slots", {}).items():
            self._reported_slots.setdefault(slot, set()).update(keys)
        if "needed" in report:
            with contextlib.suppress(TypeError):
                reported = [early.Needed(**entry) for entry in report["needed"]]
                self.needed = early.merged((self.needed or []) + reported)


def merged_stat(name: str, current: str, reported: str) -> str:
    """One summary cell from two xdist workers' values: the first known wins, except that a build
    time beats "reused" (that worker built it) and "failed" beats anything (it must show)."""
    if not reported or reported == current:
        return current
    if not current or (name == "build" and (current == "reused" or reported == "failed")):
        return reported
    return current


def _host_platform() -> Platform:
    import platform as host

    try:
        return Platform.parse(host.machine())
    except MultiarchError:
        return Platform("linux", "amd64")
