"""Functions and test-source snippets the integration tests share (a plain module, not a conftest)."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess

import pytest

OWNER_LABEL = "io.github.pytest-multiarch.owner"


# What the engine says a loaded image is (its config's os/architecture/variant), for test sources:
# the plugin's own BuiltImage.platform is only the platform it was asked for.
LOADED_PLATFORM_SOURCE = """
import subprocess
from pytest_multiarch import Platform

def loaded_platform(image):
    inspect = ["docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}/{{.Variant}}", image.id]
    loaded = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip().rstrip("/")
    return Platform.parse(loaded)
"""

APP_TESTS = """
import pytest
from loaded import loaded_platform

def test_root(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {multiarch_platform.machine}"

def test_exec(multiarch_container, multiarch_platform):
    assert multiarch_container.exec("cat /www/built-on").strip() == multiarch_platform.machine
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine

def test_image(multiarch_image, multiarch_platform):
    assert multiarch_image.platform == multiarch_platform
    assert loaded_platform(multiarch_image) == multiarch_platform
    assert multiarch_image.tag.endswith(multiarch_platform.slug + "-" + multiarch_image.key[:16])

def test_not_parametrized():
    pass
"""


def containers_of(owner: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={OWNER_LABEL}={owner}"], capture_output=True, text=True
    )
    return out.stdout.split()


def reuse_containers() -> set[str]:
    """Ids of all --multiarch-reuse containers on the engine."""
    listed = ["docker", "ps", "-aq", "--no-trunc", "--filter", "label=io.github.pytest-multiarch.reuse-slot"]
    return set(subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split())


def declare_app_twice(project: pytest.Pytester) -> None:
    """One Dockerfile with stages debug and prod, and two folders whose conftests declare "app"
    with either target; each folder's test checks it got its own stage."""
    project.makefile(
        "",
        Dockerfile="""\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE} AS debug
        RUN echo debug > /stage
        CMD ["sleep", "600"]
        FROM ${BASE_IMAGE} AS prod
        RUN echo prod > /stage
        CMD ["sleep", "600"]
        """,
    )
    for stage in ("debug", "prod"):
        folder = project.mkpydir(f"tests_{stage}")
        declare = f'app_image, app_container, _ = multiarch_fixtures("app", target="{stage}")'
        (folder / "conftest.py").write_text(f"from pytest_multiarch import multiarch_fixtures\n\n{declare}\n")
        check = f"assert app_container.exec(['cat', '/stage']).strip() == '{stage}'"
        (folder / f"test_{stage}.py").write_text(f"def test_stage(app_container):\n    {check}\n")


# running.py for generated test projects: is a container running (by id)?
RUNNING_SOURCE = """
import subprocess

def running(container_id):
    out = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"id={container_id}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip() != ""
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in this process and check that the plugin removed every container it started."""
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
    assert containers_of(f"{socket.gethostname()}:{os.getpid()}") == []
    return result


SLOW_COLLECTION = """
import os, time
from pathlib import Path

def pytest_collection_finish(session):
    time.sleep(float(os.environ.get("SLOW_COLLECTION", "0")))
    Path("images-collected-at").write_text(str(time.time()))
"""


def unix_time(docker_time: str) -> float:
    """``2026-11-23T18:40:01.123456789Z`` (the engine's nanoseconds cut to microseconds)."""
    return datetime.datetime.fromisoformat(docker_time[:26].rstrip("Z") + "+00:00").timestamp()


def docker_cli_wrapper(folder, *, no_buildx: bool = False, hide_platform: str | None = None) -> str:
    """A `docker` in front of the real one that behaves like a machine without buildx, or like a
    remote daemon whose builder cannot run ``hide_platform``. Returns a PATH value."""
    real = shutil.which("docker")
    script = ["#!/bin/sh"]
    if no_buildx:
        script.append("""if [ "$1" = buildx ]; then echo "docker: 'buildx' is not a docker command." >&2; exit 1; fi""")
    if hide_platform:
        script += [
            # the builder does not list it, and the daemon looks remote (another host name), so
            # this kernel's binfmt_misc is not consulted
            f"""if [ "$1" = buildx ] && {{ [ "$2" = inspect ] || [ "$2" = ls ]; }}; then {real} "$@" | """
            f"""sed 's#{hide_platform}, ##g; s#, {hide_platform}##g; """
            f"""s#"{hide_platform}",##g; s#,"{hide_platform}"##g'; """
            """exit; fi""",
            f"""if [ "$1" = info ] || [ "$2" = info ]; then {real} "$@" | """
            f"""sed 's/"Name":"[^"]*"/"Name":"elsewhere"/g'; exit; fi""",
        ]
    script.append(f'exec {real} "$@"')
    bin_dir = folder / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("\n".join(script) + "\n")
    (bin_dir / "docker").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
