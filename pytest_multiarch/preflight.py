"""Preflight: can this engine build and run a platform, natively or through QEMU?

Sources, most to least authoritative:
1. the platform is the engine's native one (or one its CPU runs directly: 386 on amd64);
2. the builder's own platform list (``docker buildx inspect``, ``builder.nodes[].platforms``),
   which BuildKit fills in by actually running a test binary through each emulator;
3. when the daemon runs on this very kernel, /proc/sys/fs/binfmt_misc (the builder's list is
   read when the daemon starts, so an emulator installed later appears only there).
The container start then does the real run: ``uname -m`` inside must match (see run.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform as host
import socket
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_multiarch import environ
from pytest_multiarch.errors import (
    DOCTOR_HINT,
    EngineError,
    PlatformUnavailable,
    UsageError,
    docker_said,
    install_emulator_command,
)
from pytest_multiarch.platforms import Platform

if TYPE_CHECKING:
    from python_on_whales import DockerClient

    from pytest_multiarch.engine import Engine

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

# Platforms a CPU runs without emulation, besides its own.
_COMPATIBLE = {"amd64": {"386"}}


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the preflight learned about one Docker engine and its builder."""

    server_version: str
    native: Platform
    builder_name: str
    builder_driver: str
    builder_platforms: tuple[Platform, ...]
    buildx_version: str
    local: bool  # the daemon shares this kernel, so /proc/sys/fs/binfmt_misc describes it
    builder_nodes: tuple[str, ...] = ()  # "name=endpoint" per node: part of the build key
    runtime: str = "docker"  # or "podman" (podman.py): then builder_* and buildx_version describe podman build
    rootless: bool = False  # podman as a user: host ports >= 1024 only

    def is_native(self, platform: Platform) -> bool:
        return platform.arch == self.native.arch or platform.arch in _COMPATIBLE.get(self.native.arch, set())

    def resolve(self, platform: Platform) -> Platform:
        """Return ``platform`` with ``emulated`` set, or raise PlatformUnavailable."""
        if self.is_native(platform):
            return platform.with_emulated(False)
        if platform in self.builder_platforms:
            return platform.with_emulated(True)
        if self.local and binfmt_handler_enabled(platform):
            return platform.with_emulated(True)
        raise PlatformUnavailable(self.missing_emulator_message(platform))

    def missing_emulator_message(self, platform: Platform) -> str:
        listed = ", ".join(str(p) for p in self.builder_platforms) or "none"
        where = ""
        if self.local and platform.qemu_name:
            where = f" and {BINFMT_DIR}/qemu-{platform.qemu_name} is missing or disabled"
        return (
            f"{platform} cannot run on this engine ({self.native} native): no QEMU emulator. "
            f"Builder {self.builder_name!r} lists {listed}{where}. "
            f"Install one with `{install_emulator_command(platform.arch)}`, or on Debian/Ubuntu "
            f"`apt-get install qemu-user-static "
            f"binfmt-support` (then restart dockerd). {DOCTOR_HINT}"
        )


def binfmt_handler_enabled(platform: Platform) -> bool:
    name = platform.qemu_name
    if not name:
        return False
    try:
        return (BINFMT_DIR / f"qemu-{name}").read_text().startswith("enabled")
    except OSError:
        return False


def describe_handler(platform: Platform) -> str | None:
    """``qemu-aarch64 (flags: PF)`` when this kernel has the handler, else None."""
    name = platform.qemu_name
    if not name:
        return None
    try:
        text = (BINFMT_DIR / f"qemu-{name}").read_text()
    except OSError:
        return None
    flags = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("flags:")), "")
    return f"qemu-{name} (flags: {flags or '-'})"


START_DOCKER = (
    "Start Docker (Docker Desktop, `sudo systemctl start docker`), or point DOCKER_HOST or `docker context use` "
    "at a running engine."
)


