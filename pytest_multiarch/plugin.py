"""pytest's entry point: options, configuration, and one ``MultiarchPlugin`` object per run that
owns the session's state and implements the hooks (as pytest-xdist registers its DSession).

A project that merely has the plugin installed pays nothing: the engine-facing modules load
only when a run uses a multiarch fixture or configures platforms.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_multiarch import marker, typos, xdist
from pytest_multiarch.checks import check_configuration
from pytest_multiarch.config import Need, Settings, add_options, runs_tests
from pytest_multiarch.errors import EmulatorCrash, EngineError, MultiarchError, UsageError
from pytest_multiarch.failures import ShownErrors
from pytest_multiarch.fixtures import (  # noqa: F401  (pytest registers the fixtures found here)
    STATE,
    declarations_of_item,
    multiarch_container,
    multiarch_http,
    multiarch_image,
    multiarch_index,
    multiarch_network,
    multiarch_platform,
    multiarch_run,
)
from pytest_multiarch.lifetime import Lifetimes
from pytest_multiarch.marker import PLATFORM_FIXTURE
from pytest_multiarch.platforms import Platform
from pytest_multiarch.progress import Terminal

if TYPE_CHECKING:
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.config import ImageSpec
    from pytest_multiarch.session import MultiarchSession


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_multiarch import newhooks

    pluginmanager.add_hookspecs(newhooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    from pytest_multiarch import evidence  # --multiarch-report, --multiarch-attest

    evidence.add_options(parser)
    from pytest_multiarch import structure_plugin  # --multiarch-structure-tests

    structure_plugin.add_options(parser)


def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """A mistyped --multiarch-* option is named with the closest known one (typos.py)."""
    typos.check_options(parser, args)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", marker.DESCRIPTION)
    typos.check_ini_keys(config)  # before the values are read: a typo explains a missing value
    try:
        settings = Settings.from_pytest(config)
        check_configuration(config, settings)
    except UsageError as exc:
        raise pytest.UsageError(f"pytest-multiarch: {exc}") from None
    from pytest_multiarch.secrets import secret_build_arg_warnings

    for warning in secret_build_arg_warnings(settings.image.build_args):  # -W error makes them fatal
        config.issue_config_time_warning(warning, stacklevel=2)
    plugin = MultiarchPlugin(config, settings)
    from pytest_multiarch import evidence

    try:
        evidence.register(config, plugin)
    except UsageError as exc:
        raise pytest.UsageError(f"pytest-multiarch: {exc}") from None
    config.pluginmanager.register(plugin, STATE)
    from pytest_multiarch import structure_plugin  # container-structure-test files as items

    try:
        structure_plugin.register(config, plugin)
    except UsageError as exc:
        raise pytest.UsageError(f"pytest-multiarch: {exc}") from None
    if plugin.configured:  # it will be used: ask the engine while pytest collects
        plugin.session.start_preflight()
        from pytest_multiarch import early

        early.register(config, plugin)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(STATE)
    if isinstance(plugin, MultiarchPlugin):
        plugin.close()
        config.pluginmanager.unregister(plugin)


def platform_of_item(item: pytest.Item) -> Platform | None:
    own = getattr(item, "multiarch_platform", None)  # a structure test's item (structure_items.py)
    if isinstance(own, Platform):
        return own
    callspec = getattr(item, "callspec", None)
    platform = callspec.params.get(PLATFORM_FIXTURE) if callspec else None
    return platform if isinstance(platform, Platform) else None


class MultiarchPlugin:
    """The state of one pytest run and the hooks that use it."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.configured = settings.platforms is not None or settings.published is not None
        self.cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-multiarch"
        self._session: MultiarchSession | None = None
        self._terminal: Terminal | None = None
        self.platform_of: dict[str, str] = {}  # nodeid → platform, of the tests parametrized by it
        self.wanted: list[Need] = []  # what the collected tests need
        self.lifetimes = Lifetimes()
        self.reports = xdist.ControllerReports()
        self._shown = ShownErrors()  # each error in full once (failures.py)

    @property
    def role(self) -> xdist.Role:
        """Asked each time: pytest-xdist registers its controller in its own pytest_configure,
        which may run after ours."""
        return xdist.role(self.config)

    @property
    def session(self) -> MultiarchSession:
        """The session's images and containers, made on first use (it loads the engine clients)."""
        if self._session is None:
            from pytest_multiarch.session import MultiarchSession

            self._session = MultiarchSession(self.config, self.settings, self.cache_dir)
        return self._session

    @property
    def started(self) -> MultiarchSession | None:
        """The session if anything made it; None when no multiarch work was done."""
        return self._session

    @property
    def say(self) -> Terminal:
        """Where the plugin's ``multiarch:`` lines and waiting status go."""
        if self._terminal is None:
            self._terminal = Terminal(self.config)
        return self._terminal

    def close(self) -> None:
        if self._session is not None:
            for line in self._session.close(self.reports.slots):
                self.config.get_terminal_writer().line(f"multiarch: {line}", yellow=True)

    # -- parametrization and collection ------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if PLATFORM_FIXTURE not in metafunc.fixturenames:
            return
        try:
            platforms, known, native = marker.context(self.session, self.settings.named_platforms)
        except UsageError as exc:
            pytest.fail(str(exc), pytrace=False)
        marker.parametrize(metafunc, platforms, known, native)

    @pytest.hookimpl(trylast=True)  # after pytest grouped the tests by platform
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Native platforms first: their images build and start fastest, so their tests run while
        the emulated platforms still build. Other tests keep their places."""
        positions = [i for i, item in enumerate(items) if platform_of_item(item) is not None]
        if not positions:
            return
        session = self.session

        def emulated(item: pytest.Item) -> bool:
            try:
                return not session.engine_for(platform_of_item(item)).is_native(platform_of_item(item))  # type: ignore[arg-type]
            except MultiarchError:
                return False

        ours = sorted((items[i] for i in positions), key=emulated)
        for position, item in zip(positions, ours, strict=True):
            items[position] = item

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Note each test's platform and containers, and start the builds they need."""
        for item in session.items:
            platform = platform_of_item(item)
            if platform is None:
                continue
            self.platform_of[item.nodeid] = str(platform)
            item.user_properties.append(("platform", str(platform)))
            item.user_properties.append(("engine", self.session.engine_for(platform).name))
            names = set(getattr(item, "fixturenames", ()))
            for prefix, spec_of in declarations_of_item(item).items():
                needs_container = bool(names & {f"{prefix}_container", f"{prefix}_http"})
                entry = Need(spec_of(self.config), platform, needs_container)
                if entry not in self.wanted:
                    self.wanted.append(entry)
                if needs_container:
                    self.lifetimes.note(item, (entry.spec, platform), f"{prefix}_container")
        if self.wanted and runs_tests(self.config):
            self.session.prefetch(self.wanted)
        if self.platform_of:
            self._junit_suite_properties()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """The order is final now (plugins may reorder up to here): note each container's last
        test. An xdist worker runs what it is sent, in no order known beforehand."""
        if self.role != "worker":
            self.lifetimes.order_is_final(session.items)

    def release_when_finished(self, request: pytest.FixtureRequest, spec: ImageSpec, platform: Platform) -> None:
        """For a container that wider-scoped fixtures use: remove it when pytest finishes the
        container fixture, which it does after those fixtures' teardown."""
        if self.lifetimes.held((spec, platform)) and self.role != "worker":
            request.addfinalizer(functools.partial(self.session.release, spec, platform))

    # -- between tests -----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # before pytest starts the test's line (and names its file)
    def pytest_runtest_logstart(self) -> None:
        self._flush()

    @pytest.hookimpl(trylast=True)  # after pytest's result: if it closed its line, ours may follow
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self._flush()
        # logfinish comes after all reruns of a test (pytest-rerunfailures), unlike teardown.
        done_with = self.lifetimes.finished(nodeid)
        if done_with and self._session is not None:
            for key in done_with:
                spec, platform = cast("tuple[ImageSpec, Platform]", key)
                self._session.release(spec, platform)

    @pytest.hookimpl(optionalhook=True)  # pytest-xdist's, on the controller
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        report = (getattr(node, "workeroutput", None) or {}).get(xdist.REPORT_KEY)
        if report:
            self.reports.merge(self._session, report)

    # -- errors and reporting ----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        failed = call.excinfo if call.when == "call" else None
        if failed is not None and isinstance(failed.value, MultiarchError) and not self.config.option.fulltrace:
            _cut_plugin_frames(failed)
        report = yield
        platform = self.platform_of.get(item.nodeid)
        # In a test body an ExecError, say, keeps its traceback; an engine gone is the environment's.
        in_setup = call.when != "call" or (
            call.excinfo is not None and isinstance(call.excinfo.value, (EngineError, EmulatorCrash))
        )
        if in_setup and call.excinfo is not None and report.failed and isinstance(call.excinfo.value, MultiarchError):
            self._shown.show(report, item.nodeid, platform, call.excinfo.value)
        if call.when == "setup" and platform:
            for image in _images(getattr(item, "funcargs", {}).values()):
                item.user_properties.append(("image", image.tag))
                if image.arch is not None:
                    checked, foreign = image.arch.cell(self.settings.arch_ignore).split("/")
                    item.user_properties.append(("arch_check", f"{checked} ELF files, {foreign} foreign"))
        return report

    def pytest_report_header(self) -> list[str]:
        """Engine, buildx and each platform's state, when the project configures the plugin."""
        if not self.configured:
            return []
        from pytest_multiarch import report

        return report.header_lines(self.session)

    def _flush(self, *, at_end: bool = False) -> None:
        """Show what background work said (progress.Terminal decides when a line may go)."""
        if self._session is not None:
            self._session.notes.flush(self.say)
        if self._terminal is not None:
            self._terminal.release(at_end=at_end)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        self._flush(at_end=True)
        if not self.platform_of and self.role != "controller":
            return  # no multiarch test ran here
        from pytest_multiarch import report

        table = report.summary_table(self._session, terminalreporter.stats, self.platform_of)
        lines = report.aligned(table)
        if lines:
            terminalreporter.write_sep("=", "multiarch summary")
            for line in lines:
                terminalreporter.write_line(line)
            for line in report.emulator_lines(self._session, [row[0] for row in table[1:]]):
                terminalreporter.write_line(line)
            for line in report.runtime_lines(self._session):
                terminalreporter.write_line(line)
            for line in report.arch_warning_lines(self._session):
                terminalreporter.write_line(line, yellow=True)
        target = self.settings.summary_file
        if table and target:
            try:
                with open(target, "a", encoding="utf-8") as summary:
                    summary.write(report.summary_markdown(table))
            except OSError as exc:
                terminalreporter.write_line(f"multiarch: could not append the summary to {target}: {exc}", yellow=True)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """An xdist worker hands the controller what its summary and pruning need; the controller,
        which collects nothing itself, adds the JUnit suite properties once workers reported.
        What background work said is shown now, before pytest's sections of errors and failures."""
        self._flush(at_end=True)
        if self._session is None:
            return
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[xdist.REPORT_KEY] = xdist.worker_report(self._session)
        elif self.role == "controller" and self._session.notes.stats:
            self._junit_suite_properties()

    def _junit_suite_properties(self) -> None:
        """Engine and buildx versions on the JUnit test suite. pytest's public way,
        ``record_testsuite_property``, is a fixture: this is the object behind it."""
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # pragma: no cover - pytest moved it: the properties are a nicety
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        try:
            engine = self.session.engine.capabilities()
        except MultiarchError:
            return
        xml.add_global_property("multiarch.engine", f"{engine.server_version} ({engine.native})")
        from pytest_multiarch.report import runtime_of

        xml.add_global_property("multiarch.runtime", runtime_of(engine))
        xml.add_global_property("multiarch.buildx", engine.buildx_version)
        xml.add_global_property("multiarch.builder", f"{engine.builder_name} ({engine.builder_driver})")


