"""Slots (a project's image and platform, build.image_slot) that a session built in but may not
have pruned: marked before each build, cleared after each prune. A session killed in between
(SIGKILL, out of memory) leaves its mark, so the next one, though every build of it is found
unchanged, prunes that slot; without a mark a warm run asks the engine nothing (a stat)."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path


def _mark(folder: Path, slot: str) -> Path:
    return folder / hashlib.sha256(slot.encode()).hexdigest()[:24]


def mark(folder: Path | None, slot: str) -> None:
    """A build in ``slot`` is about to run: its older image is to be pruned."""
    if folder is not None:
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            _mark(folder, slot).write_text(slot)


def marked(folder: Path | None, slot: str) -> bool:
    """Whether a build in ``slot`` was not followed by its prune (a killed session's)."""
    return folder is not None and _mark(folder, slot).exists()


def clear(folder: Path | None, slot: str) -> None:
    """``slot`` was pruned."""
    if folder is not None:
        with contextlib.suppress(OSError):
            _mark(folder, slot).unlink()
