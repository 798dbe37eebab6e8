"""Build: one ``docker buildx build --platform P --load`` per platform, skipped when unchanged.

The build key is a SHA-256 over everything that determines the image: the files of the build
context that .dockerignore lets through and the Dockerfile can reach (names, exec bits, contents:
context.py's digest, read once per session and re-reading only changed files), the Dockerfile,
the build args (keyed), the target, secret and ssh ids and sources, the platform and the
builder. The image is tagged and labelled with it; an image with the same key already loaded is
reused without calling buildx (``--multiarch-rebuild`` forces a build; rebuilds.py says why a
build runs). Base images pulled by ``FROM`` are not part of the key.

Files that running the tests itself writes into the context (``__pycache__``, ``*.pyc``,
``.pytest_cache``) and ``.git`` are left out of the key even without a .dockerignore: otherwise
every first run would invalidate the second one.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from pytest_multiarch.buildx import describe_build_failure as describe_build_failure
from pytest_multiarch.buildx import run_buildx
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.context import context_digest, context_entries
from pytest_multiarch.enginefaults import unless_missing
from pytest_multiarch.errors import BuildError, ImageMismatch, UsageError
from pytest_multiarch.names import (  # noqa: F401  (also imported from here)
    KEY_LABEL,
    LOCK_DIR,
    RUN_LABEL,
    SLOT_LABEL,
    image_repository,
    image_slot,
    image_tag,
)
from pytest_multiarch.platforms import Platform
from pytest_multiarch.podmanbuild import build_turn
from pytest_multiarch.secrets import keyed_digest
from pytest_multiarch.secrets import secret_masker as secret_masker

if TYPE_CHECKING:
    import docker

    from pytest_multiarch.archcheck import ArchReport
    from pytest_multiarch.elf import ElfInfo
    from pytest_multiarch.engine import Engine
    from pytest_multiarch.rootfs import RootFS

_KEY_SCHEME = "4"  # 4: the context counts only what the Dockerfile reaches (reach.py)


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """What the loaded image says it runs: for checks such as "runs as non-root everywhere"."""

    user: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()  # "8080/tcp"
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    workdir: str = ""

    @classmethod
    def of(cls, config: Mapping[str, Any] | None) -> ImageConfig:
        """From the ``Config`` of ``docker image inspect``."""
        config = config or {}
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in config.get("Env") or [])
        return cls(
            user=str(config.get("User") or ""),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            env=env,
            exposed_ports=tuple(sorted(config.get("ExposedPorts") or {})),
            labels=dict(config.get("Labels") or {}),
            workdir=str(config.get("WorkingDir") or ""),
        )


@dataclasses.dataclass(frozen=True)
class BuiltImage:
    """An image loaded into the engine for one platform."""

    tag: str
    id: str
    platform: Platform
    key: str
    reused: bool
    seconds: float
    exposed_ports: tuple[int, ...] = ()
    config: ImageConfig = dataclasses.field(default_factory=ImageConfig, repr=False)
    pulled: bool = False  # a release gate's manifest (``key`` is its digest), not a build of the project
    arch: ArchReport | None = dataclasses.field(default=None, compare=False, repr=False)  # the check's findings
    files: Callable[[], RootFS] | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def source(self) -> str:
        """ "built" in this session, "reused" (found unchanged, the same build key) or "pulled"
        (--multiarch-image)."""
        return "pulled" if self.pulled else "reused" if self.reused else "built"

    def elf(self, path: str) -> ElfInfo | None:
        """The ELF headers of ``path`` in this image, symlinks followed: ``.bits``, ``.machine``,
        ``.byte_order``, ``.interpreter``, ``.needed``, ``.matches(platform)``; None for a file
        that is not ELF. Read from the image's files: nothing in the image runs.
        FileNotFoundError when the image has no such file."""
        if self.files is None:
            raise RuntimeError("this image's files cannot be read (it was not made by the session)")
        found = self.files().get(path)
        if found is None or found[1].kind == "dir":
            raise FileNotFoundError(f"{path}: no such file in the {self.platform} image {self.tag}")
        return found[1].elf


def build_key(spec: ImageSpec, platform: Platform, builder: str, context: str | None = None) -> str:
    """SHA-256 of every input of the build (see the module docstring). ``context``: the context's
    digest, when the session has it already (context.py; computed here otherwise)."""
    header = {
        **key_inputs(spec, platform, builder),
        "context": context if context is not None else context_digest(spec, None),
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()


def key_inputs(spec: ImageSpec, platform: Platform, builder: str) -> dict[str, Any]:
    """The build key's inputs besides the context (rebuilds.py names those that changed)."""
    return {
        "scheme": _KEY_SCHEME,
        "platform": str(platform),
        "builder": builder,
        "target": spec.target,
        # Keyed, so that the image's key label does not let anyone confirm a guessed value.
        "build_args": keyed_digest(json.dumps(sorted(spec.build_args.items())).encode()),
        # Ids and sources only: a changed token does not rebuild (BuildKit's cache does the same).
        "secrets": [secret.argument() for secret in spec.secrets],
        "ssh": list(spec.ssh),
        "dockerfile": hashlib.sha256(spec.dockerfile.read_bytes()).hexdigest(),
    }


