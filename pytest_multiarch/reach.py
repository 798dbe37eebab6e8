"""Which files of the build context a Dockerfile can reach: the sources of its ``COPY`` and
``ADD`` (not ``--from`` another stage or image, not a URL) and of its ``RUN --mount=type=bind``
mounts (not ``from=``). Only those enter the build key, so that a test file or a junit.xml
written into the context does not rebuild an image that never copies it.

Whenever the answer is not certain, it is None, and the whole context counts (the safe side): a
``# syntax=`` or ``# escape=`` directive (another frontend, another grammar), a variable in a
source (``$VERSION``), a wildcard this module does not evaluate (a bracket expression, a
backslash), a heredoc, a flag of COPY or ADD it does not know, a bind mount of the whole
context, a source outside the context (``..``), or a Dockerfile it cannot read.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path

Reach = Callable[[str], bool]  # a context path (its folders included) → whether the build can read it

_KNOWN_FLAGS = {"--from", "--chown", "--chmod", "--link"}
_DIRECTIVE = re.compile(r"^#\s*(syntax|escape)\s*=", re.IGNORECASE)  # `# check=` changes no grammar


class Unsure(Exception):
    """The Dockerfile may reach files this module cannot name."""


def reach_of(dockerfile: Path) -> Reach | None:
    """A predicate over context paths, or None when the whole context must count."""
    try:
        sources = list(_sources(dockerfile.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, Unsure):
        return None
    if any(source == "" for source in sources):  # "." or "/": the whole context
        return None
    plain = {s for s in sources if not _is_glob(s)}
    globs = [s.split("/") for s in sources if _is_glob(s)]

    def reached(rel: str) -> bool:
        if any(rel == s or rel.startswith(s + "/") or s.startswith(rel + "/") for s in plain):
            return True  # the source, what is under it, and the folders above it
        parts = rel.split("/")
        return any(_glob_reaches(pattern, parts) for pattern in globs)

    return reached


def _glob_reaches(pattern: list[str], parts: list[str]) -> bool:
    """Docker matches a source pattern per path component (a ``*`` never crosses a ``/``);
    what matches is copied with everything under it, and the folders above it are walked."""
    for index, part in enumerate(parts):
        if index == len(pattern):
            return True  # under a matched path
        if not fnmatch.fnmatchcase(part, pattern[index]):
            return False
    return True  # the match itself, or a folder above one


def _is_glob(source: str) -> bool:
    return any(c in source for c in "*?")


def _instructions(text: str) -> Iterable[tuple[str, str]]:
    """(INSTRUCTION, its arguments) with continuation lines joined and comments dropped."""
    lines = text.splitlines()
    start = 0
    while start < len(lines) and lines[start].startswith("#"):  # parser directives come first
        if _DIRECTIVE.match(lines[start]):
            raise Unsure("a parser directive")
        start += 1
    current = ""
    for line in lines[start:]:
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and current):
            continue  # comments (also between continuation lines) and empty continuation lines
        if "<<" in stripped and re.search(r"<<-?[\"']?[A-Za-z_]", stripped):
            raise Unsure("a heredoc")
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            yield word.upper(), rest.strip()
        current = ""
    if current.strip():
        raise Unsure("a continuation at the end")


def _sources(text: str) -> Iterable[str]:
    """Every context path the Dockerfile reads, normalized ("" for the whole context)."""
    for instruction, rest in _instructions(text):
        if instruction in ("COPY", "ADD"):
            yield from _copy_sources(instruction, rest)
        elif instruction == "RUN":
            yield from _mount_sources(rest)
        elif instruction == "ONBUILD":
            continue  # runs in images built FROM this one, not here


def _copy_sources(instruction: str, rest: str) -> Iterable[str]:
    flags, arguments = _split_flags(rest)
    if any(name not in _KNOWN_FLAGS for name in flags):
        raise Unsure(f"a flag of {instruction}")
    if "--from" in flags:
        return  # another stage, an image or a named context
    if arguments.startswith("["):
        items = json.loads(arguments)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise Unsure("a JSON form")
    else:
        items = shlex.split(arguments, posix=False)
    for source in items[:-1]:
        if instruction == "ADD" and re.match(r"^[a-z][a-z0-9+.-]*://|^git@", source, re.IGNORECASE):
            continue  # a URL or a git repository: not the context
        yield _normalized(source)


def _mount_sources(rest: str) -> Iterable[str]:
    flags, _ = _split_flags(rest)
    for mount in flags.get("--mount", []):
        options = dict(item.partition("=")[::2] for item in mount.split(","))
        if options.get("type", "bind") != "bind" or "from" in options:
            continue  # cache, secret, ssh, tmpfs; or a bind of another stage or image
        source = options.get("source", options.get("src", ""))
        yield _normalized(source)


def _split_flags(rest: str) -> tuple[dict[str, list[str]], str]:
    """Leading ``--name=value`` flags (each name's values in order) and the rest of the line."""
    flags: dict[str, list[str]] = {}
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token.partition("=")
        flags.setdefault(name, []).append(value)
        rest = rest.strip()
    return flags, rest


def _normalized(source: str) -> str:
    """A source as a context path: no quotes, no leading ``/`` or ``./``, no trailing ``/``."""
    source = source.strip().strip('"').strip("'")
    if "$" in source or "\\" in source or "[" in source:
        raise Unsure("a variable, an escape or a bracket expression")
    parts = [p for p in source.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Unsure("a path outside the context")
    return "/".join(parts)
