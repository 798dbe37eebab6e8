"""Timeouts per platform: ``--multiarch-timeout "30, linux/riscv64=600"`` is a default for every
platform (×5 on an emulated one, as QEMU runs a process 3-10× slower) and, for a platform named,
its own value, used as given: riscv64 under QEMU can take an hour for what takes minutes natively,
and no single factor fits every emulated platform."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from pytest_multiarch.errors import UsageError
from pytest_multiarch.options import EMULATION_TIMEOUT_FACTOR
from pytest_multiarch.platforms import Platform

_SEPARATORS = re.compile(r"[\s,]+")


@dataclasses.dataclass(frozen=True)
class PlatformSeconds:
    """A default number of seconds and the platforms' own values."""

    default: float
    own: dict[Platform, float] = dataclasses.field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.default, tuple(sorted(self.own.items(), key=str))))

    def for_platform(self, platform: Platform) -> float:
        """The platform's own value as given, else the default (×5 when emulated)."""
        if platform in self.own:
            return self.own[platform]
        return self.default * (EMULATION_TIMEOUT_FACTOR if platform.emulated else 1.0)

    @classmethod
    def parse(cls, raw: Any, name: str, default: float) -> PlatformSeconds:
        """``"30"``, ``"30, linux/riscv64=600"``, ``"linux/arm64=90"`` (the default kept); a
        UsageError naming ``name`` and the entry otherwise."""
        if raw is None or not str(raw).strip():
            return cls(default)
        own: dict[Platform, float] = {}
        for item in (i for i in _SEPARATORS.split(str(raw).strip()) if i):
            if "=" in item:
                text, _, value = item.partition("=")
                try:
                    platform = Platform.parse(text)
                except UsageError as exc:
                    raise UsageError(f"{name}: {item!r}: {exc}") from None
                own[platform] = _seconds(value, name, item)
            else:
                default = _seconds(item, name, item)
        return cls(default, own)


def _seconds(text: str, name: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < math.inf:  # also refuses nan, with which no deadline ever passes
        raise UsageError(
            f"{name} {item!r} is not a positive finite number of seconds: give a default and PLATFORM=SECONDS "
            f'entries, e.g. "30, linux/riscv64=600".'
        )
    return value