def context_files(spec: ImageSpec) -> list[str]:
    """Paths of the context that buildx sends, honouring .dockerignore as Docker does."""
    return sorted(context_entries(spec))


def find_loaded(sdk: docker.DockerClient, tag: str, key: str, run: str | None = None) -> str | None:
    """Id of an already loaded image with this tag and build key (and, when ``run`` is given,
    built by that test run), else None. Asked through the Docker API: milliseconds, where the
    CLI takes a tenth of a second, on the path of every unchanged run."""
    image = unless_missing(lambda: sdk.images.get(tag))
    if image is None:
        return None
    labels = _labels(image.attrs)
    if labels.get(KEY_LABEL) != key or (run is not None and labels.get(RUN_LABEL) != run):
        return None
    return str(image.id)


def _labels(attrs: dict[str, Any]) -> dict[str, str]:
    return dict((attrs.get("Config") or {}).get("Labels") or {})


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """How the session builds, the same for each image: the builder as the key names it (its
    name and nodes), --multiarch-rebuild's test run (None: an image with the same key is
    reused), buildx's cache (--cache-from, --cache-to) and its own extra flags."""

    builder: str
    rebuild_run: str | None = None
    cache: tuple[str | None, str | None] = (None, None)
    flags: Sequence[str] = ()


