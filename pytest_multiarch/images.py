"""The session's images: each (image, platform) built, or for a release gate pulled, at most
once, in the background, on that platform's engine.

Every outcome is kept: a failed build errors that platform's tests once, without retrying per
test, and never touches another platform. Under pytest-xdist the workers of one run share a
build through the build key's file lock (build.py).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_multiarch import environ, prunes, rebuilds
from pytest_multiarch.build import BuildOptions, BuiltImage, build_image, key_inputs, prune_stale
from pytest_multiarch.config import ImageSpec, Settings
from pytest_multiarch.context import context_manifest, manifest_digest
from pytest_multiarch.enginefaults import from_cli
from pytest_multiarch.errors import BuildError, MultiarchError, docker_said
from pytest_multiarch.jobs import Closed, Jobs, Once
from pytest_multiarch.names import image_slot
from pytest_multiarch.platforms import Platform
from pytest_multiarch.report import Notes, merged_cells

if TYPE_CHECKING:
    from pytest_multiarch import gate
    from pytest_multiarch.engine import Engine
    from pytest_multiarch.rootfs import RootFS

Key = tuple[ImageSpec, Platform]


class Images:
    """Builds (or pulls) by (full spec, platform); ``future`` starts one at most once."""

    def __init__(
        self,
        settings: Settings,
        engine_for: Callable[[Platform], Engine],
        default_engine: Engine,
        notes: Notes,
        *,
        run_id: str,
        verbose: bool,
        cache_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self._engine_for = engine_for
        self._default_engine = default_engine
        self._notes = notes
        self._run_id = run_id
        self._verbose = verbose
        self.on_build: Callable[[], None] | None = None  # buildx is about to run (the session preloads)
        self.jobs: Jobs[Key, BuiltImage] = Jobs("build", settings.build_jobs)
        self._closed = False  # a podman build waiting for its turn then gives up (podmanbuild.py)
        self._index: Once[gate.PublishedIndex] = Once(self._read_index, remember=(MultiarchError,))
        # One digest per build context a session, whichever platforms build from it.
        self._contexts: dict[tuple[Path, Path], Once[dict[str, str]]] = {}
        self._contexts_lock = threading.Lock()
        self._running: dict[Key, float] = {}  # builds under way: when buildx started
        self._index_dir = cache_dir / "contexts" if cache_dir is not None else None
        self._cache_dir = cache_dir
        self._prune_dir = cache_dir / "prune" if cache_dir is not None else None
        self._builds_dir = cache_dir / "builds" if cache_dir is not None else None  # rebuilds.py

    def future(self, full: ImageSpec, platform: Platform) -> Future[BuiltImage]:
        """The build of ``full`` (a spec with its build args complete) for ``platform``."""
        full = full.for_build()
        try:
            return self.jobs.submit((full, platform), lambda: self._build(full, platform))
        except Closed:
            raise BuildError(f"the session ended before the build for {platform} started") from None

    def running(self, full: ImageSpec, platform: Platform) -> tuple[str, float] | None:
        """("building linux/arm64", its seconds so far) while buildx runs that build; None
        while it is queued, looks for an unchanged image, or is done."""
        started = self._running.get((full.for_build(), platform))
        return None if started is None else (f"building {platform}", time.monotonic() - started)

    def pulled(self, spec: ImageSpec) -> bool:
        """A release gate tests the published image instead of building the default one."""
        return bool(self.settings.published) and not spec.name

    def published_index(self) -> gate.PublishedIndex:
        """The index of --multiarch-image, read once; GateError when unreadable."""
        return self._index.get()

    def known_index(self) -> gate.PublishedIndex | None:
        """The index of --multiarch-image if it was read without an error; never reads it."""
        return self._index.peek()

    def _read_index(self) -> gate.PublishedIndex:
        from pytest_multiarch import gate

        assert self.settings.published
        if self._default_engine.runtime == "podman":  # podman manifest inspect (podmangate.py)
            from pytest_multiarch import podmangate

            return podmangate.inspect_published(self._default_engine, self.settings.published)
        # Read by the default engine's CLI, with the user's `docker login` credentials.
        cli, published = self._default_engine.cli, self.settings.published
        return environ.retrying(lambda: gate.inspect_published(cli, published))

    def _build(self, spec: ImageSpec, platform: Platform) -> BuiltImage:
        label = f"{platform}{' (' + spec.name + ')' if spec.name else ''}"
        engine = self._engine_for(platform)
        mode = ("emulated" if platform.emulated else "native") + (f" on {engine.label}" if engine.label else "")
        on_line: Callable[[str], None] | None = None
        if self._verbose:

            def on_line(line: str) -> None:
                if line.strip():
                    self._notes.say(f"[{platform}] {line}")

        started = time.monotonic()
        try:
            if self.pulled(spec):
                self._notes.say(f"pulling {label} ({mode})…")
                image = self._pull(platform, engine)
                self._notes.say(f"{platform}: testing manifest {image.key} of {self.settings.published}")
            else:
                image = self._build_here(spec, platform, engine, f"{label} ({mode})", on_line)
        except BaseException as exc:
            self._notes.say(f"build {label}: failed after {time.monotonic() - started:.1f} s")
            self._notes.of(platform).build = "failed"
            failure = self._failure(exc, label, engine)
            if failure is exc:
                raise
            raise failure from None
        finally:
            self._running.pop((spec, platform), None)
        done = "reused (unchanged)" if image.reused else f"done in {image.seconds:.1f} s"
        self._notes.say(f"build {label}: {done}")
        stats = self._notes.of(platform)
        if stats.build != "failed":  # with several images per platform, a failed build stays shown
            stats.build = "reused" if image.reused else f"{image.seconds:.1f} s"
        stats.image = image.key if self.pulled(spec) else image.id.removeprefix("sha256:")[:12]
        try:
            return self._check_arch(image, engine)
        except MultiarchError as exc:
            self._notes.say(f"{label}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            raise

    def _build_here(
        self, spec: ImageSpec, platform: Platform, engine: Engine, what: str, on_line: Callable[[str], None] | None
    ) -> BuiltImage:
        """Build (or find unchanged) ``spec`` for ``platform`` on ``engine``; a build that runs
        says why (rebuilds.py), and the inputs are kept for the next one."""
        found = engine.capabilities()
        builder = ",".join((found.builder_name, *found.builder_nodes))
        manifest = self._context_manifest(spec)
        inputs = {"key": key_inputs(spec, platform, builder), "files": manifest}
        record = rebuilds.record_path(self._builds_dir, image_slot(spec, platform))

        def building() -> None:
            prunes.mark(self._prune_dir, image_slot(spec, platform))  # cleared by the prune after it
            chosen, forced = self.settings, None
            if chosen.rebuild:  # the option that builds although the key is unchanged
                forced = "--multiarch-no-cache" if chosen.no_cache else "--multiarch-pull" if chosen.pull else None
                forced = forced or "--multiarch-rebuild"
            self._notes.say(f"building {what}: {rebuilds.why(rebuilds.recall(record), inputs, forced)}…")
            self._running[(spec, platform)] = time.monotonic()
            if self.on_build is not None:
                self.on_build()

        options = BuildOptions(
            builder=builder,
            rebuild_run=self._run_id if self.settings.rebuild else None,
            cache=(self.settings.cache_from, self.settings.cache_to),
            flags=self.settings.buildx_flags,
        )
        image = build_image(
            engine,
            spec,
            platform,
            options,
            context=manifest_digest(manifest),
            on_line=on_line,
            on_build=building,
            cancelled=lambda: self._closed,
        )
        rebuilds.remember(record, inputs)
        return image

    @staticmethod
    def _failure(exc: BaseException, label: str, engine: Engine) -> BaseException:
        """What a failed build or pull raises: docker's own words for python-on-whales' errors
        (their text holds the command line, build args too), the engine gone or its refusal."""
        if from_cli(exc):
            return BuildError(f"the engine failed while preparing {label}: {docker_said(exc)}")
        if isinstance(exc, Exception) and not isinstance(exc, MultiarchError):
            mapped = engine.failure(f"preparing {label}", exc)
            if isinstance(mapped, MultiarchError):
                return mapped
            return BuildError(f"preparing {label} failed: {type(exc).__name__}: {exc}")
        return exc

    def _pull(self, platform: Platform, engine: Engine) -> BuiltImage:
        """--multiarch-image: ``platform``'s manifest of the published index, pulled by its digest."""
        if engine.runtime == "podman":
            from pytest_multiarch import podmangate

            return podmangate.pull_platform(engine, self.published_index(), platform)
        from pytest_multiarch import gate

        index = self.published_index()
        return environ.retrying(lambda: gate.pull_platform(engine.cli, index, platform))  # in a build thread

    def _check_arch(self, image: BuiltImage, engine: Engine) -> BuiltImage:
        """``image`` with its architecture check's findings and its files; ArchMismatch when a
        file its platform runs is built for another CPU (archcheck.py). Warnings go to the
        summary."""
        from pytest_multiarch import imagefiles

        files: Once[RootFS] = Once(lambda: imagefiles.read_rootfs(engine, image.id))
        image = dataclasses.replace(image, files=files.get)
        mode, ignore = self.settings.arch_check, self.settings.arch_ignore
        if mode == "off":
            return image
        report = imagefiles.arch_report(image, files.get, self._cache_dir)
        stats = self._notes.of(image.platform)
        stats.elf = merged_cells(stats.elf, report.cell(ignore))
        warnings = [f.line() for f in report.warnings(mode, ignore)]
        if warnings:
            stats.elf_warnings = "\n".join([*filter(None, stats.elf_warnings.split("\n")), *warnings])
        try:
            native: Platform | None = engine.native
        except MultiarchError:
            native = None
        imagefiles.verdict(report, image, mode, ignore, native)
        return dataclasses.replace(image, arch=report)

    def close(self) -> list[int]:
        """No build starts after this and queued ones are cancelled; a buildx process still
        running (the session stopped by a signal, say) is ended with its whole process tree, so
        that none outlives pytest and Python need not wait for it. Returns the pids ended."""
        self._closed = True
        self.jobs.close()
        if all(future.done() for _, future in self.jobs.items()):
            return []
        from pytest_multiarch import cleanup
        from pytest_multiarch.buildx import end_running_builds

        ended = cleanup.end_descendants("buildx")  # Linux: each build's whole process tree
        ended += cleanup.end_descendants("podman build")  # --multiarch-runtime podman's
        end_running_builds()  # anywhere: the docker CLI processes this session started
        return ended

    def _context_manifest(self, spec: ImageSpec) -> dict[str, str]:
        """What the build key holds of the context, computed once a session for all platforms
        (context.py)."""
        spec.check_paths()
        with self._contexts_lock:
            key = (spec.context, spec.dockerfile)
            once = self._contexts.setdefault(key, Once(lambda: context_manifest(spec, self._index_dir)))
        return once.get()

    def built_slots(self) -> dict[str, set[str]]:
        """Ids of the images this session built, per slot (project image and platform), with
        the other ids it uses in those slots; pulled images (--multiarch-image) are not the
        project's builds. Ids, not build keys: a --multiarch-rebuild leaves the key's older image
        behind, which pruning should remove. A slot where every image was found unchanged is
        left out: older builds pile up only where a build replaced them, and the session that
        built prunes them (a warm run saves the engine calls, 0.05 s)."""
        used: dict[str, set[str]] = {}
        built: set[str] = set()
        for (spec, platform), image in self.jobs.done():
            if image.source != "pulled":
                slot = image_slot(spec, platform)
                used.setdefault(slot, set()).add(image.id)
                if not image.reused or prunes.marked(self._prune_dir, slot):  # a killed session's build
                    built.add(slot)
        return {slot: ids for slot, ids in used.items() if slot in built}

    def prune(self, slots: dict[str, set[str]], made_before: float) -> None:
        """Remove older builds of every slot in ``slots`` but the ids kept there, on each engine
        that built for that slot."""
        engines: dict[str, Engine] = {}
        for (spec, platform), _ in self.jobs.done():
            engine = self._engine_for(platform)
            engines.setdefault(image_slot(spec, platform), engine)
        for slot, keep in slots.items():
            engine = engines.get(slot) or self._default_engine
            try:
                sdk = engine.sdk
            except Exception:
                continue  # no engine to tidy up on; a later session prunes
            prune_stale(sdk, slot, keep, made_before=made_before)
            prunes.clear(self._prune_dir, slot)