def _cut_plugin_frames(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """A test's failure ends at its own line that called into the plugin (``container.exec``,
    say): the plugin's frames below it say nothing to the test's author (--fulltrace shows them).
    The traceback itself is cut (pytest rebuilds its view of one from the raw frames)."""
    here = os.path.dirname(__file__)
    package = (here + os.sep, os.path.realpath(here) + os.sep)
    chain: list[TracebackType] = []
    node: TracebackType | None = excinfo.tb
    while node is not None:
        chain.append(node)
        node = node.tb_next
    for index, node in enumerate(chain):
        if node.tb_frame.f_code.co_filename.startswith(package):
            while index > 0 and os.path.basename(chain[index - 1].tb_frame.f_code.co_filename) == "contextlib.py":
                index -= 1  # the `with` statement of one of ours
            if index > 0:
                chain[index - 1].tb_next = None
                excinfo.traceback = type(excinfo.traceback)(excinfo.tb)
            return


def _images(values: Iterable[object]) -> list[BuiltImage]:
    """The images a test's fixture values stand for, each once, for JUnit's properties."""
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.http import ContainerHTTP
    from pytest_multiarch.run import MultiarchContainer

    images: dict[str, BuiltImage] = {}
    for value in values:
        if isinstance(value, ContainerHTTP):
            value = value.container
        if isinstance(value, MultiarchContainer):
            value = value.image
        if isinstance(value, BuiltImage):
            images.setdefault(value.tag, value)
    return list(images.values())
