"""--multiarch-runtime podman as an unprivileged user (made by scripts/setup-podman.sh): podman's
rootless storage and network, a service of the session's own in the user's runtime dir, ports
published on high host ports, both platforms."""

from __future__ import annotations

import fnmatch
import os
import pwd
import re
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BUSYBOX
from tests.integration import podman_helpers
from tests.integration.podman_helpers import (
    DOCKERFILE,
    OWNER_LABEL,
    processes_of,
)

podman_engine = podman_helpers.podman_engine  # the fixture, for this module

ROOTLESS_USER = os.environ.get("MULTIARCH_ROOTLESS_USER", "multiarch-rootless")
ROOTLESS_TESTS = """
def test_http(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {multiarch_platform.machine}"

def test_exec_and_run(multiarch_container, multiarch_run, multiarch_platform):
    # podman 4 sometimes loses a short exec's output (containers/podman#9096): asked twice
    machine = multiarch_container.exec(["uname", "-m"]).strip() or multiarch_container.exec(["uname", "-m"]).strip()
    assert machine == multiarch_platform.machine
    assert multiarch_run("uname", "-m").stdout.strip() == multiarch_platform.machine
"""
# Port 80: a rootless podman binds no host port below 1024, yet the app serves there inside.
LOW_PORT_NOTE = (
    "container ready in * s at http://127.0.0.1:*/ (rootless podman: container port 80 is published on a host"
)


def as_user(user: str, *command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` run as ``user`` with exactly ``env`` (runuser, as root)."""
    settings = [f"{name}={value}" for name, value in env.items()]
    full = ["runuser", "-u", user, "--", "env", "-i", *settings, *command]
    return subprocess.run(full, cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.fixture
def rootless() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("podman-backed test: the rootless test switches to its user, which needs root")
    try:
        return pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.skip(f"podman-backed test: no user {ROOTLESS_USER}; run `bash scripts/setup-podman.sh` as root")


def rootless_project(user: pwd.struct_passwd) -> Path:
    """The app serving on port 80, its ini and tests, in a folder the user owns."""
    project = Path(tempfile.mkdtemp(prefix="multiarch-rootless-"))
    dockerfile = DOCKERFILE.replace("RUN --mount=type=secret,id=tok ", "RUN ").replace("8080", "80")
    (project / "Dockerfile").write_text(dockerfile)
    (project / "pytest.ini").write_text(
        f"[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n"
        f"multiarch_build_args =\n    BASE_IMAGE={BUSYBOX}\n    GREETING=rootless\n"
    )
    (project / "test_app.py").write_text(ROOTLESS_TESTS)
    for path in [project, *project.iterdir()]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return project


def user_environment(user: pwd.struct_passwd) -> dict[str, str]:
    """What a login of ``user`` would have (its runtime dir made as a login would), and this
    checkout and its virtualenv's packages on PYTHONPATH."""
    runtime = Path(f"/run/user/{user.pw_uid}")
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(runtime, user.pw_uid, user.pw_gid)
    root = Path(__file__).resolve().parents[2]
    return {
        "HOME": user.pw_dir,
        "XDG_RUNTIME_DIR": str(runtime),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(root), *site.getsitepackages()]),
    }


def user_python(env: dict[str, str], project: Path) -> str:
    """A Python of this one's version that the user can run (this one may be in root's home)."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = [p for p in (sys.executable, "/usr/bin/python3", shutil.which("python3")) if p]
    for python in dict.fromkeys(found):
        asked = as_user(
            ROOTLESS_USER, python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])", env=env, cwd=project
        )
        if asked.stdout.strip() == version:
            return python
    pytest.skip(f"podman-backed test: {ROOTLESS_USER} can run no Python {version} ({', '.join(found)})")


def test_rootless_podman_builds_and_runs_both_platforms(podman_engine, rootless):
    project = rootless_project(rootless)
    env = user_environment(rootless)
    python = user_python(env, project)
    try:
        done = as_user(
            ROOTLESS_USER, python, "-m", "pytest", "-p", "no:cacheprovider", "--multiarch-runtime", "podman",
            env=env, cwd=project,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert re.search(r"^multiarch: runtime: podman \S+ \(linux/\w+, rootless\)$", output, re.M), output
        assert re.search(r"^linux/arm64 +2 +0 +0 +0 ", output, re.M), output
        assert fnmatch.filter(output.splitlines(), f"*{LOW_PORT_NOTE}*"), output
        left = as_user(ROOTLESS_USER, "podman", "ps", "-aq", "--filter", f"label={OWNER_LABEL}", env=env, cwd=project)
        assert left.stdout.split() == [], left
        assert not processes_of(rootless.pw_uid, "system service")
    finally:
        images = as_user(ROOTLESS_USER, "podman", "images", "-q", "--filter", "label=io.github.pytest-multiarch.slot",
                         env=env, cwd=project).stdout.split()  # fmt: skip
        if images:
            as_user(ROOTLESS_USER, "podman", "image", "rm", "--force", *set(images), env=env, cwd=project)
        shutil.rmtree(project, ignore_errors=True)
