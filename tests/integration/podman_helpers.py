"""What the podman tests share: the app's Dockerfile, the podman_engine fixture, and what a
session may have left on podman (containers, a service, its folder, a user's processes)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BUSYBOX
from pytest_multiarch.build import image_repository
from pytest_multiarch.config import ImageSpec

OWNER_LABEL = "io.github.pytest-multiarch.owner"

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG GREETING
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-16 > /secret-digest \\
    && mkdir -p /www && uname -m > /www/built-on && echo "$GREETING" > /greeting
EXPOSE 8080
CMD ["sh", "-c", "echo \\"CPU Architecture: $(uname -m)\\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""


def _podman_problem() -> str | None:
    try:
        done = subprocess.run(["podman", "info", "--format", "json"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"podman does not run ({exc})"
    if done.returncode != 0:
        return f"`podman info` fails: {done.stderr.strip()[-200:]}"
    return None


@pytest.fixture(scope="session")
def podman_engine(docker_engine: None) -> None:
    """Skip (fail under CI=true: these tests are marked docker) when podman is missing."""
    problem = _podman_problem()
    if problem:
        pytest.skip(f"podman-backed test: {problem}; run `bash scripts/setup-podman.sh` first")


@pytest.fixture
def podman_project(pytester: pytest.Pytester, podman_engine: None) -> Iterator[pytest.Pytester]:
    pytester.makefile("", Dockerfile=DOCKERFILE)
    ignored = [".docker", ".cache", "*.xml", "pid", "runpytest-*", "stdout", "stderr", "started", "release"]
    ignored += ["images-*", "out", "*.json"]  # what the tests write: not the image's
    pytester.makefile("", **{".dockerignore": "\n".join(ignored) + "\n"})
    pytester.makeini(
        f"""
        [pytest]
        multiarch_platforms = linux/amd64, linux/arm64
        multiarch_build_args =
            BASE_IMAGE={BUSYBOX}
            GREETING=hello from podman
        """
    )
    yield pytester
    repository = image_repository(ImageSpec(name="", context=pytester.path, dockerfile=pytester.path / "Dockerfile"))
    listed = subprocess.run(["podman", "images", "-q", f"localhost/{repository}"], capture_output=True, text=True)
    if listed.stdout.split():
        subprocess.run(["podman", "image", "rm", "--force", *set(listed.stdout.split())], capture_output=True)


def podman_containers(owner_pid: int | None = None) -> list[str]:
    """Ids of the plugin's containers on podman (of one pytest process when ``owner_pid``)."""
    listed = subprocess.run(
        ["podman", "ps", "-a", "--format", "json", "--filter", f"label={OWNER_LABEL}"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(listed.stdout or "[]")
    return [
        entry["Id"]
        for entry in found
        if owner_pid is None or (entry.get("Labels") or {}).get(OWNER_LABEL, "").endswith(f":{owner_pid}")
    ]


def services_of(pid: int) -> list[str]:
    """Command lines of running processes that belong to a podman service pytest ``pid`` started
    (its private folder is named after that pid), and the folders left."""
    marker = f"pytest-multiarch-podman-{pid}-"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found + [str(p) for p in Path(tempfile.gettempdir()).glob(f"{marker}*")]


def processes_of(uid: int, text: str) -> list[str]:
    """Command lines of ``uid``'s processes that hold ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if text in cmdline:
                    found.append(cmdline)
        except OSError:
            continue
    return found


def without_docker(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """As on a machine with podman only: a `docker` first on PATH that fails and notes each call,
    and DOCKER_HOST pointing nowhere. Returns the file of the calls."""
    calls = folder / "docker-calls"
    (folder / "docker").write_text(f'#!/bin/sh\necho "$*" >> {calls}\necho "no docker here" >&2\nexit 127\n')
    (folder / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{folder}/no-docker.sock")
    return calls


def untag_gate_images() -> None:
    """The per-platform tags a gate left (its images stay, as pulled base images do)."""
    listed = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
    )
    ours = [tag for tag in listed.stdout.split() if tag.startswith("localhost/pytest-multiarch/gate-")]
    for tag in ours:  # `podman image untag IMAGE NAME`: that one name
        subprocess.run(["podman", "image", "untag", tag, tag], capture_output=True)
