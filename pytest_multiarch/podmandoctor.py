"""``python -m pytest_multiarch doctor --runtime podman``: podman's layers, one line each.

The podman CLI, ``podman info`` (version, native platform, rootless, buildah), the API socket
the plugin would use (podman's own, ``CONTAINER_HOST``, or a service of its own, started and
stopped here), each platform's emulator, and a real ``podman run --platform P IMAGE uname -m``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_multiarch.errors import MultiarchError
from pytest_multiarch.podman import SETUP_HINT, inspect_podman, locate

if TYPE_CHECKING:
    from pytest_multiarch.doctor import Report
    from pytest_multiarch.platforms import Platform
    from pytest_multiarch.preflight import Capabilities

SOCKET_FIX = (
    "check `podman info`; or start podman's service (`systemctl --user start podman.socket`) and set CONTAINER_HOST"
)


def check_podman(
    report: Report,
    platforms: list[Platform],
    image: str | None,
    check_platform: Callable[[Report, Capabilities, Platform], bool],
) -> None:
    """Every podman check, in the order each one needs the one before; ``check_platform`` is the
    doctor's own (native, emulated and its binfmt handler, or unavailable)."""
    found = _check_cli(report)
    if found is None:
        report.skip("socket, platform and run checks: they need a working podman")
        return
    _check_socket(report)
    runnable = [p for p in platforms if check_platform(report, found, p)]
    report.runs(platforms, runnable, image, lambda ref, platform: _check_run(report, ref, platform))


def _check_cli(report: Report) -> Capabilities | None:
    cli = shutil.which("podman")
    if cli is None:
        report.fail("podman CLI: `podman` is not on PATH", SETUP_HINT)
        return None
    report.ok(f"podman CLI: {cli}")
    try:
        found = inspect_podman(["podman"], local=True)
    except MultiarchError as exc:
        report.fail(f"podman: {exc}", "run `podman info` to see the whole error")
        return None
    mode = "rootless: host ports >= 1024 only" if found.rootless else "rootful"
    report.ok(f"podman: {found.server_version}, native {found.native}, {mode}, builds with {found.buildx_version}")
    return found


def _check_socket(report: Report) -> None:
    """The Docker-compatible API the tests would use answers (a service of the doctor's own,
    when none runs, stopped again at once)."""
    try:
        url, service = locate()
    except MultiarchError as exc:
        report.fail(f"podman API: {exc}", SOCKET_FIX)
        return
    if service is None:
        report.ok(f"podman API: {url} answers")
        return
    try:
        service.start()
    except MultiarchError as exc:
        report.fail(f"podman API: {exc}", SOCKET_FIX)
        return
    finally:
        service.stop()
    report.ok("podman API: no service runs; the plugin starts `podman system service` of its own (it answered)")


def _check_run(report: Report, image: str, platform: Platform) -> None:
    """``uname -m`` of a fresh container of that platform (podman pulls the platform it needs)."""
    command = ["podman", "run", "--rm", "--platform", str(platform), image, "uname", "-m"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        report.fail(f"run {platform}: {exc}", f"run `{' '.join(command)}` to see the whole error")
        return
    machine = done.stdout.strip()
    if done.returncode != 0:
        said = next((ln for ln in reversed(done.stderr.splitlines()) if ln.strip()), "no output")
        report.fail(f"run {platform}: {said.removeprefix('Error: ')}", f"run `{' '.join(command)}`")
    elif machine in platform.machines:
        report.ok(f"run {platform}: uname -m = {machine} ({image})")
    else:
        report.fail(
            f"run {platform}: uname -m = {machine!r}, expected {' or '.join(platform.machines)} ({image})",
            f"check the image's platforms with `podman manifest inspect {image}`",
        )
