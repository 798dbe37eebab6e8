"""An image's files, read from its engine, and the architecture check's verdict on them, kept
by image id: the id is a digest of the image's content, so a warm run reads one small file.

The files come from the engine's own overlay2 layer directories when the engine runs on this
machine and they are readable (a few hundredths of a second), else from the export of a created,
never started container (any engine; it streams the whole image). See rootfs.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_multiarch import cleanup
from pytest_multiarch.archcheck import ArchReport, analyse
from pytest_multiarch.elf import needs
from pytest_multiarch.errors import ImageMismatch, MultiarchError
from pytest_multiarch.names import NEVER_STARTED_ENTRYPOINT
from pytest_multiarch.platforms import Platform
from pytest_multiarch.rootfs import RootFS, from_layer_dirs, from_tar

if TYPE_CHECKING:
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.engine import Engine

CACHE_SCHEME = "2"  # bump when the analysis changes what it finds
_EXPORT_CHUNK = 1 << 20


class ArchMismatch(ImageMismatch):
    """The platform's image holds binaries its CPU cannot run (the architecture check)."""


class ImageUnreadable(MultiarchError):
    """The engine would not give the image's files to the architecture check."""


def read_rootfs(engine: Engine, image_id: str) -> RootFS:
    """The image's merged filesystem, from the fastest source the engine allows."""
    layers = _local_layers(engine, image_id)
    if layers is not None:
        try:
            return from_layer_dirs(layers)
        except OSError:
            pass  # removed or unreadable meanwhile: ask the engine
    return _exported(engine, image_id)


def _local_layers(engine: Engine, image_id: str) -> list[Path] | None:
    """The overlay2 layer directories of the image, topmost first, when this process can read
    the engine's storage (same kernel, overlay2, every directory there); None otherwise."""
    try:
        if not engine.capabilities().local:
            return None
        attrs: dict[str, Any] = engine.sdk.api.inspect_image(image_id)
    except Exception:
        return None
    driver = attrs.get("GraphDriver") or {}
    data = driver.get("Data") or {}
    if driver.get("Name") != "overlay2" or not data.get("UpperDir"):
        return None
    dirs = [Path(data["UpperDir"]), *(Path(d) for d in str(data.get("LowerDir") or "").split(":") if d)]
    if len(dirs) != len((attrs.get("RootFS") or {}).get("Layers") or ()):
        return None
    if not all(os.access(d, os.R_OK | os.X_OK) and d.is_dir() for d in dirs):
        return None
    return dirs


def _exported(engine: Engine, image_id: str) -> RootFS:
    """The filesystem of a created, never started container of the image (removed after)."""
    api = engine.sdk.api
    try:
        created = api.create_container(image_id, entrypoint=[NEVER_STARTED_ENTRYPOINT], labels=cleanup.owner_labels())
    except Exception as exc:
        raise ImageUnreadable(
            f"the engine could not create a container of {image_id} to read its files: {exc}"
        ) from None
    container_id = created["Id"]
    try:
        response = api._get(api._url("/containers/{0}/export", container_id), stream=True)
        api._raise_for_status(response)
        return from_tar(response.raw.stream(_EXPORT_CHUNK, decode_content=False))
    except MultiarchError:
        raise
    except Exception as exc:
        raise ImageUnreadable(f"the engine could not export the files of {image_id}: {exc}") from None
    finally:
        _remove(api, container_id)


def _remove(api: Any, container_id: str) -> None:
    """Remove the never started container; once more if the first call fails (a dropped ssh
    connection, say). Left anyway, it carries the session's owner label: the next sweep takes it."""
    for _ in range(2):
        try:
            api.remove_container(container_id, force=True)
            return
        except Exception as exc:
            if "No such container" in str(exc):
                return


def arch_report(image: BuiltImage, files: Callable[[], RootFS], cache_dir: Path | None) -> ArchReport:
    """The check's findings for ``image``, from the cache when this image id was checked for
    this platform before; else from ``files()``, its filesystem."""
    cached = _cache_file(cache_dir, image.id, image.platform)
    if cached is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return ArchReport.from_json(json.loads(cached.read_text(encoding="utf-8")))
    config = image.config
    report = analyse(files(), image.platform, config.entrypoint, config.cmd, config.env, config.workdir)
    if cached is not None:
        _write(cached, json.dumps(report.to_json()))
    return report


def verdict(report: ArchReport, image: BuiltImage, mode: str, ignore: tuple[str, ...], native: Platform | None) -> None:
    """Raise ArchMismatch naming every file that fails ``image``'s platform under ``mode``."""
    failures = report.failures(mode, ignore)
    if not failures:
        return
    platform = image.platform
    lines = [f"  {f.line()}" for f in failures[:20]]
    if len(failures) > 20:
        lines.append(f"  ... and {len(failures) - 20} more")
    built_here = ""
    foreign = [f for f in failures if f.foreign]
    if native is not None and native != platform and foreign and all(_built_for(f.problem, native) for f in foreign):
        built_here = f"They are built for {native}, this engine's own CPU. "
    raise ArchMismatch(
        f"the {platform} image {image.tag} holds binaries that a {platform} CPU cannot run "
        f"(read from its files, {report.checked} ELF files, none run):\n"
        + "\n".join(lines)
        + f"\n{built_here}Likely cause: a build stage on $BUILDPLATFORM (`FROM --platform=$BUILDPLATFORM`, "
        "or a FROM pinned to one platform) whose output is copied into every platform's image without "
        "cross-compiling. Build it for the target: `GOARCH=$TARGETARCH` (Go), the target's compiler or "
        "`--target` (C, Rust), or `FROM --platform=$TARGETPLATFORM` for the stage that installs native "
        "packages or wheels. A file that is meant to be there: ini multiarch_arch_ignore (globs); the "
        "check itself: --multiarch-arch-check commands|all|off."
    )


def _built_for(problem: str, native: Platform) -> bool:
    """``problem`` (``ELF 64-bit x86-64, but ...``) names the ``native`` platform's CPU."""
    return problem.split(", but ", 1)[0].split("-bit ", 1)[-1].startswith(needs(native))


def _cache_file(cache_dir: Path | None, image_id: str, platform: Platform) -> Path | None:
    if cache_dir is None:
        return None
    digest = image_id.removeprefix("sha256:")
    if not digest.isalnum():
        return None
    return cache_dir / "arch" / f"{digest}-{platform.slug}-{CACHE_SCHEME}.json"


def _write(path: Path, text: str) -> None:
    """Atomically, so that a concurrent reader never sees half of it; a cache: failures pass."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".arch-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
