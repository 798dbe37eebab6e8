"""``python -m pytest_multiarch doctor``: check this machine's Docker setup, one line per check.

When the plugin skips a platform or cannot reach the engine, its message names one cause; the
doctor walks every layer in order (CLI, daemon, buildx, builder, each platform's emulator, a real
``uname -m`` run) so the first broken one is obvious, each failure followed by the command that
fixes it. Environment problems are reported as lines, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO, cast

from python_on_whales import DockerClient

from pytest_multiarch import gate, projectconfig
from pytest_multiarch.config import parse_engines
from pytest_multiarch.emulators import known_crash, qemu_version
from pytest_multiarch.endpoints import DEFAULT_SOCKET
from pytest_multiarch.engine import Engine, route
from pytest_multiarch.enginefaults import cli_errors
from pytest_multiarch.errors import (
    EngineError,
    MultiarchError,
    PlatformUnavailable,
    UsageError,
    docker_said,
    install_emulator_command,
)
from pytest_multiarch.platforms import Platform, host_platform, parse_platforms, parse_platforms_or_native
from pytest_multiarch.preflight import (
    BINFMT_DIR,
    Capabilities,
    binfmt_handler_enabled,
    describe_handler,
    inspect_engine,
)

DEFAULT_PLATFORMS = "linux/amd64,linux/arm64"
IMAGE_ENV = "MULTIARCH_DOCTOR_IMAGE"
SETUP_FIX = (
    "start Docker (`sudo systemctl start docker`, Docker Desktop); on Debian/Ubuntu install it with "
    "`apt-get install docker.io docker-buildx` (or Docker's own packages: https://docs.docker.com/engine/install/)"
)


RunCheck = Callable[[str, Platform], None]  # (image, platform): a real run, one report line


class Report:
    """Prints each check as it finishes (a pull can take a while) and remembers any failure."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = False

    def line(self, status: str, what: str, fix: str | None = None) -> None:
        print(f"{status:<4} {what}", file=self.out, flush=True)
        if fix:
            print(f"     fix: {fix}", file=self.out, flush=True)

    def ok(self, what: str) -> None:
        self.line("ok", what)

    def warn(self, what: str, fix: str) -> None:
        self.line("warn", what, fix)

    def skip(self, what: str) -> None:
        self.line("skip", what)

    def fail(self, what: str, fix: str) -> None:
        self.failed = True
        self.line("fail", what, fix)

    def runs(self, platforms: list[Platform], runnable: list[Platform], image: str | None, run: RunCheck) -> None:
        """The run check of each platform that can run (Docker's or podman's), once an image is given."""
        if not image:
            self.skip("run: skipped: no image given (use --image REF with a multi-arch image that has uname)")
            return
        for platform in platforms:
            if platform in runnable:
                run(image, platform)
            else:
                self.skip(f"run {platform}: the platform is unavailable")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``doctor`` on the ``python -m pytest_multiarch`` command line."""
    parser = commands.add_parser(
        "doctor",
        help="check Docker, buildx and QEMU emulation for each platform",
        description="Check each layer the plugin needs, in order: the docker CLI, the daemon, buildx, the "
        "builder, each platform's emulator, and a real `uname -m` run per platform. Exit 0 when no check "
        "failed (warnings allowed), 1 otherwise.",
    )
    parser.add_argument(
        "--platforms",
        type=_platform_list,
        default=None,
        metavar="LIST",
        help="platforms to check, separated by commas or spaces (default: the multiarch_platforms of the "
        f"project's pytest configuration in the current directory, else {DEFAULT_PLATFORMS})",
    )
    parser.add_argument(
        "--image",
        metavar="REF",
        help=f"multi-arch image with `uname` for a real run per platform (default: ${IMAGE_ENV}; none: skipped)",
    )
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="PLATFORM=ENDPOINT",
        help="check PLATFORM on this engine (a docker context or a unix://, tcp://, ssh:// URL), as "
        "--multiarch-engine does; repeatable",
    )
    parser.add_argument("--builder", metavar="NAME", help="the buildx builder to check, as --multiarch-builder does")
    parser.add_argument(
        "--runtime",
        metavar="docker|podman",
        help="the runtime to check, as --multiarch-runtime does (default: docker; podman if CONTAINER_RUNTIME=podman)",
    )
    parser.set_defaults(
        handler=lambda args: run_doctor(
            args.platforms,
            args.image or os.environ.get(IMAGE_ENV),
            engines=args.engine,
            builder=args.builder,
            project=Path.cwd(),
            runtime=args.runtime,
        )
    )


def run_doctor(
    platforms: list[Platform] | None,
    image: str | None,
    out: TextIO = sys.stdout,
    *,
    engines: list[str] | None = None,
    builder: str | None = None,
    project: Path | None = None,
    runtime: str | None = None,
) -> int:
    """Run every check, print one line each; 0 when nothing failed (warnings allowed), else 1.
    Each engine (the docker CLI's, and those ``engines`` names per platform) is checked in turn
    for the platforms it runs. ``project``: a folder whose pytest configuration gives what the
    arguments do not (platforms, engines, builder)."""
    report = Report(out)
    try:
        routes = parse_engines(engines or [], "--engine")
    except UsageError as exc:
        report.fail(f"--engine: {exc}", "write PLATFORM=ENDPOINT, e.g. --engine linux/arm64=ssh://user@arm-host")
        routes = {}
    if project is not None:
        platforms, routes, builder = _with_project(report, project, platforms, routes, builder)
    if platforms is None:
        platforms = parse_platforms(DEFAULT_PLATFORMS)
    if _podman_chosen(report, runtime):
        from pytest_multiarch.podmandoctor import check_podman

        check_podman(report, platforms, image, _check_platform)
        return _summary(report, out)
    default = Engine.default(builder=builder)
    routed = route(default, routes, builder=builder, cache_dir=None)
    engines_in_order = list({id(e): e for e in [default, *routed.values()]}.values())
    for engine in engines_in_order:
        mine = [p for p in platforms if routed.get(p, default) is engine]
        if engine is not default:
            print(f"\n{engine.name} (for {', '.join(map(str, mine)) or 'no platform'}):", file=out, flush=True)
        if not mine and engine is not default:
            continue
        _check_platforms(report, engine, mine, image)
    return _summary(report, out)


def _summary(report: Report, out: TextIO) -> int:
    summary = "some checks failed: each fail line says how to fix it" if report.failed else "no check failed"
    print(f"\n{summary}", file=out)
    return 1 if report.failed else 0


def _with_project(
    report: Report, folder: Path, platforms: list[Platform] | None, routes: dict[Platform, str], builder: str | None
) -> tuple[list[Platform] | None, dict[Platform, str], str | None]:
    """What the project's configuration file in ``folder`` adds to the arguments (they win)."""
    try:
        path, values = projectconfig.read(folder)
    except ValueError as exc:
        report.fail(f"project configuration: {exc}", "correct the file, or run the doctor in another folder")
        return platforms, routes, builder
    if path is None:
        return platforms, routes, builder
    used = [key for key in ("multiarch_platforms", "multiarch_engines", "multiarch_builder") if values.get(key)]
    report.ok(f"project configuration: {path} ({', '.join(used) or 'no platforms, engines or builder set'})")
    fix = f"correct it in {path}, or pass the doctor's own option"
    if platforms is None and values.get("multiarch_platforms"):
        try:
            named, native = parse_platforms_or_native(values["multiarch_platforms"])
        except UsageError as exc:
            report.fail(f"{path.name}: multiarch_platforms: {exc}", fix)
        else:  # `native`: this machine's platform stands for each engine's own here
            platforms = [*named, *([host_platform()] if native and host_platform() not in named else [])]
    try:
        routes = {**parse_engines(values.get("multiarch_engines", ""), f"{path.name}: multiarch_engines"), **routes}
    except UsageError as exc:
        report.fail(str(exc), fix)
    return platforms, routes, builder or values.get("multiarch_builder") or None


def _podman_chosen(report: Report, runtime: str | None) -> bool:
    """--runtime (else CONTAINER_RUNTIME) names podman; a runtime that is neither fails."""
    from pytest_multiarch.podman import parse_runtime

    try:
        return parse_runtime(runtime) == "podman"
    except UsageError as exc:
        report.fail(str(exc).replace("--multiarch-runtime (ini multiarch_runtime)", "--runtime"), "--runtime podman")
        return False


def _check_platforms(report: Report, engine: Engine, platforms: list[Platform], image: str | None) -> None:
    """One engine: its daemon, buildx and builder, then each of ``platforms`` on it."""
    checked = _check_engine(report, engine)
    if checked is None:
        report.skip("builder, platform and run checks: they need a working daemon and buildx")
        return
    docker, found = checked
    runnable = [p for p in platforms if _check_platform(report, found, p)]
    report.runs(platforms, runnable, image, lambda ref, platform: _check_run(report, docker, ref, platform))


def _check_engine(report: Report, engine: Engine) -> tuple[DockerClient, Capabilities] | None:
    """CLI, daemon, buildx and builder, in the order each one needs the previous."""
    cli = shutil.which("docker")
    if cli is None:
        report.fail("Docker CLI: `docker` is not on PATH", f"install Docker; {SETUP_FIX}")
        return None
    report.ok(f"Docker CLI: {cli}")
    try:
        docker = engine.cli
    except EngineError as exc:
        report.fail(f"Docker endpoint: {exc}", "`docker context ls`, then `docker context use NAME`")
        return None
    where = engine.endpoint.describe()
    try:
        info = docker.system.info()
    except cli_errors(OSError) as exc:
        fix = engine.endpoint.start_advice()
        if engine.endpoint.url == DEFAULT_SOCKET and not engine.endpoint.bound:
            fix = SETUP_FIX  # the machine may have no Docker at all: how to install it too
        report.fail(f"Docker daemon unreachable at {where}: {docker_said(exc)}", fix)
        return None
    native = f"{info.os_type or 'linux'}/{info.architecture}"
    try:
        native = str(Platform.parse(native))  # x86_64 → linux/amd64, Docker's name for it
    except UsageError:
        pass  # an arch the plugin does not model: show the daemon's own words
    report.ok(f"Docker daemon: server {info.server_version}, native {native} ({where})")
    try:
        docker.buildx.version()
    except cli_errors(OSError) as exc:
        report.fail(
            f"buildx: not available: {docker_said(exc)}",
            "Debian/Ubuntu: `apt-get install docker-buildx`; otherwise https://github.com/docker/buildx#installing",
        )
        return None
    try:
        found = inspect_engine(
            docker, where=where, local_endpoint=engine.endpoint.is_local, builder_name=engine.builder
        )
    except MultiarchError as exc:
        report.fail(f"builder: {exc}", "run `docker buildx inspect` to see the whole error")
        return None
    report.ok(f"buildx {found.buildx_version}")
    what = f"builder {found.builder_name} (driver {found.builder_driver})"
    if found.builder_platforms:
        report.ok(f"{what}: {', '.join(str(p) for p in found.builder_platforms)}")
    else:
        report.warn(f"{what}: lists no platforms", f"docker buildx inspect --bootstrap {found.builder_name}")
    return docker, found


def _check_platform(report: Report, engine: Capabilities, platform: Platform) -> bool:
    """Native, emulated or unavailable (False); on a local daemon also the binfmt handler QEMU runs through."""
    install = install_emulator_command(platform.arch)
    try:
        resolved = engine.resolve(platform)
    except PlatformUnavailable:
        report.fail(
            f"{platform}: unavailable on this {engine.native} engine (no QEMU emulator)",
            f"`{install}`, or on Debian/Ubuntu `apt-get install qemu-user-static binfmt-support` "
            "then `sudo systemctl restart docker`",
        )
        return False
    if not resolved.emulated:
        report.ok(f"{platform}: native")
        return True
    if not engine.local:
        report.ok(f"{platform}: emulated (remote daemon: its binfmt handlers are not visible here)")
        return True
    handler = describe_handler(platform)
    enable = f"`sudo update-binfmts --enable qemu-{platform.qemu_name}` or `{install}`"
    if handler is None:
        report.warn(f"{platform}: emulated, but {BINFMT_DIR}/qemu-{platform.qemu_name} is missing", enable)
    elif not binfmt_handler_enabled(platform):
        report.warn(f"{platform}: emulated, but binfmt handler {handler} is disabled", enable)
    elif "F" not in handler.rsplit("flags:", 1)[-1]:
        # Without F the kernel looks the interpreter up inside each container, where it is absent.
        report.warn(f"{platform}: emulated, binfmt handler {handler} lacks the F (fix binary) flag", enable)
    else:
        version = qemu_version(platform)
        known = known_crash(version)
        if known:
            report.warn(
                f"{platform}: emulated by {version}, binfmt handler {handler}: {known}",
                f"register another QEMU version, e.g. `docker run --privileged --rm tonistiigi/binfmt:qemu-v8.1.5 "
                f"--install {platform.arch}`, or test {platform} on a native engine (--multiarch-engine)",
            )
        else:
            shown = version if version != "unknown" else "QEMU (version unknown)"
            report.ok(f"{platform}: emulated by {shown}, binfmt handler {handler}")
    return True


def _check_run(report: Report, docker: DockerClient, image: str, platform: Platform) -> None:
    """The proof: a container of that platform starts and its ``uname -m`` is that CPU's. The
    image store is left as it was: a platform not here is pulled by digest, untagged, and
    removed after the run."""
    command = f"docker run --rm --platform {platform} {image} uname -m"
    ref, pulled = image, False
    if not _local_image_is(docker, image, platform):
        try:
            ref, pulled = gate.fetch_untagged(docker, image, platform)
        except MultiarchError as exc:
            report.fail(f"run {platform}: {exc}", f"`docker buildx imagetools inspect {image}`")
            return
    try:
        machine = _uname(docker, ref, platform)
    except cli_errors(OSError) as exc:
        reason = docker_said(exc)
        if "exec format error" in reason:
            what, fix = reason, f"install the emulator: `{install_emulator_command(platform.arch)}`"
        else:
            what, fix = reason, f"run `{command}` to see the whole error"
        report.fail(f"run {platform}: {what}", fix)
        return
    finally:
        if pulled:
            _remove_quietly(docker, ref)
    shown = f"{image}, pulled {platform} by digest and removed again" if pulled else image
    if machine in platform.machines:
        report.ok(f"run {platform}: uname -m = {machine} ({shown})")
    else:
        report.fail(
            f"run {platform}: uname -m = {machine!r}, expected {' or '.join(platform.machines)} ({shown})",
            f"check the image's platforms with `docker buildx imagetools inspect {image}`",
        )


def _remove_quietly(docker: DockerClient, ref: str) -> None:
    try:
        docker.image.remove(ref)
    except cli_errors(OSError):
        pass  # gone already, or used by a container of someone else's: leave it


def _uname(docker: DockerClient, image: str, platform: Platform) -> str:
    """``uname -m`` in a fresh container. Streamed because only then does python-on-whales
    capture stderr, so a failure carries docker's own reason instead of printing it on ours."""
    chunks = docker.run(image, ["uname", "-m"], platform=str(platform), remove=True, pull="never", stream=True)
    stdout = b"".join(line for source, line in cast(Iterable[tuple[str, bytes]], chunks) if source == "stdout")
    return stdout.decode(errors="replace").strip()


def _local_image_is(docker: DockerClient, image: str, platform: Platform) -> bool:
    """Whether ``image`` is here for ``platform``: one tag holds one platform in Docker's classic store."""
    try:
        found = docker.image.inspect(image)
    except cli_errors(OSError):
        return False
    return (found.os, found.architecture) == (platform.os, platform.arch) and (
        platform.variant is None or found.variant == platform.variant
    )


def _platform_list(text: str) -> list[Platform]:
    """argparse type for --platforms: a bad entry becomes a usage error (exit 2) naming it."""
    try:
        platforms = parse_platforms(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not platforms:
        raise argparse.ArgumentTypeError("no platform given")
    return platforms