def build_image(
    engine: Engine,
    spec: ImageSpec,
    platform: Platform,
    options: BuildOptions,
    *,
    context: str | None = None,
    on_line: Callable[[str], None] | None = None,
    on_build: Callable[[], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> BuiltImage:
    """Build (or reuse) the image of ``spec`` for ``platform`` on ``engine``, and check its
    architecture. ``on_build`` is called when a build is to run; ``on_line`` gets its log lines."""
    spec.check_paths()
    sdk = engine.sdk
    started = time.monotonic()
    key = build_key(spec, platform, options.builder, context)
    tag = image_tag(spec, platform, key)
    # One build per key across processes (pytest-xdist workers, parallel runs): the others wait
    # here and then find the image loaded.
    with FileLock(LOCK_DIR / f"{key}.lock"):
        # --multiarch-rebuild: build once in this test run; other xdist workers of the same run
        # (same testrunuid) then find that build.
        reused = find_loaded(sdk, tag, key, options.rebuild_run) is not None
        if not reused:
            labels = {
                KEY_LABEL: key,
                SLOT_LABEL: image_slot(spec, platform),
                **({RUN_LABEL: options.rebuild_run} if options.rebuild_run else {}),
            }
            with build_turn(engine.runtime, cancelled):  # podman: one build at a time (podmanbuild.py)
                if on_build is not None:
                    on_build()
                run_buildx(engine, spec, platform, tag, labels, on_line, options.cache, flags=options.flags)
    image = unless_missing(lambda: sdk.images.get(tag))
    if image is None:
        raise BuildError(
            f"image {tag} for {platform} is not in the engine at {engine.endpoint.describe()} after its build: "
            f"removed right after it (by `docker image prune` or another process?), or the builder "
            f"{engine.builder or '(current)'} loads into another engine (a `docker` driver builder loads into "
            f"its own). Run the tests again, or pick a builder with --multiarch-builder."
        )
    attrs = image.attrs
    check_image_platform(tag, platform, attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant"))
    return BuiltImage(
        tag=tag,
        id=str(image.id),
        platform=platform,
        key=key,
        reused=reused,
        seconds=time.monotonic() - started,
        exposed_ports=exposed_ports((attrs.get("Config") or {}).get("ExposedPorts")),
        config=ImageConfig.of(attrs.get("Config")),
    )


def exposed_ports(ports: Mapping[str, Any] | None) -> tuple[int, ...]:
    """The image's EXPOSEd ports (``{"8000/tcp": {}}``), lowest first."""
    return tuple(sorted(int(str(p).split("/")[0]) for p in (ports or {})))


def check_image_platform(
    tag: str, platform: Platform, os_name: str | None, arch: str | None, variant: str | None
) -> None:
    """The loaded image's config must say the requested platform: never a silent pass."""
    described = "/".join(p for p in (os_name, arch, variant) if p)
    try:
        actual = Platform.parse(described)
    except UsageError:
        actual = None
    if actual != platform:
        raise ImageMismatch(
            f"image {tag} was requested for {platform} but its config says {described or 'nothing'}. "
            f"A FROM line probably pins another platform (`FROM --platform=...`), or the base "
            f"image lacks {platform}: check the base image's platforms with "
            f"`docker buildx imagetools inspect IMAGE`."
        )


def prune_stale(sdk: docker.DockerClient, slot: str, keep: set[str], made_before: float) -> None:
    """Remove this project's older builds for a platform (``slot``, see image_slot) whose id is
    not in ``keep``, so edits and rebuilds don't pile up images.

    Called when a session ends (under xdist by the controller, after all workers), never
    during a build. Only images made before ``made_before`` (the session's start) go: a
    concurrent session may be about to start a container from one it just built. An image a
    container still uses is kept. Housekeeping only: whatever the engine answers, it never fails.
    """
    try:
        stale = sdk.images.list(filters={"label": f"{SLOT_LABEL}={slot}"})
    except Exception:
        return
    for image in stale:
        if image.id in keep or _made(image.attrs) >= made_before:
            continue
        try:
            sdk.images.remove(image.id, force=False, noprune=False)
        except Exception:
            pass  # still used by a container: leave it


def _made(attrs: Mapping[str, Any]) -> float:
    """When the image was last built or loaded, in seconds since the epoch: its creation time, or
    the time it was last tagged (``--load`` tags it), whichever is later. A build served from
    the cache keeps the creation time of its first build; its tagging is new. +inf (so kept)
    when neither can be read."""
    metadata = attrs.get("Metadata") or {}
    times = [_epoch(attrs.get("Created")), _epoch(metadata.get("LastTagTime") if isinstance(metadata, dict) else None)]
    known = [t for t in times if t is not None]
    return max(known) + 0.1 if known else float("inf")  # errs on keeping


def _epoch(text: object) -> float | None:
    """An engine timestamp → seconds since the epoch; None when unreadable or Docker's zero time
    (never tagged). Created comes in UTC (``…58.123456789Z``); LastTagTime, with the classic
    image store, in the daemon's own zone (``…58.123456789+02:00``)."""
    found = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", str(text).strip())
    if found is None or found.group(1).startswith("0001"):
        return None
    whole, fraction, zone = found.groups()
    try:  # fromisoformat before Python 3.11 takes neither "Z" nor nine digits of fraction
        when = datetime.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return when.timestamp() + (float("0." + fraction) if fraction else 0.0)
