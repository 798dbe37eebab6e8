"""The pytest hooks: options, parametrization by platform, fixtures, errors and reporting."""

from __future__ import annotations

import functools
import os
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_multiarch import cleanup
from pytest_multiarch.config import Settings, add_options
from pytest_multiarch.errors import EngineError, MultiarchError, PlatformUnavailable, UsageError
from pytest_multiarch.fixtures import REGISTRY, make_fixtures, spec_of_item
from pytest_multiarch.platforms import Platform, parse_platforms
from pytest_multiarch.progress import Terminal

if TYPE_CHECKING:  # python-on-whales, testcontainers and docker load only in runs that use them
    from pytest_multiarch.config import ImageSpec
    from pytest_multiarch.early import Needed
    from pytest_multiarch.gate import PublishedIndex
    from pytest_multiarch.session import MultiarchSession

_SETTINGS = pytest.StashKey[Settings]()
_SESSION = pytest.StashKey["MultiarchSession"]()
_PLATFORM_OF = pytest.StashKey[dict[str, str]]()
_TERMINAL = pytest.StashKey[Terminal]()
# id of an error already shown in full → (the test it was shown for, the error itself, kept alive)
_SHOWN = pytest.StashKey[dict[int, tuple[str, BaseException]]]()
# nodeid of a test → the containers it uses; then, once the order is final, the containers
# no later test needs (removed as soon as it finishes)
_USES = pytest.StashKey[dict[str, set[tuple["ImageSpec", Platform]]]]()
_LAST_USER = pytest.StashKey[dict[str, list[tuple["ImageSpec", Platform]]]]()
# containers wider-scoped fixtures use: removed after those fixtures' teardown, not after their last test
_KEPT = pytest.StashKey[set[tuple["ImageSpec", Platform]]]()
PLATFORM_FIXTURE = "multiarch_platform"


def settings_of(config: pytest.Config) -> Settings:
    return config.stash[_SETTINGS]


def multiarch_session(config: pytest.Config) -> MultiarchSession:
    """The session's images and containers, made on first use (it imports the engine clients)."""
    session = config.stash.get(_SESSION, None)
    if session is None:
        from pytest_multiarch.session import MultiarchSession

        session = config.stash[_SESSION] = MultiarchSession(config, settings_of(config))
        cleanup.install_handlers()
    return session


def say(config: pytest.Config) -> Terminal:
    """Where the plugin's ``multiarch:`` lines and waiting status go."""
    terminal = config.stash.get(_TERMINAL, None)
    if terminal is None:
        terminal = config.stash[_TERMINAL] = Terminal(config)
    return terminal


def _configured(settings: Settings) -> bool:
    return settings.platforms is not None or settings.published is not None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# -- configuration --------------------------------------------------------------------------------


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_multiarch import newhooks

    pluginmanager.add_hookspecs(newhooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "multiarch(platforms=[...]): run this test only on these of the configured platforms.",
    )
    try:
        settings = Settings.from_pytest(config)
    except UsageError as exc:
        raise pytest.UsageError(f"pytest-multiarch: {exc}") from None
    config.stash[_SETTINGS] = settings
    if _configured(settings):  # it will be used: ask the engine while pytest collects
        multiarch_session(config).start_preflight()
    config.stash[_PLATFORM_OF] = {}
    config.stash[_SHOWN] = {}
    config.stash[_USES] = {}
    config.stash[_LAST_USER] = {}
    config.stash[_KEPT] = set()
    config.pluginmanager.register(_BetweenTests(config), "multiarch-between-tests")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)  # None: no multiarch work was done
    if session is not None:
        session.close()


