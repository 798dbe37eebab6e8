"""Report: what background work tells the terminal, the header pytest prints first and the
per-platform summary table at the end."""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_multiarch.errors import MultiarchError, PlatformUnavailable
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from pytest_multiarch.preflight import Capabilities
    from pytest_multiarch.progress import Terminal
    from pytest_multiarch.session import MultiarchSession


@dataclasses.dataclass
class PlatformStats:
    """What the session learned about one platform, for the summary table."""

    build: str = ""  # "12.3 s", "reused", "failed"
    image: str = ""
    ready: str = ""
    elf: str = ""  # the architecture check: "ELF files checked/foreign"
    elf_warnings: str = ""  # foreign files that do not fail the platform, one per line


def merged_cells(current: str, more: str) -> str:
    """Two "checked/foreign" cells of one platform (its images) added up."""
    if not current:
        return more
    (a, b), (c, d) = (cell.split("/") for cell in (current, more))
    return f"{int(a) + int(c)}/{int(b) + int(d)}"


class Notes:
    """Lines background threads want shown (printed by pytest's thread, between tests or while
    a fixture waits) and the summary's per-platform columns."""

    def __init__(self) -> None:
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.stats: dict[str, PlatformStats] = {}

    def say(self, line: str) -> None:
        self._lines.put(line)

    def of(self, platform: Platform | str) -> PlatformStats:
        return self.stats.setdefault(str(platform), PlatformStats())

    def flush(self, say: Terminal) -> None:
        while True:
            try:
                say(self._lines.get_nowait())
            except queue.Empty:
                return

    def merge(self, reported: Mapping[str, Mapping[str, str]]) -> None:
        """Fold an xdist worker's stats in (see merged_stat)."""
        for platform, fields in reported.items():
            mine = self.of(platform)
            for name, value in fields.items():
                if hasattr(mine, name):
                    setattr(mine, name, merged_stat(name, getattr(mine, name), value))


def merged_stat(name: str, current: str, reported: str) -> str:
    """One summary cell from two xdist workers' values: the first known wins, except that a build
    time beats "reused" (that worker built it) and "failed" beats anything (it must show)."""
    if not reported or reported == current:
        return current
    if not current or (name == "build" and (current == "reused" or reported == "failed")):
        return reported
    return current


def header_lines(session: MultiarchSession) -> list[str]:
    """One line per engine (the default first, then those --multiarch-engine names), then each
    platform's state: native, emulated (with the binfmt handler on a local engine), unavailable."""
    from pytest_multiarch.emulators import version_on
    from pytest_multiarch.preflight import describe_handler

    lines = []
    for engine in session.engines():
        routed = "" if engine is session.engine else f"{engine.name} "
        try:
            found = engine.capabilities()
        except MultiarchError as exc:
            lines.append(f"multiarch: {routed or 'Docker '}engine unavailable: {str(exc).split('. ')[0]}")
            continue
        if found.runtime == "podman":
            lines.append(
                f"multiarch: runtime {runtime_of(found)}, API at {engine.endpoint.describe()}, builds with "
                f"podman build ({found.buildx_version})"
            )
            continue
        where = "" if not engine.label or routed else f" at {engine.endpoint.describe()}"
        lines.append(
            f"multiarch: {'engine ' + routed if routed else 'engine '}{found.server_version} ({found.native}){where}, "
            f"buildx {found.buildx_version}, builder {found.builder_name} ({found.builder_driver})"
        )
    try:
        platforms = session.platforms()
    except MultiarchError as exc:  # a modify_platforms hook's mistake: collection reports it too
        return [*lines, f"multiarch: platforms: {exc}"]
    states = []
    for platform in platforms:
        engine = session.engine_for(platform)
        on = f", on {engine.name}" if engine is not session.engine else ""
        try:
            resolved = engine.resolve(platform)
        except PlatformUnavailable:
            states.append(f"{platform} (unavailable: no emulator{on})")
            continue
        except MultiarchError:
            states.append(f"{platform} (unavailable: engine does not answer{on})")
            continue
        if not resolved.emulated:
            states.append(f"{platform} (native{on})")
        else:
            local = engine.capabilities().local
            handler = describe_handler(platform) if local else None
            version = version_on(engine, platform)
            states.append(f"{platform} (emulated{': ' + handler if handler else ''}, {_qemu(version)}{on})")
    lines.append("multiarch: platforms: " + ", ".join(states))
    return lines


_OUTCOMES = {
    "passed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "error": "errors",
    "xfailed": "xfailed",  # the marker's xfail= per platform, or pytest's own
    "xpassed": "xpassed",
}


@dataclasses.dataclass
class _Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    xfailed: int = 0
    xpassed: int = 0


def summary_lines(
    session: MultiarchSession | None, stats: Mapping[str, Sequence[Any]], platform_of: Mapping[str, str]
) -> list[str]:
    """The summary table as aligned text lines (see summary_table)."""
    return aligned(summary_table(session, stats, platform_of))


def aligned(table: list[tuple[str, ...]]) -> list[str]:
    """Text lines of a table, its columns aligned."""
    if not table:
        return []
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]


def summary_markdown(table: list[tuple[str, ...]], title: str = "pytest-multiarch") -> str:
    """The summary table as GitHub-flavoured Markdown (a CI job's summary page)."""
    if not table:
        return ""
    header, *rows = table
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n"


