"""Platform strings: parsing, Docker's normalization, and what ``uname -m`` prints for each."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from pytest_multiarch.errors import UsageError

# Docker's arch names and the aliases it accepts for them (containerd's platforms.Normalize).
_ARCH_ALIASES: dict[str, str] = {
    "amd64": "amd64",
    "x86_64": "amd64",
    "x86-64": "amd64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "arm": "arm",
    "armhf": "arm",
    "armel": "arm",
    "armv7l": "arm",
    "armv6l": "arm",
    "386": "386",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "x86": "386",
    "ppc64le": "ppc64le",
    "ppc64el": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64le",
    "loong64": "loong64",
}

# `uname -m` inside a container of that platform: the first entry is the canonical answer, the
# others are also correct (a 32-bit x86 container on a 64-bit kernel reports the kernel's
# x86_64 unless run under linux32; arm/v6 under qemu-arm reports armv7l; an arm/v7 container
# run natively on an arm64 host reports armv8l).
_MACHINES: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("amd64", None): ("x86_64",),
    ("arm64", None): ("aarch64",),
    ("arm", "v7"): ("armv7l", "armv8l"),
    ("arm", "v6"): ("armv6l", "armv7l"),
    ("arm", "v5"): ("armv5tel", "armv5tejl", "armv7l"),
    ("386", None): ("i686", "i386", "x86_64"),
    ("ppc64le", None): ("ppc64le",),
    ("s390x", None): ("s390x",),
    ("riscv64", None): ("riscv64",),
    ("mips64le", None): ("mips64",),
    ("loong64", None): ("loongarch64",),
}

# Name of the QEMU binfmt_misc handler (/proc/sys/fs/binfmt_misc/qemu-NAME) per Docker arch.
QEMU_NAMES: dict[str, str] = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "arm": "arm",
    "386": "i386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64el",
    "loong64": "loongarch64",
}

KNOWN_PLATFORMS = (
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
)

_SEPARATORS = re.compile(r"[\s,]+")


@dataclasses.dataclass(frozen=True)
class Platform:
    """One OS/architecture(/variant) target, normalized as Docker does.

    ``emulated`` is filled in by the preflight (it depends on the engine, not on the string) and
    is not part of equality, so ``Platform.parse("arm64") == engine_platform``.
    """

    os: str
    arch: str
    variant: str | None = None
    emulated: bool = dataclasses.field(default=False, compare=False)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)

    @property
    def machine(self) -> str:
        """What ``uname -m`` prints inside a container of this platform."""
        return self.machines[0]

    @property
    def machines(self) -> tuple[str, ...]:
        """Every ``uname -m`` answer that is correct for this platform (see ``_MACHINES``)."""
        return _MACHINES.get((self.arch, self.variant)) or _MACHINES.get((self.arch, None), (self.arch,))

    @property
    def slug(self) -> str:
        """A form usable in image tags and file names: ``linux-arm-v7``."""
        return str(self).replace("/", "-")

    @property
    def qemu_name(self) -> str | None:
        """Name of the binfmt_misc handler that emulates this arch (``qemu-<name>``)."""
        return QEMU_NAMES.get(self.arch)

    def with_emulated(self, emulated: bool) -> Platform:
        """A copy with ``emulated`` set (the preflight's verdict for this engine)."""
        return dataclasses.replace(self, emulated=emulated)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse and normalize a platform string: ``arm64`` → ``linux/arm64``.

        Raises UsageError naming the string when it is not a platform Docker knows.
        """
        raw = text.strip()
        parts = raw.lower().split("/")
        if not raw or len(parts) > 3 or any(not p for p in parts):
            raise UsageError(_unknown(raw))
        if len(parts) == 1:
            os_name, arch_name, variant = "linux", parts[0], None
        elif len(parts) == 2:
            if parts[0] in _ARCH_ALIASES and parts[0] != "linux":
                raise UsageError(_unknown(raw))  # "arm64/v8" without an OS
            os_name, arch_name, variant = parts[0], parts[1], None
        else:
            os_name, arch_name, variant = parts
        if os_name != "linux":
            raise UsageError(_unknown(raw) + " pytest-multiarch runs Linux containers only.")
        arch = _ARCH_ALIASES.get(arch_name)
        if arch is None:
            raise UsageError(_unknown(raw))
        variant = _normalize_variant(arch, arch_name, variant, raw)
        return cls(os_name, arch, variant)


def _normalize_variant(arch: str, arch_name: str, variant: str | None, raw: str) -> str | None:
    if arch == "arm64":
        if variant not in (None, "v8"):
            raise UsageError(_unknown(raw))
        return None  # linux/arm64/v8 is linux/arm64
    if arch == "arm":
        if variant is None:
            return "v6" if arch_name in ("armel", "armv6l") else "v7"  # linux/arm means linux/arm/v7
        if variant in ("v5", "v6", "v7"):
            return variant
        if variant == "v8":
            raise UsageError(_unknown(raw) + " (linux/arm/v8 is linux/arm64)")
        raise UsageError(_unknown(raw))
    if arch == "amd64" and variant in ("v1", None):
        return None
    if variant is not None and not (arch == "amd64" and variant in ("v2", "v3", "v4")):
        raise UsageError(_unknown(raw))
    return variant


def _unknown(raw: str) -> str:
    return (
        f"unknown platform {raw!r}: use os/arch[/variant] as Docker does, for example {', '.join(KNOWN_PLATFORMS[:3])}."
    )


def split_list(text: str | Platform | Iterable[str | Platform]) -> list[str]:
    """Split a list given as commas, spaces or newlines (or several such strings, or Platforms:
    a marker may be written either way)."""
    example = "give platform names, e.g. ['linux/amd64', 'linux/arm64'] or 'linux/amd64,linux/arm64'"
    if isinstance(text, (str, Platform)):
        chunks: list[object] = [text]
    elif isinstance(text, Iterable):
        chunks = list(text)
    else:
        raise UsageError(f"expected a list of platforms, got {type(text).__name__} {text!r}: {example}.")
    items: list[str] = []
    for chunk in chunks:
        if isinstance(chunk, Platform):
            chunk = str(chunk)
        if not isinstance(chunk, str):
            raise UsageError(f"a platform must be a string, got {type(chunk).__name__} {chunk!r}: {example}.")
        items.extend(item for item in _SEPARATORS.split(chunk) if item)
    return items


def parse_platforms(text: str | Platform | Iterable[str | Platform]) -> list[Platform]:
    """Parse a platform list, normalizing each entry and dropping duplicates (order kept)."""
    result: list[Platform] = []
    for item in split_list(text):
        platform = Platform.parse(item)
        if platform not in result:
            result.append(platform)
    return result


NATIVE = "native"  # a platform list's name for each engine's own platform


def parse_platforms_or_native(text: str | Platform | Iterable[str | Platform]) -> tuple[list[Platform], bool]:
    """``parse_platforms``, where ``native`` may stand among them: the platforms named, and
    whether ``native`` did (its platforms are known only once the engines answer)."""
    items = split_list(text)
    native = any(item.strip().lower() == NATIVE for item in items)
    return parse_platforms([i for i in items if i.strip().lower() != NATIVE]), native


def host_platform() -> Platform:
    """This machine's platform, for when no engine answers (linux/amd64 if unknown)."""
    import platform as host

    try:
        return Platform.parse(host.machine())
    except UsageError:
        return Platform("linux", "amd64")