# -- parametrization --------------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if PLATFORM_FIXTURE not in metafunc.fixturenames:
        return
    session = multiarch_session(metafunc.config)
    try:
        platforms = session.platforms()
    except UsageError as exc:
        pytest.fail(str(exc), pytrace=False)
    marker = metafunc.definition.get_closest_marker("multiarch")
    if marker is not None:
        wanted = marker.kwargs.get("platforms", marker.args[0] if marker.args else None)
        if wanted is None:
            pytest.fail(
                "@pytest.mark.multiarch needs platforms=[...], e.g. @pytest.mark.multiarch(platforms=['linux/arm64']).",
                pytrace=False,
            )
        try:
            allowed = parse_platforms(wanted)
        except UsageError as exc:
            pytest.fail(f"@pytest.mark.multiarch on {metafunc.definition.nodeid}: {exc}", pytrace=False)
        configured = ", ".join(map(str, platforms))
        platforms = [p for p in platforms if p in allowed]
        if not platforms:
            reason = (
                f"none of the configured platforms ({configured}) is in "
                f"@multiarch(platforms={[str(p) for p in allowed]})"
            )
            metafunc.parametrize(
                PLATFORM_FIXTURE,
                [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                ids=["no-platform"],
                indirect=True,
                scope="session",
            )
            return
    metafunc.parametrize(PLATFORM_FIXTURE, platforms, ids=[str(p) for p in platforms], indirect=True, scope="session")


@pytest.hookimpl(trylast=True)  # after pytest grouped the tests by platform
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Native platforms first: their images build and start fastest, so their tests run while the
    emulated platforms still build. Other tests keep their places."""
    positions = [i for i, item in enumerate(items) if _platform_of_item(item) is not None]
    if not positions:
        return
    try:
        engine = multiarch_session(config).engine()
    except MultiarchError:
        return
    ours = [items[i] for i in positions]
    ours.sort(key=lambda item: not engine.is_native(_platform_of_item(item)))  # type: ignore[arg-type]
    for position, item in zip(positions, ours, strict=True):
        items[position] = item


def _platform_of_item(item: pytest.Item) -> Platform | None:
    callspec = getattr(item, "callspec", None)
    platform = callspec.params.get(PLATFORM_FIXTURE) if callspec else None
    return platform if isinstance(platform, Platform) else None


def _xdist_role(config: pytest.Config) -> str:
    """ "worker", "controller" (of pytest-xdist workers; it collects and runs nothing) or "single"."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return "worker"
    return "controller" if config.pluginmanager.has_plugin("dsession") else "single"


def _runs_tests(config: pytest.Config) -> bool:
    """Not a run that only lists tests or fixtures (--co, --fixtures, --fixtures-per-test,
    --setup-plan): it needs no image and no container."""
    option = config.option
    listing = ("collectonly", "showfixtures", "show_fixtures_per_test", "setupplan")
    return not any(getattr(option, name, False) for name in listing)


def _early_start_applies(config: pytest.Config) -> bool:
    """Runs that start early what the last run with the same command line needed (see early.py)
    and record what they need: configured, running tests, not an xdist worker (its controller
    does it for the whole run, builds only: a worker learns late which tests it gets)."""
    role = _xdist_role(config)
    return _configured(settings_of(config)) and _runs_tests(config) and role != "worker"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start what the last run with the same arguments needed, while pytest collects (or, under
    xdist, while the workers start)."""
    config = session.config
    if not _early_start_applies(config):
        return
    from pytest_multiarch import early

    single = _xdist_role(config) == "single"
    if not single and settings_of(config).rebuild:
        return  # the workers' run id marks the one rebuild of the run; the controller lacks it
    multiarch = multiarch_session(config)
    needed = early.read(early.record_path(config, multiarch.cache_dir))
    if needed:
        multiarch.start_early(needed, containers=single)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note each test's platform, and start the builds the selected tests need."""
    config = session.config
    platform_of = config.stash[_PLATFORM_OF]
    wanted: list[tuple[ImageSpec, Platform, bool]] = []
    prefixes: list[str] = []
    uses = config.stash[_USES]
    for item in session.items:
        platform = _platform_of_item(item)
        if platform is None:
            continue
        platform_of[item.nodeid] = str(platform)
        item.user_properties.append(("platform", str(platform)))
        names = set(getattr(item, "fixturenames", ()))
        for prefix in REGISTRY:
            if names & {f"{prefix}_image", f"{prefix}_container", f"{prefix}_http"}:
                needs_container = bool(names & {f"{prefix}_container", f"{prefix}_http"})
                entry = (spec_of_item(item, prefix)(config), platform, needs_container)
                if entry not in wanted:
                    wanted.append(entry)
                    prefixes.append(prefix)
                if needs_container:
                    uses.setdefault(item.nodeid, set()).add((entry[0], platform))
                    if _held_beyond_the_test(item, f"{prefix}_container"):
                        config.stash[_KEPT].add((entry[0], platform))
    if wanted and _runs_tests(config):
        multiarch_session(config).prefetch(wanted)
    if _configured(settings_of(config)) and _runs_tests(config):
        multiarch = multiarch_session(config)
        multiarch.needed = _needed(config, wanted, prefixes)  # recorded when the session ends
        if _xdist_role(config) != "worker":
            multiarch.settle_early(wanted)
    if platform_of:
        _junit_suite_properties(config)


def _needed(config: pytest.Config, wanted: list[tuple[ImageSpec, Platform, bool]], prefixes: list[str]) -> list[Needed]:
    """What the collected tests need, as early.py records it."""
    from pytest_multiarch import early

    multiarch = multiarch_session(config)
    needed: list[Needed] = []
    for (spec, platform, needs_container), prefix in zip(wanted, prefixes, strict=True):
        try:
            digest = early.spec_digest(multiarch.spec_for(spec, platform), platform)
        except MultiarchError:
            continue
        needed.append(early.Needed(prefix, str(platform), needs_container, digest))
    return early.merged(needed)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """The order is final now (plugins may reorder up to here): note each container's last test.
    An xdist worker runs what it is sent, in no order known beforehand: it keeps its containers."""
    if _xdist_role(session.config) == "worker":
        return
    config = session.config
    uses = config.stash[_USES]
    last_user: dict[tuple[ImageSpec, Platform], str] = {}
    for item in session.items:
        for container_key in uses.get(item.nodeid, ()):
            last_user[container_key] = item.nodeid
    for container_key, nodeid in last_user.items():
        if container_key not in config.stash[_KEPT]:
            config.stash[_LAST_USER].setdefault(nodeid, []).append(container_key)


def _held_beyond_the_test(item: pytest.Item, container_fixture: str) -> bool:
    """Does a fixture of yours with a scope wider than function, in ``item``'s closure, use the
    container (directly, through other fixtures, or by overriding the container fixture)?
    pytest tears such a fixture down after the last test that needs it, and its teardown may
    still use the container: it must not be removed early (the container fixture's own
    finalizer removes it once pytest has torn those fixtures down)."""
    info = getattr(item, "_fixtureinfo", None)
    name2defs = getattr(info, "name2fixturedefs", None)
    if name2defs is None:
        return True  # pytest changed: keep the container rather than guess
    users = {container_fixture}
    changed = True
    while changed:  # the fixtures that reach the container, through any chain of arguments
        changed = False
        for name, defs in name2defs.items():
            # every definition counts: an override may request the fixture it overrides
            if name not in users and any(users & set(d.argnames) for d in defs):
                users.add(name)
                changed = True
    return any(d.scope != "function" and not _is_own(d.func) for name in users for d in name2defs.get(name, ()))


def release_when_finished(request: pytest.FixtureRequest, spec: ImageSpec, platform: Platform) -> None:
    """For a container that wider-scoped fixtures use (not removed after its last test): remove it
    when pytest finishes the container fixture, which it does after those fixtures' teardown,
    when the tests move on to another platform or at the end. An xdist worker keeps its
    containers: tests of both platforms may reach it in turn."""
    config = request.config
    if (spec, platform) in config.stash[_KEPT] and _xdist_role(config) != "worker":
        request.addfinalizer(functools.partial(multiarch_session(config).release, spec, platform))


def _is_own(func: Any) -> bool:
    module = getattr(func, "__module__", None) or ""
    return module == "pytest_multiarch" or module.startswith("pytest_multiarch.")


def _junit_suite_properties(config: pytest.Config) -> None:
    """Engine and buildx versions on the JUnit test suite, as record_testsuite_property does."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest moved it: the properties are a nicety
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    try:
        engine = multiarch_session(config).engine()
    except MultiarchError:
        return
    xml.add_global_property("multiarch.engine", f"{engine.server_version} ({engine.native})")
    xml.add_global_property("multiarch.buildx", engine.buildx_version)
    xml.add_global_property("multiarch.builder", f"{engine.builder_name} ({engine.builder_driver})")


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def multiarch_platform(request: pytest.FixtureRequest) -> Platform:
    """The platform this test runs for, with ``emulated`` set by the engine's preflight."""
    platform = getattr(request, "param", None)
    if not isinstance(platform, Platform):
        raise UsageError(
            "multiarch_platform is only available to tests parametrized by pytest-multiarch "
            "(request it as a test argument, not through request.getfixturevalue)."
        )
    settings = settings_of(request.config)
    try:
        return multiarch_session(request.config).resolve(platform)
    except PlatformUnavailable as exc:
        # A release gate, or CI, must never turn green by skipping a platform.
        must_run = settings.strict or settings.published is not None or in_ci()
        if must_run:
            raise
        pytest.skip(str(exc))
    except EngineError as exc:
        if settings.strict or settings.published is not None or in_ci():
            if settings.strict:
                because = "--multiarch-strict is set"
            elif settings.published is not None:
                because = "--multiarch-image makes this run a release gate"
            else:
                because = "CI is set"
            raise EngineError(f"{exc}\n(Docker-backed tests fail instead of skipping because {because}.)") from None
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def multiarch_index(request: pytest.FixtureRequest) -> PublishedIndex:
    """The parsed index of --multiarch-image: ``.digest``, ``.media_type``, ``.manifests``."""
    return multiarch_session(request.config).published_index()


multiarch_image, multiarch_container, multiarch_http = make_fixtures(
    "multiarch", lambda config: settings_of(config).image
)


# -- errors and reporting -------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report_ = yield
    platform = item.config.stash[_PLATFORM_OF].get(item.nodeid)
    in_setup = call.when != "call"  # in a test body (an ExecError, say) keep the traceback
    if in_setup and call.excinfo is not None and report_.failed and isinstance(call.excinfo.value, MultiarchError):
        error = call.excinfo.value
        prefix = f"[{platform}] " if platform else ""
        shown = item.config.stash[_SHOWN]
        first = shown.setdefault(id(error), (item.nodeid, error))[0]
        if first == item.nodeid:
            report_.longrepr = f"{prefix}{type(error).__name__}: {error}"
        else:  # a cached build or start error: every test of the platform gets it, once in full
            headline = str(error).splitlines()[0]
            report_.longrepr = f"{prefix}{type(error).__name__}: {headline} (in full above, at {first})"
    if call.when == "setup" and platform:
        for tag in _image_tags(getattr(item, "funcargs", {}).values()):
            item.user_properties.append(("image", tag))
    return report_


def _image_tags(values: Iterable[object]) -> list[str]:
    """Tags of the images a test's fixture values stand for, for JUnit's properties."""
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.http import ContainerHTTP
    from pytest_multiarch.run import MultiarchContainer

    tags: list[str] = []
    for value in values:
        if isinstance(value, ContainerHTTP):
            value = value.container
        if isinstance(value, MultiarchContainer):
            value = value.image
        if isinstance(value, BuiltImage) and value.tag not in tags:
            tags.append(value.tag)
    return tags


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Engine, buildx and each platform's state, when the project configures pytest-multiarch
    (a project that merely has the plugin installed pays nothing)."""
    if not _configured(settings_of(config)):
        return []
    from pytest_multiarch import report

    return report.header_lines(multiarch_session(config))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    xdist_controller = _xdist_role(config) == "controller"
    if not config.stash[_PLATFORM_OF] and not xdist_controller:
        return  # no multiarch test ran here
    from pytest_multiarch import report

    platform_of: dict[str, str] = config.stash[_PLATFORM_OF]
    lines = report.summary_lines(config.stash.get(_SESSION, None), terminalreporter.stats, platform_of)
    if lines:
        terminalreporter.write_sep("=", "multiarch summary")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    """On an xdist worker: hand the controller what its summary, pruning and record need.
    Elsewhere: record what the collected tests (all workers') needed, for the next run's early
    start; not after an interrupted collection, whose list is partial. An xdist controller
    collects nothing itself: it adds the JUnit suite properties here, once workers reported."""
    config = session.config
    multiarch = config.stash.get(_SESSION, None)
    if multiarch is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["multiarch"] = multiarch.worker_report()
        return
    if _xdist_role(config) == "controller" and multiarch.stats:
        _junit_suite_properties(config)
    cut_short = exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)
    if multiarch.needed is not None and not cut_short and _early_start_applies(config):
        from pytest_multiarch import early

        early.write(early.record_path(config, multiarch.cache_dir), multiarch.needed)


class _BetweenTests:
    """Between tests: prints what the background builds reported, and removes a container once
    the last test that needs it is done (one instance per config)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logstart(self) -> None:
        session = self.config.stash.get(_SESSION, None)
        if session is not None:
            session.flush_events(say(self.config))

    @pytest.hookimpl(optionalhook=True)  # pytest-xdist's, on the controller
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        report = (getattr(node, "workeroutput", None) or {}).get("multiarch")
        session = self.config.stash.get(_SESSION, None)
        if report and session is not None:
            session.merge_worker_report(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        # logfinish comes after all reruns of a test (pytest-rerunfailures), unlike teardown.
        done_with = self.config.stash[_LAST_USER].pop(nodeid, None)
        session = self.config.stash.get(_SESSION, None)
        if done_with and session is not None:
            for spec, platform in done_with:
                session.release(spec, platform)