def summary_table(
    session: MultiarchSession | None, stats: Mapping[str, Sequence[Any]], platform_of: Mapping[str, str]
) -> list[tuple[str, ...]]:
    """Header and one row per platform: outcomes, native/emulated, build time, image id, ready
    time (and engine, when a platform ran elsewhere than the local default); [] when none ran.

    ``session`` is None when this process did no multiarch work. On a pytest-xdist controller,
    which builds and runs nothing itself, the platform comes from the reports' ``platform``
    property and the build, image and ready columns from the workers (merge_worker_report).
    """
    rows = _outcome_counts(stats, platform_of)
    if not rows:
        return []
    header: tuple[str, ...] = (
        "platform",
        "passed",
        "failed",
        "skipped",
        "errors",
        "mode",
        "build",
        "image",
        "ready",
        "elf checked/foreign",
    )
    with_xfail = any(row.xfailed or row.xpassed for row in rows.values())
    if with_xfail:  # only then: most runs expect no failure
        header = (*header[:5], "xfailed", "xpassed", *header[5:])
    engines = {p: engine_of(session, p) for p in rows} if session is not None else {}
    with_engine = any(engines.values())
    if with_engine:
        header = (*header, "engine")
    table = [header]
    for platform in sorted(rows):
        row = rows[platform]
        known = session.notes.stats.get(platform) if session is not None else None
        engine_cell = (engines.get(platform) or "default",) if with_engine else ()
        table.append(
            (
                platform,
                str(row.passed),
                str(row.failed),
                str(row.skipped),
                str(row.errors),
                *((str(row.xfailed), str(row.xpassed)) if with_xfail else ()),
                emulation_of(session, platform) if session is not None else "-",
                (known.build if known else "") or "-",
                (known.image if known else "") or "-",
                (known.ready if known else "") or "-",
                (known.elf if known else "") or "-",
                *engine_cell,
            )
        )
    return table


def _outcome_counts(stats: Mapping[str, Sequence[Any]], platform_of: Mapping[str, str]) -> dict[str, _Counts]:
    """Each platform's outcomes, from pytest's reports by outcome (``stats``): a test counts
    once (a passed setup or teardown is not a pass); reports of no platform are left out."""
    rows: dict[str, _Counts] = {}
    for key, reports in stats.items():
        field = _OUTCOMES.get(key)
        if field is None:
            continue
        for rep in reports:
            properties = dict(getattr(rep, "user_properties", ()) or ())
            platform = platform_of.get(getattr(rep, "nodeid", "")) or properties.get("platform")
            if platform is None or (key == "passed" and getattr(rep, "when", "call") != "call"):
                continue
            row = rows.setdefault(str(platform), _Counts())
            setattr(row, field, getattr(row, field) + 1)
    return rows


def arch_warning_lines(session: MultiarchSession | None) -> list[str]:
    """The architecture check's warnings: foreign files that do not fail their platform."""
    if session is None:
        return []
    lines = []
    for platform, stats in sorted(session.notes.stats.items()):
        found = [line for line in stats.elf_warnings.split("\n") if line]
        if found:
            lines.append(
                f"multiarch: {platform}: {len(found)} file(s) built for another CPU, not on a command path "
                "(warning; --multiarch-arch-check all fails them, multiarch_arch_ignore silences them):"
            )
            lines += [f"  {line}" for line in found[:10]]
            if len(found) > 10:
                lines.append(f"  ... and {len(found) - 10} more")
    return lines


def _qemu(version: str) -> str:
    return version if version.startswith("QEMU") else f"QEMU {version}"


def emulator_lines(session: MultiarchSession | None, platforms: list[str]) -> list[str]:
    """Which QEMU ran each emulated platform of the summary ("unknown" where this machine cannot
    read it: a remote engine, a handler registered from inside a container)."""
    from pytest_multiarch.emulators import known_crash, version_on

    if session is None:
        return []
    found = []
    for text in platforms:
        try:
            platform = Platform.parse(text)
            engine = session.engine_for(platform)
            if engine.is_native(platform):
                continue
        except MultiarchError:
            continue
        version = version_on(engine, platform)
        known = known_crash(version)
        found.append(f"{text}: {_qemu(version)}" + (f" (known crash reports: {known})" if known else ""))
    return ["multiarch: emulators: " + "; ".join(found)] if found else []


def runtime_of(found: Capabilities) -> str:
    """``podman 4.3.1 (linux/amd64, rootless)``, ``docker 26.1.5 (linux/amd64)``."""
    name = found.server_version if found.runtime == "podman" else f"docker {found.server_version}"
    return f"{name} ({found.native}{', rootless' if found.rootless else ''})"


def runtime_lines(session: MultiarchSession | None) -> list[str]:
    """The summary's line naming podman, when it ran the tests (Docker's header says it)."""
    if session is None or session.settings.runtime != "podman":
        return []
    try:
        return [f"multiarch: runtime: {runtime_of(session.engine.capabilities())}"]
    except MultiarchError:
        return []


def emulation_of(session: MultiarchSession, platform_text: str) -> str:
    """ "native", "emulated" or "unavailable", for the summary."""
    try:
        resolved = session.resolve(Platform.parse(platform_text))
    except MultiarchError:
        return "unavailable"
    return "emulated" if resolved.emulated else "native"


def engine_of(session: MultiarchSession, platform_text: str) -> str:
    """The name of the engine that ran the platform, "" for the docker CLI's local default."""
    try:
        return session.engine_for(Platform.parse(platform_text)).label
    except MultiarchError:
        return ""
