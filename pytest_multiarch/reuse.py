"""--multiarch-reuse: the labels that say which containers a later session may reuse, and
finding one left running by an earlier session for exactly this image and configuration.

A reusable container carries the slot (declaration and platform) and a key over everything that
shapes it; it is renamed once its container-started hook has run (``verified_name``), the
engine-side proof that later sessions may rely on it without checking it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.enginefaults import docker_errors, ignoring_docker_errors
from pytest_multiarch.http import join_url, probe
from pytest_multiarch.names import REUSE_KEY_LABEL, REUSE_SLOT_LABEL, REUSE_STARTER_LABEL
from pytest_multiarch.run import MultiarchContainer, check_machine, port_of

if TYPE_CHECKING:
    from docker.models.containers import Container

    from pytest_multiarch.engine import Engine


def reuse_labels(image: BuiltImage, spec: ImageSpec) -> dict[str, str]:
    """Labels of a --multiarch-reuse container: its slot and a key over everything that shapes
    the running container, so that any change replaces it.

    The slot is the declaration (project image, Dockerfile and target) and the platform: a slot
    holds one container, so two declarations of one image name with different targets must not
    share one, or each would replace the other's container."""
    declaration = hashlib.sha256(f"{spec.dockerfile}|{spec.target or ''}".encode()).hexdigest()[:8]
    slot = f"{image.tag.split(':')[0]}:{image.platform.slug}:{declaration}"
    key = hashlib.sha256(f"{image.id}|{port_of(image, spec)}|{spec.ready_path}".encode()).hexdigest()
    return {REUSE_SLOT_LABEL: slot, REUSE_KEY_LABEL: key}


def verified_name(slot: str) -> str:
    """The name a --multiarch-reuse container gets once it answered, passed the ``uname -m`` check
    and its container-started hook ran: engine-side proof, so later sessions reuse it without
    exec'ing into it again. A session killed before that leaves the random name. One per slot,
    as container names are unique."""
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", slot.replace(":", "-"))


def mark_verified(container: MultiarchContainer) -> None:
    """Rename a verified --multiarch-reuse container (best effort: unnamed, the next session
    replaces it once this one has ended)."""
    with contextlib.suppress(Exception):  # the engine's error or a broken connection alike
        container.rename(verified_name(container.labels[REUSE_SLOT_LABEL]))


@dataclasses.dataclass
class StarterPending:
    """A --multiarch-reuse container another running session (an xdist worker, say) has started
    but not renamed yet: its container-started hook is still due. Waited for outside the slot
    lock (wait_until_renamed), then asked again with ``waited``."""

    container: Container
    verified_name: str


def find_reusable(
    engine: Engine, image: BuiltImage, spec: ImageSpec, *, waited: bool = False, command_timeout: float = 30.0
) -> MultiarchContainer | StarterPending | None:
    """A running container left by an earlier --multiarch-reuse session for exactly this image
    and configuration; containers of the same slot that don't match are removed (replaced).

    One not renamed yet (see verified_name) is relied on only once its starter ran the
    container-started hook: if the starter is gone, it is replaced; else StarterPending, and
    once ``waited`` (in vain) it is shared after a ``uname -m`` check."""
    wanted = reuse_labels(image, spec)
    found = _running_match(engine, wanted)
    if found is None:
        return None
    port = port_of(image, spec)
    base_url = None
    if port is not None:
        bindings = engine.sdk.api.port(found.id, port) or []
        if not bindings:
            found.remove(force=True, v=True)
            return None
        base_url = f"http://{engine.container_host}:{bindings[0]['HostPort']}/"
    container = MultiarchContainer(
        found,
        image,
        engine,
        command_timeout=command_timeout,
        port=port,
        base_url=base_url,
        port_setting=spec.setting("port"),
        reused=True,
    )
    name = verified_name(wanted[REUSE_SLOT_LABEL])
    if found.name != name:
        starter = _starter_state(found)
        if starter == "dead":
            with ignoring_docker_errors():
                found.reload()  # renamed by its session just before it ended?
            if found.name != name:
                container.stop()  # it died before its hook (SIGKILL, OOM): never seeded
                return None
        elif not waited:
            return StarterPending(found, name)
        # else: its session runs (or may: another host) but did not finish its hook in time: shared
    if not _still_serves(container, spec, verified=found.name == name):
        container.stop()  # start afresh
        return None
    return container


def _running_match(engine: Engine, wanted: dict[str, str]) -> Container | None:
    """The running container of the ``wanted`` slot with the ``wanted`` key, if any; every other
    container of that slot is removed (best effort), as a slot holds one container."""
    found = None
    slot = f"{REUSE_SLOT_LABEL}={wanted[REUSE_SLOT_LABEL]}"
    for candidate in engine.sdk.containers.list(all=True, filters={"label": slot}):
        matches = candidate.labels.get(REUSE_KEY_LABEL) == wanted[REUSE_KEY_LABEL]
        if found is None and matches and candidate.status == "running":
            found = candidate
            continue
        with ignoring_docker_errors():
            candidate.remove(force=True, v=True)
    return found


def _still_serves(container: MultiarchContainer, spec: ImageSpec, *, verified: bool) -> bool:
    """Whether a found container still answers its ready path below 500 and, unless
    ``verified`` (renamed by its starter), passes the ``uname -m`` check. Any error is a no."""
    try:
        if container.base_url is not None and spec.ready_path is not None:
            answer = probe(join_url(container.base_url, spec.ready_path), timeout=5)
            if answer.status_code >= 500:
                return False
        if not verified:
            check_machine(container)
    except Exception:
        return False
    return True


def wait_until_renamed(pending: StarterPending, timeout: float, cancelled: Callable[[], bool]) -> None:
    """Until the starting session renamed the container (its hook ran) or removed it (its hook
    failed), at most ``timeout`` seconds, or until this session gives up."""
    deadline = time.monotonic() + timeout
    while not cancelled() and time.monotonic() < deadline:
        try:
            pending.container.reload()
        except docker_errors():
            return  # removed
        if pending.container.name == pending.verified_name:
            return
        time.sleep(0.1)


def _starter_state(container: Container) -> str:
    from pytest_multiarch.cleanup import process_state
    from pytest_multiarch.names import PID_NAMESPACE_LABEL

    labels = container.labels or {}
    return process_state(labels.get(REUSE_STARTER_LABEL, ""), labels.get(PID_NAMESPACE_LABEL))
