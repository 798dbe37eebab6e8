"""Evidence a release pipeline can keep: ``--multiarch-report PATH`` (a JSON report per run) and
``--multiarch-attest DIR`` (an in-toto test-result Statement per platform, about the platform's
manifest digest: a release gate's only).

An ``Evidence`` object, registered beside the plugin when either option is set, records each
test's outcome from its reports (on a pytest-xdist controller, the workers' reports), and
writes at the end of the session, also when tests failed or the run was interrupted (then with
what is known, every platform FAILED). The images' facts (ids, digests, engines, emulation, the
architecture check) come from the session that pulled or built them: under xdist each worker
sends its own through ``workeroutput``, as the summary's figures come. The documents themselves
are made by evidence_report.py.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_multiarch.errors import MultiarchError, UsageError
from pytest_multiarch.evidence_report import PlatformEvidence
from pytest_multiarch.options import runs_tests

if TYPE_CHECKING:
    from pytest_multiarch.plugin import MultiarchPlugin
    from pytest_multiarch.session import MultiarchSession

WORKER_KEY = "multiarch_evidence"
EVIDENCE_PLUGIN = "multiarch-evidence"
_COMPLETE_STATUSES = (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("multiarch")
    options = (
        (
            "--multiarch-report",
            "multiarch_report",
            "PATH",
            "write a JSON report of the run per platform (tests by outcome, image ids, registry digests) to PATH; "
            "schema: pytest_multiarch/schemas/report-v1.json",
        ),
        (
            "--multiarch-attest",
            "multiarch_attest",
            "DIR",
            "release gate: write an in-toto test-result Statement per platform, about its manifest digest, "
            "into DIR (<platform>.intoto.json, and the predicate alone as <platform>.predicate.json)",
        ),
    )
    for flag, ini, metavar, text in options:
        group.addoption(flag, dest=ini, metavar=metavar, help=text)
        parser.addini(ini, help=text, type="string", default=None)


def _path_setting(config: pytest.Config, name: str) -> Path | None:
    """The option, else the ini value (relative to the rootdir), else None."""
    cli = config.getoption(name, default=None)
    if cli not in (None, ""):
        return Path(str(cli)).expanduser().absolute()
    ini = str(config.getini(name) or "").strip()
    return (Path(config.rootpath) / Path(ini).expanduser()).absolute() if ini else None


def register(config: pytest.Config, plugin: MultiarchPlugin) -> None:
    """Register the evidence recorder when --multiarch-report or --multiarch-attest is set;
    UsageError for a path that cannot be one, or attestations without a release gate."""
    report = _path_setting(config, "multiarch_report")
    attest = _path_setting(config, "multiarch_attest")
    if (report is None and attest is None) or not runs_tests(config):
        return  # --co and the like run no test: an older report stays as it is
    if report is not None and report.is_dir():
        raise UsageError(f"--multiarch-report {str(report)!r} is a directory: give the path of a file to write.")
    if attest is not None and attest.exists() and not attest.is_dir():
        raise UsageError(f"--multiarch-attest {str(attest)!r} is a file: give a directory for the statements.")
    if attest is not None and not plugin.settings.published:
        raise UsageError(
            "--multiarch-attest attests the registry digests of what was tested, and a build has none: push the "
            "image, then test it with --multiarch-image REF (the release gate) to attest it."
        )
    config.pluginmanager.register(Evidence(config, plugin, report, attest), EVIDENCE_PLUGIN)


class Outcomes:
    """Each test's one outcome (passed, failed, skipped, errors) from its phase reports, and
    which tests warned. A test that failed its call and its teardown counts as failed; one that
    passed and then errored in teardown, as an error. Reruns start over at setup."""

    def __init__(self) -> None:
        self.of: dict[str, tuple[str, str]] = {}  # nodeid -> (platform, outcome)
        self.warned: set[str] = set()

    def add(self, report: pytest.TestReport, platform: str) -> None:
        known = "" if report.when == "setup" else self.of.get(report.nodeid, (platform, ""))[1]
        outcome = known
        if report.when == "call":
            outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
        elif report.failed:
            outcome = "failed" if known == "failed" else "errors"
        elif report.skipped and report.when == "setup":
            outcome = "skipped"
        if outcome:
            self.of[report.nodeid] = (platform, outcome)

    def platforms(self) -> set[str]:
        return {platform for platform, _ in self.of.values()}

    def fill(self, evidence: PlatformEvidence) -> None:
        for nodeid, (platform, outcome) in sorted(self.of.items()):
            if platform == evidence.platform:
                getattr(evidence, outcome).append(nodeid)
                if outcome == "passed" and nodeid in self.warned:
                    evidence.warned.append(nodeid)


def session_facts(session: MultiarchSession) -> dict[str, Any]:
    """What the session knows of the default image per platform, as JSON: the published index
    (ref and digest) and, per platform, image id, manifest digest, engine, mode, emulator and
    the architecture check's figures. Never asks the registry: only what was already read."""
    from pytest_multiarch.platforms import Platform

    index = session.images.known_index() if session.settings.published else None
    facts: dict[str, Any] = {"index": {"ref": session.settings.published, "digest": index.digest if index else None}}
    platforms: dict[str, dict[str, Any]] = {}
    for (spec, platform), image in session.images.jobs.done():
        if spec.name:
            continue  # declared images are the project's helpers, not what it ships
        entry = platforms.setdefault(str(platform), {})
        entry["image_id"] = image.id
        if session.images.pulled(spec):
            entry["manifest_digest"] = image.key
        if image.arch is not None:
            checked, foreign = image.arch.cell(session.settings.arch_ignore).split("/")
            entry["arch_check"] = {"elf_files": int(checked), "foreign": int(foreign)}
    try:
        configured = session.platforms()
    except MultiarchError:
        configured = []
    for platform in {*configured, *map(Platform.parse, platforms)}:
        entry = platforms.setdefault(str(platform), {})
        if index is not None and str(platform) in index.manifests:
            entry.setdefault("manifest_digest", index.manifests[str(platform)])
        entry.update(_how_it_ran(session, platform))
    facts["platforms"] = platforms
    return facts


