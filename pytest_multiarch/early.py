"""Early start: what the last run with the same arguments needed, so that the next one starts
those builds and containers when the session starts, while pytest still collects.

Which images and containers a run needs is known only after collection; in a large test suite
that takes seconds, in which a build or a container start could already have run. A run writes
what it needed to a small file keyed by its directory and arguments; the next run with the
same key starts exactly that at ``pytest_sessionstart`` (``EarlyStart``), and drops at once
whatever collection then shows it does not need. The file holds fixture prefixes, platforms and a
SHA-256 per image spec (never build args).

It is an optional part: ``register`` adds its hooks as a plugin of their own. What it uses of the
session and of the plugin is all in the two protocols below, ``EarlySession`` and ``EarlyHost``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from pytest_multiarch.config import ImageSpec, Need, runs_tests
from pytest_multiarch.errors import MultiarchError
from pytest_multiarch.fixtures import SpecFactory, declarations
from pytest_multiarch.platforms import Platform
from pytest_multiarch.secrets import keyed_digest

if TYPE_CHECKING:
    from pathlib import Path as _Path

    from pytest_multiarch.config import Settings
    from pytest_multiarch.containers import Key
    from pytest_multiarch.report import Notes
    from pytest_multiarch.xdist import Role


class EarlySession(Protocol):
    """What early start asks of the session (session.MultiarchSession), and nothing else."""

    config: pytest.Config
    settings: Settings
    notes: Notes

    def resolve(self, platform: Platform) -> Platform: ...
    def full_spec(self, spec: ImageSpec, platform: Platform) -> ImageSpec: ...
    def spec_for(self, spec: ImageSpec, platform: Platform) -> ImageSpec: ...
    def submit(self, full: ImageSpec, platform: Platform, *, container: bool) -> None: ...
    def cancel(self, key: Key, *, container: bool) -> None: ...


class EarlyHost(Protocol):
    """What early start's hooks ask of the plugin object (plugin.MultiarchPlugin)."""

    config: pytest.Config
    settings: Settings
    cache_dir: _Path
    wanted: list[Need]  # what the collected tests need

    @property
    def role(self) -> Role: ...
    @property
    def session(self) -> EarlySession: ...


REPORT_KEY = "multiarch-early"

_SCHEME = 1
FORGET_DAYS = 30


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One (image, platform) a run needed: ``prefix`` names its fixtures (``multiarch`` for the
    default image) and ``digest`` the full spec it was built from, build args included."""

    prefix: str
    platform: str
    container: bool
    digest: str


def merged(needed: list[Recorded]) -> list[Recorded]:
    """One entry per image and platform (first seen first), needing a container if any did."""
    containers: dict[tuple[str, str, str], bool] = {}
    for entry in needed:
        key = (entry.prefix, entry.platform, entry.digest)
        containers[key] = containers.get(key, False) or entry.container
    return [
        Recorded(prefix, platform, container, digest) for (prefix, platform, digest), container in containers.items()
    ]


def spec_digest(spec: ImageSpec, platform: Platform) -> str:
    """A keyed digest (secrets.keyed_digest) over the spec's fields and the platform: equal
    digests, equal builds; build args' values cannot be confirmed from it by hashing a guess."""
    fields = [
        spec.name,
        str(spec.context),
        str(spec.dockerfile),
        sorted(spec.build_args.items()),
        spec.target,
        spec.port,
        spec.ready_path,
        str(platform),
    ]
    return keyed_digest(json.dumps(fields, default=str).encode())  # keyed: a guess cannot be confirmed


