"""Report: the header pytest prints first and the per-platform summary table at the end."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_multiarch.errors import MultiarchError, PlatformUnavailable

if TYPE_CHECKING:
    from pytest_multiarch.session import MultiarchSession


def header_lines(session: MultiarchSession) -> list[str]:
    from pytest_multiarch.preflight import describe_handler

    try:
        engine = session.engine()
    except MultiarchError as exc:
        return [f"multiarch: Docker engine unavailable: {str(exc).split('. ')[0]}"]
    lines = [
        f"multiarch: engine {engine.server_version} ({engine.native}), buildx {engine.buildx_version}, "
        f"builder {engine.builder_name} ({engine.builder_driver})"
    ]
    states = []
    try:
        platforms = session.platforms()
    except MultiarchError as exc:  # a modify_platforms hook's mistake: collection reports it too
        return [*lines, f"multiarch: platforms: {exc}"]
    for platform in platforms:
        try:
            resolved = engine.resolve(platform)
        except PlatformUnavailable:
            states.append(f"{platform} (unavailable: no emulator)")
            continue
        if not resolved.emulated:
            states.append(f"{platform} (native)")
        else:
            handler = describe_handler(platform) if engine.local else None
            states.append(f"{platform} (emulated{': ' + handler if handler else ''})")
    lines.append("multiarch: platforms: " + ", ".join(states))
    return lines


_OUTCOMES = {"passed": "passed", "failed": "failed", "skipped": "skipped", "error": "errors"}


@dataclasses.dataclass
class _Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0


def summary_lines(
    session: MultiarchSession | None, stats: Mapping[str, Sequence[Any]], platform_of: Mapping[str, str]
) -> list[str]:
    """One row per platform: outcomes, native/emulated, build time, image id, ready time.

    ``session`` is None when this process did no multiarch work. On a pytest-xdist controller,
    which builds and runs nothing itself, the platform comes from the reports' ``platform``
    property and the build, image and ready columns from the workers (merge_worker_report).
    """
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
    if not rows:
        return []
    header = ("platform", "passed", "failed", "skipped", "errors", "mode", "build", "image", "ready")
    table = [header]
    for platform in sorted(rows):
        row = rows[platform]
        known = session.stats.get(platform) if session is not None else None
        table.append(
            (
                platform,
                str(row.passed),
                str(row.failed),
                str(row.skipped),
                str(row.errors),
                session.emulation_of(platform) if session is not None else "-",
                (known.build if known else "") or "-",
                (known.image if known else "") or "-",
                (known.ready if known else "") or "-",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
