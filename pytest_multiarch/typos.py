"""Typos in the plugin's settings: an unknown ``multiarch_*`` ini key or ``--multiarch-*``
option is a usage error naming the closest known one, instead of pytest's generic warning (a
mistyped ``multiarch_platfroms`` would otherwise drop a platform and leave the run green)."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence

import pytest

PREFIX = "multiarch_"
FLAG_PREFIXES = ("--multiarch-", "--no-multiarch-")


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely meant (difflib), or None when none is close."""
    found = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_keys_message(unknown: Iterable[str], known: Iterable[str], where: str) -> str | None:
    """One line per unknown ``multiarch_*`` key of ``where`` (the ini file), or None."""
    known = sorted(set(known))
    lines = []
    for key in sorted(k for k in unknown if k.startswith(PREFIX)):
        guess = closest(key, known)
        hint = f"did you mean {guess}?" if guess else "`pytest --help` lists the multiarch_* keys"
        lines.append(f"unknown ini key {key} in {where}: {hint}")
    return "\n".join(lines) or None


def check_ini_keys(config: pytest.Config) -> None:
    """UsageError for ``multiarch_*`` keys of the ini file that no plugin registered. pytest's
    own check of unknown keys (a warning, after collection) has no public API: where its
    internals differ, this check is skipped."""
    if getattr(config.option, "help", False):
        return  # `pytest --help` is where the right key is looked up
    try:
        unknown = config._get_unknown_ini_keys()
        known = [k for k in config._parser._inidict if k.startswith(PREFIX)]
    except AttributeError:  # pragma: no cover - another pytest: its own warning remains
        return
    message = unknown_keys_message(unknown, known, str(config.inipath or "the ini file"))
    if message:
        raise pytest.UsageError(f"pytest-multiarch: {message}")


def known_flags(parser: pytest.Parser) -> list[str]:
    """The options of the plugin's group, with the ``--no-`` form of on/off ones."""
    flags: list[str] = []
    for option in parser.getgroup("multiarch").options:
        for name in option.names():
            if name.startswith("--"):
                flags.append(name)
                if option.attrs().get("action") is argparse.BooleanOptionalAction:
                    flags.append("--no-" + name[2:])
    return flags


def unknown_options_message(unknown: Sequence[str], known: Iterable[str]) -> str | None:
    """One line per unrecognized ``--multiarch-*`` option, naming the closest known one."""
    lines = []
    for arg in unknown:
        flag = arg.split("=", 1)[0]
        if not flag.startswith(FLAG_PREFIXES):
            continue
        guess = closest(flag, known)
        hint = f"did you mean {guess}?" if guess else "`pytest --help` lists the --multiarch-* options"
        lines.append(f"unknown option {flag}: {hint}")
    return "\n".join(lines) or None


def check_options(parser: pytest.Parser, args: Sequence[str]) -> None:
    """UsageError for a ``--multiarch-*`` option argparse does not know (before pytest's own
    "unrecognized arguments", which suggests nothing)."""
    try:
        _, unknown = parser.parse_known_and_unknown_args(list(args))
    except pytest.UsageError:
        return  # another problem of the command line: pytest reports it in its own words
    message = unknown_options_message(unknown, known_flags(parser))
    if message:
        raise pytest.UsageError(f"pytest-multiarch: {message}")
