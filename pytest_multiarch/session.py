"""The test session's coordinator: which platforms, which engine runs each, and the images and
containers the tests ask for (images.py builds, containers.py starts and removes), in the
background as soon as collection knows what the tests need. Every outcome, success or error,
is kept: a platform's failure errors its tests once and never touches another platform."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_multiarch import cleanup, xdist
from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import EnvValue, ImageSpec, Need, Settings
from pytest_multiarch.containers import Containers, Key
from pytest_multiarch.engine import Engine, route
from pytest_multiarch.errors import EngineError, MultiarchError, UsageError
from pytest_multiarch.images import Images
from pytest_multiarch.jobs import Once
from pytest_multiarch.networks import Networks
from pytest_multiarch.oneshot import RunCommand, RunResult, run_once
from pytest_multiarch.platforms import Platform, host_platform, parse_platforms
from pytest_multiarch.progress import Terminal, wait
from pytest_multiarch.report import Notes
from pytest_multiarch.run import MultiarchContainer


class MultiarchSession:
    """Owns the engine, the builds and the containers of one pytest session."""

    def __init__(self, config: pytest.Config, settings: Settings, cache_dir: Path) -> None:
        self.config = config
        self.settings = settings
        self.cache_dir = cache_dir
        self.started_at = time.time()  # images made after it may be another session's: not pruned
        self.notes = Notes()
        if settings.runtime == "podman":
            self.engine = Engine.podman(container_host=settings.container_host)
        else:
            self.engine = Engine.default(
                container_host=settings.container_host, builder=settings.builder, cache_dir=cache_dir
            )
        self._routed = route(self.engine, settings.engines, builder=settings.builder, cache_dir=cache_dir)
        # Shared by all xdist workers of one run (their testrunuid), so --multiarch-rebuild builds once.
        self.run_id = xdist.run_id(config) or uuid.uuid4().hex
        verbose = config.get_verbosity() > 0
        self.images = Images(
            settings, self.engine_for, self.engine, self.notes, run_id=self.run_id, verbose=verbose, cache_dir=cache_dir
        )
        self.images.on_build = self._preload_start
        self.networks = Networks(uuid.uuid4().hex)  # this session's own, also under xdist
        self.containers = Containers(settings, self.engine_for, self.notes, self.networks)
        self._platforms: Once[list[Platform]] = Once(self._configured_platforms, remember=(UsageError,))
        self._specs: dict[Key, Once[ImageSpec]] = {}
        self._specs_lock = threading.Lock()

    @property
    def role(self) -> xdist.Role:
        return xdist.role(self.config)  # asked each time: xdist's controller registers late

    # -- engines and platforms ---------------------------------------------------------------------

    def engine_for(self, platform: Platform) -> Engine:
        """The engine that builds and runs ``platform``: the one --multiarch-engine names for it,
        else the one the docker CLI uses."""
        return self._routed.get(platform, self.engine)

    def routed(self, platform: Platform) -> bool:
        """--multiarch-engine names an engine for ``platform``: it must run there, not skip."""
        return platform in self._routed

    def engines(self) -> list[Engine]:
        """Every engine of the session, the default first."""
        return list({id(e): e for e in [self.engine, *self._routed.values()]}.values())

    def resolve(self, platform: Platform) -> Platform:
        """``platform`` with ``emulated`` set; EngineError or PlatformUnavailable otherwise."""
        return self.engine_for(platform).resolve(platform)

    def start_preflight(self) -> None:
        """Ask the engine in the background while pytest collects (about a second). Not joined:
        a run that never needs the engine does not wait; errors are raised where needed."""
        threading.Thread(target=self._preflight_quietly, name="multiarch-preflight", daemon=True).start()

    def _preflight_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.engine.capabilities()

    def platforms(self) -> list[Platform]:
        """The configured platforms (or the engine's native one), after the plugin hook (once)."""
        return list(self._platforms.get())

    def native_platforms(self) -> list[Platform]:
        """``native`` in the platform list: the own platform of each engine of the session (the
        default one and those --multiarch-engine names); this machine's when none answers."""
        found: list[Platform] = []
        for engine in self.engines():
            with contextlib.suppress(EngineError):
                if engine.native not in found:
                    found.append(engine.native)
        return found or [host_platform()]

    def _configured_platforms(self) -> list[Platform]:
        if self.settings.platforms is not None:
            platforms = list(self.settings.platforms)
            if self.settings.native:
                natives = self.native_platforms()
                platforms = natives + [p for p in platforms if p not in natives]
        else:
            try:
                platforms = [self.engine.native]
            except EngineError:
                platforms = [host_platform()]
        try:
            self.config.hook.pytest_multiarch_modify_platforms(config=self.config, platforms=platforms)
        except Exception as exc:
            raise UsageError(f"pytest_multiarch_modify_platforms raised: {type(exc).__name__}: {exc}") from None
        try:  # what the hook added may be a string, an alias, a duplicate
            return parse_platforms(platforms)
        except UsageError as exc:
            raise UsageError(f"pytest_multiarch_modify_platforms left an entry that is not a platform: {exc}") from None

    # -- images ------------------------------------------------------------------------------------

    def spec_for(self, spec: ImageSpec, platform: Platform) -> ImageSpec:
        """``spec`` with the build args plugins add for this platform (the hook is asked once per
        session; a failing hook fails alike each time)."""
        with self._specs_lock:
            once = self._specs.setdefault((spec, platform), Once(lambda: self.full_spec(spec, platform), (UsageError,)))
        return once.get()

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

    def submit(self, full: ImageSpec, platform: Platform, *, container: bool) -> None:
        """Start the build of ``full`` (build args complete) for a resolved ``platform``, and its
        container once built when ``container``."""
        build = self.images.future(full, platform)
        if container:
            self.containers.future((full, platform), build)

    def cancel(self, key: Key, *, container: bool) -> None:
        """Drop ``key``'s container start (its container is removed), or its build when not yet
        running: nothing collected needs it."""
        if container:
            self.containers.forget(key)
        else:
            future = self.images.jobs.forget(key)
            if future is not None:
                future.cancel()

    def prefetch(self, wanted: list[Need]) -> None:
        """Start the builds, and the containers, that collected tests need. An xdist worker
        learns which tests it runs only later (with --dist loadgroup it may never need some
        platform's container): it starts them on use, as do declarations whose container needs
        fixtures set up first (depends_on)."""
        for spec, platform, needs_container in wanted:
            try:
                early = needs_container and self.role != "worker" and not spec.needs_fixtures
                self.submit(self.spec_for(spec, platform), self.resolve(platform), container=early)
            except MultiarchError:
                pass  # the test's own fixture reports it (skip or error)

    def image(self, spec: ImageSpec, platform: Platform, say: Terminal) -> BuiltImage:
        """The built image, waiting for its build and reporting progress meanwhile."""
        full = self.spec_for(spec, platform)
        future = self.images.future(full, platform)
        return wait(future, lambda: self.images.running(full, platform), say, self.notes.flush)

    def container(
        self, spec: ImageSpec, platform: Platform, say: Terminal, environment: dict[str, str] | None = None
    ) -> MultiarchContainer:
        """The ready container; the container-started hook runs here, in pytest's thread.
        ``environment``: its values once the declaration's depends_on fixtures are set up."""
        full = self.spec_for(spec, platform)
        completed: dict[str, EnvValue] = dict(environment or {})
        run_spec = full if environment is None else dataclasses.replace(full, environment=completed, depends_on=())

        def start() -> MultiarchContainer:
            build = self.images.future(full, platform)
            future = self.containers.future((full, platform), build, run_spec)
            self.image(spec, platform, say)  # build errors come first, with their own message
            return wait(future, lambda: None, say, self.notes.flush)  # a heartbeat is for builds

        def announce(started: MultiarchContainer) -> None:
            self.config.hook.pytest_multiarch_container_started(config=self.config, container=started)

        return self.containers.get((full, platform), start, announce)

    def run(self, spec: ImageSpec, platform: Platform, say: Terminal, args: Sequence[str], **options: Any) -> RunResult:
        """``multiarch_run``: the image of (spec, platform) run once; see oneshot.run_once."""
        image = self.image(spec, platform, say)
        engine = self.engine_for(platform)
        with engine.call(f"looking for containers earlier pytest runs left (before running on {platform})"):
            self.containers.sweep_once(engine)  # a session that only runs one-shots sweeps too
        self.notes.flush(say)
        timeout = options.pop("timeout", None) or self.settings.timeout_for(platform)
        seat = self.networks.seat(engine, platform, None)  # beside other containers: on their network
        try:
            return run_once(
                engine,
                image,
                RunCommand(args, **options),
                tracker=self.containers.tracker,
                timeout=timeout,
                network=seat.network,
                on_created=lambda container_id: self.networks.seated(seat, container_id),
            )
        finally:
            self.networks.leave(seat)

    def release(self, spec: ImageSpec, platform: Platform) -> None:
        """Remove the container of (spec, platform) in the background: its last test is done."""
        try:
            self.containers.release((self.spec_for(spec, platform), platform))
        except MultiarchError:
            return  # its build args hook failed: no container was ever started for it

    def _preload_start(self) -> None:
        """buildx is about to run: load the start path meanwhile (~0.1 s of CPU that would
        otherwise come between the build and the container start)."""
        if self.containers.jobs.items() and not self.settings.reuse:
            threading.Thread(target=importlib.import_module, args=("pytest_multiarch.start",), daemon=True).start()

    # -- the end -----------------------------------------------------------------------------------

    def close(self, reported_slots: dict[str, set[str]] | None = None) -> list[str]:
        """Stop every container of this session, then drop older builds of the images it (and,
        on an xdist controller, its workers: ``reported_slots``) built. xdist workers leave
        pruning to the controller: another worker may still need an image. Returns what could
        not be removed, a line per engine."""
        with cleanup.signals_absorbed():
            return self._close(reported_slots)

    def _close(self, reported_slots: dict[str, set[str]] | None) -> list[str]:
        self.images.close()
        left = self.containers.close()
        if self.role != "worker":
            slots = self.images.built_slots()
            for slot, keys in (reported_slots or {}).items():
                slots.setdefault(slot, set()).update(keys)
            if slots:  # nothing built or found: no need to ask the engine (it may not even run)
                self.images.prune(slots, made_before=self.started_at)
        for engine in self.engines():
            engine.close()
        return left
