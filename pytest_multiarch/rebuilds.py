"""Why a platform's image is built: the inputs of each slot's last build (its build key's parts
and the context files it counted, as keyed digests) are kept in the cache directory, and a build
that runs names in one line what changed since ("app.py changed", "the Dockerfile changed"), or
why it runs anyway (--multiarch-rebuild, a first build, an image removed since)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pytest_multiarch.context import REACH_KEY

_FIELDS = (
    ("scheme", "the plugin's build key scheme"),
    ("dockerfile", "the Dockerfile"),
    ("build_args", "the build args"),
    ("target", "the target"),
    ("secrets", "the secrets' ids or sources"),
    ("ssh", "the ssh forwarding"),
    ("builder", "the builder"),
)
SHOWN = 3  # changes named in the line; the others counted


def record_path(folder: Path | None, slot: str) -> Path | None:
    if folder is None:
        return None
    return folder / f"{hashlib.sha256(slot.encode()).hexdigest()[:24]}.json"


def recall(path: Path | None) -> dict[str, Any] | None:
    """The inputs of the slot's last build; None when unknown or unreadable."""
    if path is None:
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("files"), dict) else None


def remember(path: Path | None, inputs: dict[str, Any]) -> None:
    """Keep ``inputs`` as the slot's last build (atomically; only when they changed)."""
    if path is None or recall(path) == inputs:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(inputs, separators=(",", ":"), sort_keys=True))
        partial.replace(path)


def why(previous: dict[str, Any] | None, now: dict[str, Any], forced: str | None = None) -> str:
    """One line: what made this build run."""
    if forced:
        return forced
    if previous is None:
        return "no earlier build of this image is known here"
    changes = [
        f"{label} changed" for field, label in _FIELDS if previous.get("key", {}).get(field) != now["key"].get(field)
    ]
    before, after = previous["files"], now["files"]
    if before.get(REACH_KEY) != after.get(REACH_KEY):
        changes.append("which context files count changed")
    else:
        for rel in sorted(set(before) | set(after)):
            if rel == REACH_KEY or before.get(rel) == after.get(rel) or "D" in (before.get(rel), after.get(rel)):
                continue  # a folder's own entry says nothing its files do not
            state = "added" if rel not in before else "removed" if rel not in after else "changed"
            changes.append(f"{rel} {state}")
    if not changes:
        return "the image of the same inputs is no longer loaded (removed since)"
    more = f" and {len(changes) - SHOWN} more" if len(changes) > SHOWN else ""
    return ", ".join(changes[:SHOWN]) + more
