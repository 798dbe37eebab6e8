"""Which QEMU emulates a platform here, and what its crash looks like.

The version comes from the binfmt_misc handler's interpreter (``/proc/sys/fs/binfmt_misc/qemu-*``),
asked for ``--version``: the host's emulator, never the image. It is "unknown" where it cannot be
read: a remote engine's kernel, or a handler registered from inside a container
(``tonistiigi/binfmt``), whose interpreter path exists only there.

QEMU has versions with known crash reports (``KNOWN_CRASHES``, sources in docs/emulation.md); a
container, one-shot run or exec that dies with QEMU's signature is named as such
(``EmulatorCrash``) rather than reported as the application's failure.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_multiarch.errors import EmulatorCrash
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from pytest_multiarch.engine import Engine

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
UNKNOWN = "unknown"
# Exit codes of a process killed by SIGSEGV (128 + 11) or SIGABRT (128 + 6), as the shell and
# Docker report them.
CRASH_EXIT_CODES = frozenset({139, 134})
CRASH_TEXTS = ("qemu: uncaught target signal", "QEMU internal SIGSEGV", "QEMU internal SIGABRT")
# Version prefixes with crash reports of their own, and where they are reported.
KNOWN_CRASHES: dict[str, str] = {
    "9.2.": "QEMU 9.2 segfaults running some programs (tonistiigi/binfmt#240, docker/setup-qemu-action#201; "
    "projects pinned an older QEMU: pganalyze/collector#681, srl-labs/containerlab#2470)",
}


def interpreter(platform: Platform, binfmt_dir: Path = BINFMT_DIR) -> str | None:
    """The interpreter path of the platform's QEMU handler, None when there is none."""
    if not platform.qemu_name:
        return None
    try:
        text = (binfmt_dir / f"qemu-{platform.qemu_name}").read_text()
    except OSError:
        return None
    return next((ln.split(None, 1)[1].strip() for ln in text.splitlines() if ln.startswith("interpreter ")), None)


def qemu_version(platform: Platform, binfmt_dir: Path = BINFMT_DIR) -> str:
    """``QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)`` for the platform's handler here, or
    "unknown"."""
    path = interpreter(platform, binfmt_dir)
    return _version_of(os.path.realpath(path)) if path else UNKNOWN


@functools.lru_cache(maxsize=32)
def _version_of(path: str) -> str:
    """What the emulator binary says of itself. Debian's ``*-binfmt-P`` wrappers refuse to run
    outside binfmt_misc, so the symlink's target is asked."""
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return UNKNOWN
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    found = re.search(r"version (\S+)(?: \(([^)]*)\))?", done.stdout)
    if found is None:
        return UNKNOWN
    return f"QEMU {found.group(1)}" + (f" ({found.group(2)})" if found.group(2) else "")


def known_crash(version: str) -> str | None:
    """The crash reports of ``version`` (``QEMU 9.2.0 (...)``), when it has some."""
    number = version.removeprefix("QEMU ").split(" ", 1)[0]
    return next((reports for prefix, reports in KNOWN_CRASHES.items() if number.startswith(prefix)), None)


def crashed(exit_code: int | None, output: str) -> bool:
    """QEMU's signature: killed by SIGSEGV or SIGABRT with QEMU's own report in the output."""
    return exit_code in CRASH_EXIT_CODES and any(text in output for text in CRASH_TEXTS)


def crash_message(platform: Platform, what: str, exit_code: int | None, output: str, version: str) -> str:
    """The message of an EmulatorCrash: what died, which QEMU, and the remedies."""
    lines = (ln.strip().removeprefix("| ") for ln in output.splitlines())  # also a log tail's "  | line"
    report = next((ln for ln in lines if any(t in ln for t in CRASH_TEXTS)), "")
    known = known_crash(version)
    return (
        f"{what} died under {version if version != UNKNOWN else 'QEMU (version unknown)'} with exit code "
        f"{exit_code} and QEMU's crash report: {report!r}. "
        f"This is how the emulator crashing looks, and also how a program's own crash under QEMU looks; "
        f"it says nothing yet about {platform} hardware."
        + (f" This QEMU version has known crash reports: {known}." if known else "")
        + f" To tell which: run {platform} on a native engine (--multiarch-engine {platform}=ssh://HOST, or a "
        f"native CI runner), or with another QEMU version (e.g. `docker run --privileged --rm "
        f"tonistiigi/binfmt:qemu-v8.1.5 --install {platform.arch}`)."
    )


def version_on(engine: Engine, platform: Platform) -> str:
    """The QEMU version that emulates ``platform`` on ``engine``: readable only where the
    engine shares this machine's kernel (its binfmt_misc handlers)."""
    try:
        local = engine.capabilities().local
    except Exception:
        local = False
    return qemu_version(platform) if local else UNKNOWN


def crash_error(
    engine: Engine, platform: Platform, what: str, exit_code: int | None, output: str
) -> EmulatorCrash | None:
    """An EmulatorCrash when ``what`` (a container, a run, a command) of an emulated platform
    died with QEMU's signature; None otherwise."""
    if not crashed(exit_code, output):
        return None
    try:
        emulated = not engine.is_native(platform)
    except Exception:
        emulated = platform.emulated
    if not emulated:
        return None
    return EmulatorCrash(crash_message(platform, what, exit_code, output, version_on(engine, platform)))