def _how_it_ran(session: MultiarchSession, platform: Any) -> dict[str, Any]:
    """Engine, mode and emulator of ``platform``; mode None when it cannot run."""
    from pytest_multiarch.emulators import version_on
    from pytest_multiarch.preflight import describe_handler

    try:
        engine = session.engine_for(platform)
        resolved = engine.resolve(platform)
        local = engine.capabilities().local
    except MultiarchError:
        return {"engine": session.engine_for(platform).name, "mode": None, "emulator": None}
    emulator = None
    if resolved.emulated:  # the QEMU version ("unknown" on a remote engine) and, here, its handler
        handler = describe_handler(platform) if local else None
        emulator = version_on(engine, platform) + (f", {handler}" if handler else "")
    return {"engine": engine.name, "mode": "emulated" if resolved.emulated else "native", "emulator": emulator}


def merge_facts(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Fold one process's facts into ``into``: the first value known wins."""
    index = into.setdefault("index", {})
    for key, value in (more.get("index") or {}).items():
        if index.get(key) is None:
            index[key] = value
    platforms = into.setdefault("platforms", {})
    for platform, fields in (more.get("platforms") or {}).items():
        entry = platforms.setdefault(platform, {})
        for key, value in fields.items():
            if entry.get(key) is None:
                entry[key] = value


class Evidence:
    """Records the run's outcomes and writes the report and statements at the session's end."""

    def __init__(self, config: pytest.Config, plugin: MultiarchPlugin, report: Path | None, attest: Path | None):
        self.config = config
        self.plugin = plugin
        self.report_path = report
        self.attest_dir = attest
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.outcomes = Outcomes()
        self.facts: dict[str, Any] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(getattr(report, "user_properties", ()) or ())
        platform = self.plugin.platform_of.get(report.nodeid) or properties.get("platform")
        if platform:
            self.outcomes.add(report, str(platform))

    def pytest_warning_recorded(self, nodeid: str) -> None:
        if nodeid:
            self.outcomes.warned.add(nodeid)

    @pytest.hookimpl(optionalhook=True)  # pytest-xdist's, on the controller
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        facts = (getattr(node, "workeroutput", None) or {}).get(WORKER_KEY)
        if facts:
            merge_facts(self.facts, facts)

    @pytest.hookimpl(tryfirst=True)  # before the plugin's own: the session is still open either way
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        own = self.plugin.started
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller writes
            if own is not None:
                workeroutput[WORKER_KEY] = session_facts(own)
            return
        if own is not None:
            merge_facts(self.facts, session_facts(own))
        complete = exitstatus in _COMPLETE_STATUSES and not (session.shouldstop or session.shouldfail)
        self.write(complete, int(exitstatus))

    def platforms(self) -> list[PlatformEvidence]:
        known = dict(self.facts.get("platforms") or {})
        names = {*known, *self.outcomes.platforms()}
        found = []
        for name in sorted(names):
            fields = known.get(name, {})
            evidence = PlatformEvidence(
                platform=name, **{k: v for k, v in fields.items() if k in PlatformEvidence.__dataclass_fields__}
            )
            self.outcomes.fill(evidence)
            found.append(evidence)
        return found

    def write(self, complete: bool, exit_status: int) -> None:
        from pytest_multiarch import __version__
        from pytest_multiarch.evidence_report import RunEvidence

        index = self.facts.get("index") or {}
        run = RunEvidence(
            ref=index.get("ref") or self.plugin.settings.published,
            digest=index.get("digest"),
            platforms=self.platforms(),
            started=self.started,
            finished=datetime.datetime.now(datetime.timezone.utc),
            complete=complete,
            exit_status=exit_status,
            version=__version__,
        )
        lines = []
        if self.report_path is not None:
            lines.append(self._write_report(run))
        if self.attest_dir is not None:
            lines += self._write_statements(run)
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            warn = line.startswith(("could not", "no "))
            if terminal is not None:
                terminal.write_line(f"multiarch: {line}", yellow=warn)  # on a line of its own
            else:
                self.config.get_terminal_writer().line(f"multiarch: {line}", yellow=warn)

    def _write_report(self, run: Any) -> str:
        from pytest_multiarch.evidence_report import write_atomically

        assert self.report_path is not None
        try:
            write_atomically(self.report_path, run.report())
        except OSError as exc:
            return f"could not write the report {self.report_path}: {exc.strerror or exc}"
        return f"report written to {self.report_path}"

    def _write_statements(self, run: Any) -> list[str]:
        from pytest_multiarch.evidence_report import ci_run_url, file_descriptors, platform_statement, write_atomically
        from pytest_multiarch.gate import repository_of
        from pytest_multiarch.platforms import Platform

        assert self.attest_dir is not None and run.ref
        configuration = file_descriptors(self._configuration_files(), Path(self.config.rootpath))
        url = ci_run_url(os.environ)
        lines = []
        for platform in run.platforms:
            slug = Platform.parse(platform.platform).slug
            if not platform.manifest_digest:
                lines.append(f"no attestation for {platform.platform}: its manifest digest in {run.ref} is not known")
                continue
            statement = platform_statement(repository_of(run.ref), platform, configuration, url, run.complete)
            try:
                write_atomically(self.attest_dir / f"{slug}.intoto.json", statement)
                write_atomically(self.attest_dir / f"{slug}.predicate.json", statement["predicate"])
            except OSError as exc:
                lines.append(f"could not write the attestation of {platform.platform}: {exc.strerror or exc}")
                continue
            lines.append(f"{platform.platform}: {statement['predicate']['result']} attested in {self.attest_dir}")
        return lines

    def _configuration_files(self) -> Iterable[Path]:
        """The test files that ran, the conftest.py files above them up to the rootdir, and
        pytest's configuration file."""
        root = Path(self.config.rootpath).resolve()
        files: set[Path] = set()
        for nodeid in self.outcomes.of:
            path = (root / nodeid.split("::", 1)[0]).resolve()
            files.add(path)
            folder = path.parent
            while folder == root or root in folder.parents:
                files.add(folder / "conftest.py")
                folder = folder.parent
        if self.config.inipath is not None:
            files.add(Path(self.config.inipath))
        return sorted(p for p in files if p.is_file())
