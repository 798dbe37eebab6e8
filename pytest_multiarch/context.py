"""The build context's digest: the files .dockerignore lets through and the Dockerfile can reach
(reach.py: its COPY, ADD and bind-mount sources; all of them when that is not certain), by name,
exec bit, symlink target and content, computed once per session, context and Dockerfile,
re-reading only what changed.

A per-context index under the cache directory keeps each file's digest with its size, mtime
and ctime (nanoseconds) and inode, as git's index does; a file whose stat is unchanged is not
read again. The racy case is guarded as git guards it: a file modified within ``RACY_NS`` of
the index's own writing is hashed again next time, since a later write in the same clock tick
would leave its stat unchanged. An index that cannot be read, or is of another version or
context, is ignored and rewritten, never trusted.

Which files count follows Docker's .dockerignore semantics through docker-py's PatternMatcher
(``**``, ``!`` exceptions, the Dockerfile's own ``<Dockerfile>.dockerignore``, the Dockerfile
always sent), walked with ``os.scandir``: one ``lstat`` per entry, excluded folders pruned
unless an exception pattern may re-include something below them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

from docker.utils.build import PatternMatcher, normalize_slashes

from pytest_multiarch.config import ImageSpec
from pytest_multiarch.reach import reach_of
from pytest_multiarch.secrets import keyed_hasher

_NOT_IN_KEY = ("__pycache__", ".pytest_cache", ".git")
REACH_KEY = "\x00reach"  # in a manifest: "reached" (the Dockerfile's sources only) or "all"; no path has a NUL
_SCHEME = 2  # 2: content digests keyed
RACY_NS = 50_000_000  # 50 ms: more than the kernel's coarse clock tick on any common setup


def ignore_patterns(spec: ImageSpec) -> list[str]:
    """The .dockerignore patterns: the Dockerfile's own ``<Dockerfile>.dockerignore`` wins."""
    ignore = Path(f"{spec.dockerfile}.dockerignore")
    if not ignore.is_file():
        ignore = spec.context / ".dockerignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_entries(spec: ImageSpec) -> dict[str, os.stat_result]:
    """Relative path → lstat of every file, folder and link of the context that buildx sends
    (and that test runs do not write: __pycache__, .pytest_cache, .git)."""
    patterns = ignore_patterns(spec)
    try:
        dockerfile = str(spec.dockerfile.relative_to(spec.context))
    except ValueError:
        dockerfile = "Dockerfile"
    matcher = _Matcher(PatternMatcher([*patterns, f"!{dockerfile}"]))
    exceptions = [p.cleaned_pattern for p in matcher.patterns if p.exclusion]
    found: dict[str, os.stat_result] = {}
    root = str(spec.context)

    def walk(folder: str, prefix: str, parents: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        rules = matcher.rules(parents) if patterns else (False, [])
        for entry in entries:
            rel = prefix + entry.name
            if entry.name in _NOT_IN_KEY or rel.endswith(".pyc"):
                continue
            excluded = matcher.matches(rel, rules)
            info = entry.stat(follow_symlinks=False)
            if not excluded:
                found[rel] = info
            if stat.S_ISDIR(info.st_mode):
                if excluded and not any(p.startswith(normalize_slashes(rel)) for p in exceptions):
                    continue
                walk(entry.path, rel + "/", (*parents, entry.name))

    walk(root, "", ())
    return found


class _Matcher:
    """docker-py's PatternMatcher.matches, with its semantics (the last matching pattern wins; a
    pattern matches a path or one of its parent folders) but decided once per folder where it
    can be: a parent folder's match is the same for every entry of the folder, and a pattern
    without ``**`` or a bracket expression is not asked of a path with another number of
    components (its ``*`` and ``?`` never match a ``/``). In a folder where no pattern is left
    to ask, every entry gets the folder's answer without a pattern being run."""

    def __init__(self, matcher: PatternMatcher) -> None:
        self.patterns = matcher.patterns
        self._prefixes: dict[tuple[int, str], bool] = {}

    def rules(self, parents: tuple[str, ...]) -> tuple[bool | None, list[tuple[Any, bool, bool]]]:
        """For the entries of the folder ``parents``: (their answer when it is the same for all,
        else None; per pattern in order: the pattern, whether to ask it of each entry, whether a
        parent folder already matches it)."""
        depth = len(parents) + 1
        rules = []
        constant: bool | None = False
        for number, pattern in enumerate(self.patterns):
            size = len(pattern.dirs)
            by_parent = False
            if parents and size <= len(parents):
                prefix = "/".join(parents[:size])
                known = self._prefixes.get((number, prefix))
                if known is None:
                    known = self._prefixes[(number, prefix)] = bool(pattern.match(prefix))
                by_parent = known
            # A bracket expression may match a "/" (or hold one): such a pattern is always asked.
            anywhere = "**" in pattern.cleaned_pattern or "[" in pattern.cleaned_pattern
            ask = not by_parent and (anywhere or size == depth)
            if ask:
                constant = None
            elif by_parent and constant is not None:
                constant = not pattern.exclusion
            rules.append((pattern, ask, by_parent))
        return constant, rules

    @staticmethod
    def matches(rel: str, rules: tuple[bool | None, list[tuple[Any, bool, bool]]]) -> bool:
        constant, patterns = rules
        if constant is not None:
            return constant
        matched = False
        for pattern, ask, by_parent in patterns:
            if by_parent or (ask and pattern.match(rel)):
                matched = not pattern.exclusion
        return matched


def context_digest(spec: ImageSpec, index_dir: Path | None) -> str:
    """SHA-256 over ``context_manifest``: what the build key holds of the context."""
    return manifest_digest(context_manifest(spec, index_dir))


def manifest_digest(manifest: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for rel, entry in sorted(manifest.items()):
        digest.update(b"\0" + rel.encode() + b"\0" + entry.encode())
    return digest.hexdigest()


def context_manifest(spec: ImageSpec, index_dir: Path | None) -> dict[str, str]:
    """The entries the Dockerfile can reach (reach.py; every entry when that is not certain, or
    when a reached entry is a symlink, whose target may be anywhere), each as its kind and exec
    bit, a symlink's target, a file's content digest (from the index when its stat is
    unchanged). The key ``REACH_KEY`` says which. Content digests are keyed
    (secrets.keyed_hasher, the user's key): a context may hold a secret (a .env file), and
    neither the index on disk nor the build key in an image's label may confirm a guess."""
    keyed = keyed_hasher()
    whole = entries = context_entries(spec)
    reached = reach_of(spec.dockerfile)
    if reached is not None:
        some = {rel: info for rel, info in whole.items() if reached(rel)}
        if not any(stat.S_ISLNK(info.st_mode) for info in some.values()):
            entries = some
    index_path = _index_path(spec, index_dir)
    known = _read_index(index_path, spec) if index_path else {}
    started_ns = time.time_ns()
    fresh: dict[str, list[int | str]] = {}
    manifest = {REACH_KEY: "all" if entries is whole else "reached"}
    for rel in sorted(entries):
        info = entries[rel]
        if stat.S_ISLNK(info.st_mode):
            manifest[rel] = "L" + os.readlink(spec.context / rel)
        elif stat.S_ISREG(info.st_mode):
            signature = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_mode]
            entry = known.get(rel)
            unchanged = entry is not None and entry[:5] == signature
            content = str(entry[5]) if unchanged and entry is not None else _hash_file(spec.context / rel, keyed.copy())
            fresh[rel] = [*signature, content]
            manifest[rel] = ("X" if info.st_mode & 0o111 else "F") + content
        else:
            manifest[rel] = "D"
    # Digests of files this Dockerfile does not reach stay for the context's other Dockerfiles.
    index = {**{rel: e for rel, e in known.items() if rel in whole and rel not in fresh}, **fresh}
    if index_path is not None and index != known:
        _write_index(index_path, spec, index, started_ns)
    return manifest


def _hash_file(path: Path, digest: hmac.HMAC) -> str:
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _index_path(spec: ImageSpec, index_dir: Path | None) -> Path | None:
    if index_dir is None:
        return None
    name = hashlib.sha256(str(spec.context.resolve()).encode()).hexdigest()[:24]
    return index_dir / f"{name}.json"


def _read_index(path: Path, spec: ImageSpec) -> dict[str, list[int | str]]:
    """The index's entries that can be trusted: none when it is unreadable, of another version
    or context; not those written racily (modified too close to the index's own writing)."""
    try:
        data = json.loads(path.read_text())
        if data.get("scheme") != _SCHEME or data.get("context") != str(spec.context.resolve()):
            return {}
        written = int(data["written_ns"])
        entries = data["entries"]
        if not isinstance(entries, dict):
            return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    trusted: dict[str, list[int | str]] = {}
    for rel, entry in entries.items():
        if isinstance(entry, list) and len(entry) == 6 and isinstance(entry[1], int) and entry[1] < written - RACY_NS:
            trusted[rel] = entry
    return trusted


def _write_index(path: Path, spec: ImageSpec, entries: dict[str, list[int | str]], started_ns: int) -> None:
    """Atomically; ``started_ns`` (before any file was looked at) is when it counts as written."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        context = str(spec.context.resolve())
        record = {"scheme": _SCHEME, "context": context, "written_ns": started_ns, "entries": entries}
        partial.write_text(json.dumps(record, separators=(",", ":")))
        partial.replace(path)