def inspect_engine(
    docker: DockerClient,
    *,
    where: str = "",
    local_endpoint: bool = True,
    builder_name: str | None = None,
    advice: str | None = None,
) -> Capabilities:
    """Ask the daemon and buildx what they can do; EngineError when either is unusable.

    ``where`` names the endpoint in messages; ``local_endpoint``: it is a socket on this machine;
    ``builder_name``: the buildx builder to inspect (None: the CLI's current one); ``advice``: what
    to do when the daemon does not answer (Endpoint.start_advice).

    The three CLI calls run at once: ``buildx inspect`` alone takes most of a second.
    """
    with ThreadPoolExecutor(3, thread_name_prefix="multiarch-preflight") as pool:
        info_call = pool.submit(docker.system.info)
        version_call = pool.submit(docker.buildx.version)
        builder_call = pool.submit(docker.buildx.inspect, builder_name)
    try:
        info = info_call.result()
    except Exception as exc:  # DockerException, ClientNotFoundError (no docker CLI), ...
        raise EngineError(
            f"the Docker daemon does not answer{' at ' + where if where else ''} ({docker_said(exc)}). "
            f"{advice or START_DOCKER} Check with `docker info`. {DOCTOR_HINT}"
        ) from None
    try:
        buildx_version = version_call.result()
    except Exception as exc:
        raise EngineError(
            f"docker buildx is not available ({docker_said(exc)}). Install the buildx plugin "
            f"(Debian/Ubuntu: `apt-get install docker-buildx`; otherwise "
            f"https://github.com/docker/buildx#installing). {DOCTOR_HINT}"
        ) from None
    try:
        builder = builder_call.result()
    except Exception as exc:
        named = f"builder {builder_name!r}" if builder_name else "the current buildx builder"
        raise EngineError(
            f"{named}{' for ' + where if where else ''} cannot be used ({docker_said(exc)}). `docker buildx ls` "
            f"lists the builders; pick one with --multiarch-builder (ini multiarch_builder). {DOCTOR_HINT}"
        ) from None
    return Capabilities(
        server_version=info.server_version or "unknown",
        native=_native_platform(info.os_type, info.architecture),
        builder_name=builder.name or "default",
        builder_driver=builder.driver or "unknown",
        builder_nodes=tuple(f"{node.name}={node.endpoint}" for node in builder.nodes or []),
        builder_platforms=_builder_platforms(builder.nodes or []),
        buildx_version=_buildx_version_text(buildx_version),
        local=local_endpoint and _daemon_is_local(info.name, info.kernel_version),
    )


def _builder_platforms(nodes: Iterable[Any]) -> tuple[Platform, ...]:
    """The platforms a builder's nodes list, each once, in their order; those the plugin does
    not model (linux/mips64) left out, as they are not its to test."""
    listed: list[Platform] = []
    for node in nodes:
        for text in node.platforms or []:
            try:
                parsed = Platform.parse(text.rstrip("*"))
            except Exception:
                continue
            if parsed not in listed:
                listed.append(parsed)
    return tuple(listed)


def _native_platform(os_type: str | None, architecture: str | None) -> Platform:
    """The engine's own platform, as its ``docker info`` says; EngineError for one the plugin
    does not know."""
    try:
        return Platform.parse(f"{os_type or 'linux'}/{architecture}")
    except UsageError:
        raise EngineError(
            f"the Docker engine runs on {os_type}/{architecture}, which pytest-multiarch does not "
            f"know; please report it."
        ) from None


def _buildx_version_text(raw: object) -> str:
    """``github.com/docker/buildx 0.13.1+ds1 abc`` → ``0.13.1+ds1``."""
    parts = str(raw).split()
    return parts[1] if len(parts) > 1 else str(raw).strip()


def _daemon_is_local(name: str | None, kernel: str | None) -> bool:
    """The daemon shares this kernel (not a VM, not another host)."""
    return name == socket.gethostname() and kernel == host.release()


