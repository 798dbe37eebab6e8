"""Every name the plugin gives things on an engine and on disk, in one place: the labels of its
images, containers and networks, the tags of its images, and its lock folder. Other modules (and
the tests) import them from here instead of spelling them out."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_multiarch.config import ImageSpec
    from pytest_multiarch.platforms import Platform

LABEL_PREFIX = "io.github.pytest-multiarch."
# Images: the build key (what the image was built from), the slot (project image and platform)
# whose older builds are pruned, and the test run of a --multiarch-rebuild.
KEY_LABEL = LABEL_PREFIX + "key"
SLOT_LABEL = LABEL_PREFIX + "slot"
RUN_LABEL = LABEL_PREFIX + "rebuilt-in-run"
# Containers and networks of a session: host:pid:start of the process, and its PID namespace
# (pids of another one, a CI job in its own container sharing the host's socket, say nothing here).
OWNER_LABEL = LABEL_PREFIX + "owner"
PID_NAMESPACE_LABEL = LABEL_PREFIX + "pid-namespace"
# --multiarch-reuse containers: their slot, the key of what they run, and the session that
# started them (until it has run the container-started hook, only it may rely on them).
REUSE_SLOT_LABEL = LABEL_PREFIX + "reuse-slot"
REUSE_KEY_LABEL = LABEL_PREFIX + "reuse-key"
REUSE_STARTER_LABEL = LABEL_PREFIX + "reuse-starter"

REPOSITORY_PREFIX = "pytest-multiarch/"
# A created container whose files are read and which never runs (the architecture check).
NEVER_STARTED_ENTRYPOINT = "/pytest-multiarch-never-started"
LOCK_DIR = Path(tempfile.gettempdir()) / f"pytest-multiarch-locks-{os.getuid() if hasattr(os, 'getuid') else 0}"


def image_repository(spec: ImageSpec) -> str:
    """One repository per project folder and image name, so projects never share tags."""
    where = hashlib.sha256(str(spec.context.resolve()).encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9]+", "-", (spec.name or spec.context.resolve().name).lower()).strip("-")
    return f"{REPOSITORY_PREFIX}{base or 'image'}-{where}"


def image_tag(spec: ImageSpec, platform: Platform, key: str) -> str:
    """The tag of a build: its repository, platform and build key."""
    return f"{image_repository(spec)}:{platform.slug}-{key[:16]}"


def image_slot(spec: ImageSpec, platform: Platform) -> str:
    """The project image and platform an image is built for (its SLOT_LABEL); builds of the
    same slot with other keys are the stale ones."""
    return f"{image_repository(spec)}:{platform.slug}"


def gate_tag(ref: str, platform: Platform) -> str:
    """The local tag of a release gate's pulled manifest."""
    return f"{REPOSITORY_PREFIX}gate-{hashlib.sha256(ref.encode()).hexdigest()[:8]}:{platform.slug}"


def network_name(session_id: str, platform: Platform) -> str:
    """A session's network for one platform on one engine."""
    return f"pytest-multiarch-{session_id}-{platform.slug}"