def record_path(config: pytest.Config, cache_dir: Path) -> Path:
    """One record per project directory, working directory, command line (PYTEST_ADDOPTS
    included) and ini file content: what decides which tests run and what they need. Its name is
    a keyed digest of them, per user."""
    ini = b""
    if config.inipath is not None:
        with contextlib.suppress(OSError):
            ini = config.inipath.read_bytes()
    key = json.dumps(
        [
            str(config.rootpath),
            str(config.inipath),
            hashlib.sha256(ini).hexdigest(),
            str(config.invocation_params.dir),
            list(config.invocation_params.args),
            os.environ.get("PYTEST_ADDOPTS", ""),
        ]
    )
    # Keyed (secrets.keyed_digest, the user's own key): the command line and PYTEST_ADDOPTS may
    # hold build args' values, and an unkeyed name would confirm a guessed one by existing.
    return cache_dir / "early" / f"{keyed_digest(key.encode(), cache_dir)[:24]}.json"


def read(path: Path) -> list[Recorded]:
    """The record, or nothing when it is missing, unreadable or of another version."""
    try:
        data = json.loads(path.read_text())
        if data.get("scheme") != _SCHEME:
            return []
        needed = [Recorded(**entry) for entry in data["needed"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    types = (str, str, bool, str)
    for entry in needed:
        values = (entry.prefix, entry.platform, entry.container, entry.digest)
        if not all(isinstance(value, kind) for value, kind in zip(values, types, strict=True)):
            return []
    return needed


def write(path: Path, needed: list[Recorded]) -> None:
    """Replace the record atomically, and drop records of command lines not run for
    FORGET_DAYS (one file per command line would otherwise pile up). A cache that cannot be
    written only costs the head start."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"scheme": _SCHEME, "needed": [dataclasses.asdict(n) for n in needed]}))
        partial.replace(path)
    forget_before = time.time() - FORGET_DAYS * 86400
    try:
        entries = list(path.parent.iterdir())  # records, and any temporary file a crash left
    except OSError:
        return
    for old in entries:
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < forget_before:
                old.unlink()


class EarlyStart:
    """The builds and containers one session started from the record, until collection says
    which of them its tests want (``settle``); the rest is dropped.

    Runs in its own thread: resolving a platform waits for the engine's preflight, and pytest
    must go on collecting. It never waits for that thread after collection (a hung engine would
    hold up a run that needs no container): from ``settle`` on, it submits nothing more.
    """

    def __init__(
        self, session: EarlySession, needed: list[Recorded], specs: dict[str, SpecFactory], *, containers: bool
    ) -> None:
        self._session = session
        self._containers = containers  # False on an xdist controller: each worker starts its own
        self._lock = threading.Lock()  # settle cannot run between the early thread's check and submit
        self._builds: set[Key] = set()
        self._starts: set[Key] = set()
        self._settled = False  # collection is over: nothing more is submitted
        platforms = ", ".join(dict.fromkeys(entry.platform for entry in needed))
        what = "builds and containers" if containers and any(e.container for e in needed) else "builds"
        session.notes.say(
            f"starting the {what} the last run of this command needed ({platforms}) while pytest collects"
        )
        threading.Thread(target=self._run, args=(needed, specs), name="multiarch-early", daemon=True).start()

    def _run(self, needed: list[Recorded], specs: dict[str, SpecFactory]) -> None:
        session = self._session
        configured = session.settings.platforms
        for entry in needed:
            spec_of = specs.get(entry.prefix)  # a conftest collection has not reached yet: skip
            try:
                if spec_of is None:
                    continue
                platform = Platform.parse(entry.platform)
                if configured is not None and not session.settings.native and platform not in configured:
                    continue  # configured differently now (not platforms(): it caches hook results)
                platform = session.resolve(platform)
                # Not spec_for: hooks of conftests not loaded yet must not be cached out.
                full = session.full_spec(spec_of(session.config), platform)
                if spec_digest(full, platform) != entry.digest:
                    continue  # configured differently now: collection decides
                container = entry.container and self._containers and not full.needs_fixtures
                with self._lock:
                    if self._settled:
                        return  # collection is over: it started what its tests need
                    session.submit(full, platform, container=container)
                    self._builds.add((full, platform))
                    if container:
                        self._starts.add((full, platform))
            except Exception:
                continue  # best effort: the tests that need it report any problem themselves

    def settle(self, wanted: list[Need]) -> None:
        """Collection is done: cancel the builds and remove the containers started early that no
        collected test needs. A build already running cannot be stopped; it finishes, loaded
        for the next run."""
        session = self._session
        builds: set[Key] = set()
        starts: set[Key] = set()
        for spec, platform, needs_container in wanted:
            with contextlib.suppress(MultiarchError):
                key = (session.spec_for(spec, platform), session.resolve(platform))
                builds.add(key)
                if needs_container:
                    starts.add(key)
        with self._lock:
            self._settled = True
            unneeded_starts = self._starts - starts
            unneeded_builds = self._builds - builds
        for key in unneeded_starts:
            session.notes.say(f"the {key[1]} container started early is not needed by these tests: removing it")
            session.cancel(key, container=True)
        for key in unneeded_builds:
            session.cancel(key, container=False)


def register(config: pytest.Config, plugin: EarlyHost) -> None:
    """Add early start to a run that configures the plugin and runs tests."""
    if runs_tests(config):
        config.pluginmanager.register(EarlyStartPlugin(plugin), "multiarch-early-start")


class EarlyStartPlugin:
    """The hooks of early start: start from the record, settle after collection, write the
    record at the end (under xdist the controller does both, from its workers' reports)."""

    def __init__(self, plugin: EarlyHost) -> None:
        self._plugin = plugin
        self._early: EarlyStart | None = None
        self.needed: list[Recorded] | None = None  # what the collected tests need; None: not known

    def pytest_sessionstart(self) -> None:
        plugin = self._plugin
        if plugin.role == "worker" or (plugin.role == "controller" and plugin.settings.rebuild):
            return  # a worker learns late what it runs; the rebuild's run id is the workers'
        session = plugin.session
        needed = read(record_path(plugin.config, plugin.cache_dir))
        if needed:
            specs = declarations(plugin.config.pluginmanager.get_plugins())
            self._early = EarlyStart(session, needed, specs, containers=plugin.role == "single")

    @pytest.hookimpl(trylast=True)  # after the plugin noted what the tests want
    def pytest_collection_finish(self) -> None:
        plugin = self._plugin
        session = plugin.session
        needed: list[Recorded] = []
        for spec, platform, needs_container in plugin.wanted:
            with contextlib.suppress(MultiarchError):
                digest = spec_digest(session.spec_for(spec, platform), platform)
                needed.append(Recorded(_prefix(spec), str(platform), needs_container, digest))
        self.needed = merged(needed)
        if self._early is not None:
            self._early.settle(plugin.wanted)

    @pytest.hookimpl(optionalhook=True)  # pytest-xdist's, on the controller
    def pytest_testnodedown(self, node: object) -> None:
        reported = (getattr(node, "workeroutput", None) or {}).get(REPORT_KEY)
        if reported is not None:
            with contextlib.suppress(TypeError):
                entries = [Recorded(**entry) for entry in reported]
                self.needed = merged((self.needed or []) + entries)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, exitstatus: int | pytest.ExitCode) -> None:
        """A worker reports what its tests needed; elsewhere the record is written, unless the
        run was cut short (its list is partial)."""
        plugin = self._plugin
        workeroutput = getattr(plugin.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[REPORT_KEY] = [dataclasses.asdict(entry) for entry in self.needed or []]
            return
        cut_short = exitstatus in (
            pytest.ExitCode.INTERRUPTED,
            pytest.ExitCode.INTERNAL_ERROR,
            pytest.ExitCode.USAGE_ERROR,
        )
        if self.needed is not None and not cut_short:
            write(record_path(plugin.config, plugin.cache_dir), self.needed)


def _prefix(spec: ImageSpec) -> str:
    """The fixture prefix of a spec: its declared name, or ``multiarch`` for the default image."""
    return spec.name or "multiarch"
