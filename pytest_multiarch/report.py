"""Report: the header pytest prints first and the per-platform summary table at the end."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_multiarch.errors import MultiarchError, PlatformUnavailable
from pytest_multiarch.preflight import describe_handler
from pytest_multiarch.session import MultiarchSession, PlatformStats


def header_lines(session: MultiarchSession) -> list[str]:
    try:
        engine = session.engine()
    except MultiarchError as exc:
        return [f"multiarch: Docker engine unavailable: {str(exc).split('. ')[0]}"]
    lines = [
        f"multiarch: engine {engine.server_version} ({engine.native}), buildx {engine.buildx_version}, "
        f"builder {engine.builder_name} ({engine.builder_driver})"
    ]
    states = []
    for platform in session.platforms():
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


def summary_lines(
    session: MultiarchSession,
    stats: Mapping[str, Sequence[Any]],
    platform_of: Mapping[str, str],
    ids_from_workers: bool = False,
) -> list[str]:
    """One row per platform: outcomes, native/emulated, build time, image id, ready time."""
    configured = {str(p) for p in session.platforms()} if ids_from_workers else set()
    rows: dict[str, PlatformStats] = {}
    for key, reports in stats.items():
        field = _OUTCOMES.get(key)
        if field is None:
            continue
        for rep in reports:
            nodeid = getattr(rep, "nodeid", "")
            # Under pytest-xdist the controller collects nothing: read the platform from the id.
            platform = platform_of.get(nodeid)
            if platform is None and ids_from_workers:
                platform = _platform_from_id(nodeid, configured)
            if platform is None or (key == "passed" and getattr(rep, "when", "call") != "call"):
                continue
            row = rows.setdefault(platform, PlatformStats())
            setattr(row, field, getattr(row, field) + 1)
    if not rows:
        return []
    header = ("platform", "passed", "failed", "skipped", "errors", "mode", "build", "image", "ready")
    table = [header]
    for platform in sorted(rows):
        row = rows[platform]
        known = session.stats.get(platform, PlatformStats())
        mode = session.emulation_of(platform)
        table.append(
            (
                platform,
                str(row.passed),
                str(row.failed),
                str(row.skipped),
                str(row.errors),
                mode,
                known.build or "-",
                known.image or "-",
                known.ready or "-",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]


def _platform_from_id(nodeid: str, configured: set[str]) -> str | None:
    """``test_x[linux/arm64]`` → ``linux/arm64`` (the id pytest-multiarch gives)."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    param = nodeid[nodeid.rindex("[") + 1 : -1]
    return next((part for part in param.split("-") if part in configured), None)
