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

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_multiarch.errors import MultiarchError, UsageError
from pytest_multiarch.platforms import Platform, parse_platforms_or_native

if TYPE_CHECKING:
    from pytest_multiarch.session import MultiarchSession

PLATFORM_FIXTURE = "multiarch_platform"
_KEYWORDS = ("platforms", "xfail", "skip", "strict")
DESCRIPTION = (
    "multiarch(platforms=[...], xfail={platform: reason}, skip={platform: reason}, strict=None): run this test only "
    "on these of the configured platforms ('native': each engine's own), and expect it to fail, or skip it, on some."
)


@dataclasses.dataclass(frozen=True)
class Rules:
    """What a test's ``multiarch`` markers say: the configured platforms it runs on, and the
    pytest marks each of them gets."""

    kept: list[Platform]
    wanted: Any  # the closest platforms= (None: every configured platform)
    xfail: dict[Platform, str]
    skip: dict[Platform, str]
    strict: bool | None

    def none_kept(self, platforms: list[Platform]) -> str | None:
        """The skip reason when platforms= keeps none of the configured platforms."""
        if self.kept or self.wanted is None:
            return None
        return f"none of the configured platforms ({', '.join(map(str, platforms))}) is in platforms={self.wanted!r}"

    def marks(self, platform: Platform) -> list[pytest.MarkDecorator]:
        marks: list[pytest.MarkDecorator] = []
        if platform in self.skip:
            marks.append(pytest.mark.skip(reason=f"{platform}: {self.skip[platform]}"))
        if platform in self.xfail:
            options: dict[str, Any] = {"reason": f"{platform}: {self.xfail[platform]}"}
            if self.strict is not None:
                options["strict"] = bool(self.strict)
            marks.append(pytest.mark.xfail(**options))
        return marks


def rules(
    markers: list[pytest.Mark], platforms: list[Platform], known: Iterable[Platform], native: Callable[[Platform], bool]
) -> Rules:
    """The rules of ``markers`` (the closest first); UsageError for a marker that is wrong."""
    known = list(known)
    return Rules(
        kept=_kept(markers, platforms, native),
        wanted=next((_wanted(m) for m in markers if _wanted(m) is not None), None),
        xfail=_per_platform(markers, "xfail", known),
        skip=_per_platform(markers, "skip", known),
        strict=next((m.kwargs["strict"] for m in markers if "strict" in m.kwargs), None),
    )


def parametrize(
    metafunc: pytest.Metafunc, platforms: list[Platform], known: Iterable[Platform], native: Callable[[Platform], bool]
) -> None:
    """Parametrize ``metafunc`` by ``platforms`` as its markers say. ``known``: every platform the
    configuration names (ini and command line), which ``xfail=`` and ``skip=`` may name;
    ``native``: whether a platform runs natively on its engine."""
    markers = list(metafunc.definition.iter_markers("multiarch"))  # the closest first
    try:
        found = rules(markers, platforms, known, native)
    except UsageError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # outside the except block: pytest would show the UsageError as its context
        pytest.fail(f"@pytest.mark.multiarch on {metafunc.definition.nodeid}: {problem}", pytrace=False)
    reason = found.none_kept(platforms)
    if reason is not None:
        no_platform = pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-platform")
        metafunc.parametrize(PLATFORM_FIXTURE, [no_platform], indirect=True, scope="session")
        return
    params = [pytest.param(p, marks=found.marks(p), id=str(p)) for p in found.kept]
    metafunc.parametrize(PLATFORM_FIXTURE, params, indirect=True, scope="session")


def apply_to_items(
    items: list[pytest.Item], platforms: list[Platform], known: Iterable[Platform], native: Callable[[Platform], bool]
) -> list[pytest.Item]:
    """The same rules for items made for one platform each (structure tests): each gets its
    platform's marks; those of a platform that platforms= leaves out are returned, to deselect
    (as a parametrized test has no item for them); when it keeps none, they skip with the reason."""
    dropped = []
    for item in items:
        markers = list(item.iter_markers("multiarch"))
        if not markers:
            continue
        platform = item.multiarch_platform  # type: ignore[attr-defined]
        try:
            found = rules(markers, platforms, known, native)
        except UsageError as exc:
            raise UsageError(f"@pytest.mark.multiarch on {item.nodeid}: {exc}") from None
        reason = found.none_kept(platforms)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        elif platform not in found.kept:
            dropped.append(item)
        for mark in found.marks(platform):
            item.add_marker(mark)
    return dropped


def context(
    session: MultiarchSession, named: Iterable[Platform]
) -> tuple[list[Platform], frozenset[Platform], Callable[[Platform], bool]]:
    """The configured platforms, every platform the configuration names, and whether a platform
    runs natively on its engine: what the rules are decided with. UsageError from the session."""
    platforms = session.platforms()

    def native(platform: Platform) -> bool:
        try:
            return session.engine_for(platform).is_native(platform)
        except MultiarchError:
            return False

    return platforms, frozenset([*platforms, *named]), native


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