# -- a short-lived cache, so that an edit-test loop does not pay `buildx inspect` every run -------

CACHE_SECONDS = 600.0


def cached_capabilities(engine: Engine, cache_dir: Path | None) -> Capabilities:
    """``inspect_engine`` for ``engine``, remembered for CACHE_SECONDS per daemon and builder
    selection (nothing is remembered when ``cache_dir`` is None).

    The daemon's ID is asked through the Docker API first (milliseconds): a different daemon, a
    restarted one with another ID, another endpoint or BUILDX_BUILDER, or a `docker buildx use`
    (which changes ~/.docker/buildx/current) each miss the cache. An emulator installed since is still
    found through binfmt_misc (see ``Capabilities.resolve``).
    """
    fingerprint = _fingerprint(engine) if cache_dir is not None else None
    digest = hashlib.sha256((fingerprint or "").encode()).hexdigest()[:16]
    path = (cache_dir or Path()) / f"engine-{digest}.json"  # one per engine and builder
    if fingerprint is not None:
        try:
            saved = json.loads(path.read_text())
            if saved["fingerprint"] == fingerprint and time.time() - saved["time"] < CACHE_SECONDS:
                return _from_dict(saved["engine"])
        except (OSError, ValueError, KeyError, TypeError, UsageError):
            pass
    found = environ.retrying(  # in the preflight thread, while pytest changes os.environ
        lambda: inspect_engine(
            engine.cli,
            where=engine.endpoint.describe(),
            local_endpoint=engine.endpoint.is_local,
            builder_name=engine.builder,
            advice=engine.endpoint.start_advice(),
        )
    )
    if fingerprint is not None and cache_dir is not None:
        # Taken again: the inspection itself may have written ~/.docker/buildx/current (buildx does
        # on a first call), and keyed by the old one the next run would miss.
        fingerprint = _fingerprint(engine) or fingerprint
        path = cache_dir / f"engine-{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}.json"
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            record = {"fingerprint": fingerprint, "time": time.time(), "engine": _to_dict(found)}
            path.write_text(json.dumps(record))
        except OSError:
            pass
    return found


def _fingerprint(engine: Engine) -> str | None:
    """Identity of the daemon and the builder selection, or None when the daemon does not answer
    through the API (then the full inspection reports why)."""
    try:
        daemon_id = engine.sdk.info().get("ID", "")
    except Exception:
        return None
    buildx_dir = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "buildx"
    try:  # `docker buildx use` rewrites it (buildx rewrites its mtime on every call: read the content)
        selected = (buildx_dir / "current").read_text()
    except OSError:
        selected = ""
    try:  # emulators added or removed on this kernel (a reboot, binfmt --uninstall) miss the cache
        handlers = ",".join(f"{p.name}={p.read_text().splitlines()[0]}" for p in sorted(BINFMT_DIR.glob("qemu-*")))
    except (OSError, IndexError):
        handlers = ""
    parts = [
        daemon_id,
        handlers,
        engine.endpoint.url,
        engine.endpoint.context or "",
        os.environ.get("BUILDX_BUILDER", ""),
        engine.builder or "",
        selected,
        socket.gethostname(),
    ]
    return "|".join(parts)


def _to_dict(found: Capabilities) -> dict[str, object]:
    data = dataclasses.asdict(found)
    data["native"] = str(found.native)
    data["builder_platforms"] = [str(p) for p in found.builder_platforms]
    return data


def _from_dict(data: dict[str, object]) -> Capabilities:
    fields = dict(data)
    fields["native"] = Platform.parse(str(fields["native"]))
    fields["builder_platforms"] = tuple(Platform.parse(p) for p in fields["builder_platforms"])  # type: ignore[attr-defined]
    fields["builder_nodes"] = tuple(fields.get("builder_nodes") or ())  # type: ignore[arg-type]
    return Capabilities(**fields)  # type: ignore[arg-type]
