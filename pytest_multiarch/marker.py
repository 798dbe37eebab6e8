"""``@pytest.mark.multiarch`` on a test, class or module: which of the configured platforms a test
runs on, and what is expected of it per platform.

    @pytest.mark.multiarch(platforms=["linux/arm64"])          # only these (or "native")
    @pytest.mark.multiarch(xfail={"linux/s390x": "reason"}, skip={"linux/arm/v7": "reason"}, strict=True)

``platforms=`` comes from the closest marker that has it; ``xfail=`` and ``skip=`` add up over the
test, its class and its module, the closest winning for one platform; ``strict=`` is pytest's
(default: the ``xfail_strict`` ini). Each becomes a pytest mark on that platform's parameter, so
pytest reports the outcomes (xfailed, xpassed, skipped) as its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from pytest_multiarch.errors import UsageError
from pytest_multiarch.platforms import Platform, parse_platforms_or_native

PLATFORM_FIXTURE = "multiarch_platform"
_KEYWORDS = ("platforms", "xfail", "skip", "strict")
DESCRIPTION = (
    "multiarch(platforms=[...], xfail={platform: reason}, skip={platform: reason}, strict=None): run this test only "
    "on these of the configured platforms ('native': each engine's own), and expect it to fail, or skip it, on some."
)


def parametrize(
    metafunc: pytest.Metafunc, platforms: list[Platform], known: Iterable[Platform], native: Callable[[Platform], bool]
) -> None:
    """Parametrize ``metafunc`` by ``platforms`` as its markers say. ``known``: every platform the
    configuration names (ini and command line), which ``xfail=`` and ``skip=`` may name;
    ``native``: whether a platform runs natively on its engine."""
    markers = list(metafunc.definition.iter_markers("multiarch"))  # the closest first
    where = f"@pytest.mark.multiarch on {metafunc.definition.nodeid}"
    try:
        kept = _kept(markers, platforms, native)
        xfail = _per_platform(markers, "xfail", known)
        skip = _per_platform(markers, "skip", known)
    except UsageError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # outside the except block: pytest would show the UsageError as its context
        pytest.fail(f"{where}: {problem}", pytrace=False)
    wanted = next((_wanted(m) for m in markers if _wanted(m) is not None), None)
    if not kept and wanted is not None:
        reason = f"none of the configured platforms ({', '.join(map(str, platforms))}) is in platforms={wanted!r}"
        no_platform = pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-platform")
        metafunc.parametrize(PLATFORM_FIXTURE, [no_platform], indirect=True, scope="session")
        return
    strict = next((m.kwargs["strict"] for m in markers if "strict" in m.kwargs), None)
    params = []
    for platform in kept:
        marks: list[pytest.MarkDecorator] = []
        if platform in skip:
            marks.append(pytest.mark.skip(reason=f"{platform}: {skip[platform]}"))
        if platform in xfail:
            options: dict[str, Any] = {"reason": f"{platform}: {xfail[platform]}"}
            if strict is not None:
                options["strict"] = bool(strict)
            marks.append(pytest.mark.xfail(**options))
        params.append(pytest.param(platform, marks=marks, id=str(platform)))
    metafunc.parametrize(PLATFORM_FIXTURE, params, indirect=True, scope="session")


def _wanted(marker: pytest.Mark) -> Any:
    return marker.kwargs.get("platforms", marker.args[0] if marker.args else None)


def _kept(markers: list[pytest.Mark], platforms: list[Platform], native: Callable[[Platform], bool]) -> list[Platform]:
    """The configured platforms the closest ``platforms=`` keeps (all without one)."""
    for marker in markers:
        unknown = sorted(set(marker.kwargs) - set(_KEYWORDS))
        if unknown or len(marker.args) > 1 or (not marker.args and not marker.kwargs):
            raise UsageError(
                f"unknown keyword {', '.join(unknown)}; "
                * bool(unknown)
                + "give platforms=[...], xfail={platform: reason}, skip={platform: reason} or strict=, "
                "e.g. @pytest.mark.multiarch(platforms=['linux/arm64'])."
            )
    wanted = next((_wanted(m) for m in markers if _wanted(m) is not None), None)
    if wanted is None:
        return platforms
    allowed, with_native = parse_platforms_or_native(wanted)
    return [p for p in platforms if p in allowed or (with_native and native(p))]


def _per_platform(markers: list[pytest.Mark], name: str, known: Iterable[Platform]) -> dict[Platform, str]:
    """``xfail=`` or ``skip=`` of all markers, the closest winning; a platform the
    configuration does not name is an error (a typo would otherwise do nothing)."""
    found: dict[Platform, str] = {}
    for marker in reversed(markers):
        value = marker.kwargs.get(name)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise UsageError(f"{name}= takes a dict of platform to reason, e.g. {name}={{'linux/s390x': 'why'}}.")
        for text, reason in value.items():
            platforms, _ = parse_platforms_or_native(text)
            for platform in platforms:
                found[platform] = str(reason)
    unknown = [str(p) for p in found if p not in set(known)]
    if unknown:
        raise UsageError(
            f"{name}= names {', '.join(unknown)}, which the configuration does not name "
            f"({', '.join(map(str, known)) or 'no platform'}): a typo, or add it to multiarch_platforms."
        )
    return found
