"""Early start: what the last run with the same arguments needed, so that the next one starts
those builds and containers when the session starts, while pytest still collects.

Which images and containers a run needs is known only after collection; in a large test suite
that takes seconds, in which a build or a container start could already have run. A run writes
what it needed to a small file keyed by its directory and arguments; the next run with the
same key starts exactly that at ``pytest_sessionstart``, and removes at once whatever
collection then shows it does not need. The file holds fixture prefixes, platforms and a
SHA-256 per image spec (never build args).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from pytest_multiarch.config import ImageSpec
from pytest_multiarch.platforms import Platform

_SCHEME = 1
FORGET_DAYS = 30


@dataclasses.dataclass(frozen=True)
class Needed:
    """One (image, platform) a run needed: ``prefix`` names its fixtures (``multiarch`` for the
    default image) and ``digest`` the full spec it was built from, build args included."""

    prefix: str
    platform: str
    container: bool
    digest: str


def merged(needed: list[Needed]) -> list[Needed]:
    """One entry per image and platform (first seen first), needing a container if any did."""
    containers: dict[tuple[str, str, str], bool] = {}
    for entry in needed:
        key = (entry.prefix, entry.platform, entry.digest)
        containers[key] = containers.get(key, False) or entry.container
    return [Needed(prefix, platform, container, digest) for (prefix, platform, digest), container in containers.items()]


def spec_digest(spec: ImageSpec, platform: Platform) -> str:
    """SHA-256 over every field of the spec and the platform: equal digests, equal builds."""
    fields = [
        spec.name,
        str(spec.context),
        str(spec.dockerfile),
        sorted(spec.build_args.items()),
        spec.target,
        spec.port,
        spec.ready_path,
        str(platform),
    ]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def record_path(config: pytest.Config, cache_dir: Path) -> Path:
    """One record per project directory, working directory, command line (PYTEST_ADDOPTS
    included) and ini file content: what decides which tests run and what they need."""
    ini = b""
    if config.inipath is not None:
        with contextlib.suppress(OSError):
            ini = config.inipath.read_bytes()
    key = json.dumps(
        [
            str(config.rootpath),
            str(config.inipath),
            hashlib.sha256(ini).hexdigest(),
            str(config.invocation_params.dir),
            list(config.invocation_params.args),
            os.environ.get("PYTEST_ADDOPTS", ""),
        ]
    )
    return cache_dir / "early" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def read(path: Path) -> list[Needed]:
    """The record, or nothing when it is missing, unreadable or of another version."""
    try:
        data = json.loads(path.read_text())
        if data.get("scheme") != _SCHEME:
            return []
        needed = [Needed(**entry) for entry in data["needed"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    types = (str, str, bool, str)
    for entry in needed:
        values = (entry.prefix, entry.platform, entry.container, entry.digest)
        if not all(isinstance(value, kind) for value, kind in zip(values, types, strict=True)):
            return []
    return needed


def write(path: Path, needed: list[Needed]) -> None:
    """Replace the record atomically, and drop records of command lines not run for
    FORGET_DAYS (one file per command line would otherwise pile up). A cache that cannot be
    written only costs the head start."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"scheme": _SCHEME, "needed": [dataclasses.asdict(n) for n in needed]}))
        partial.replace(path)
    forget_before = time.time() - FORGET_DAYS * 86400
    for old in path.parent.glob("*.json"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < forget_before:
                old.unlink()
