"""Fixtures for the plugin's own tests: a real engine check and small busybox projects."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# docker, python_on_whales and testcontainers are loaded here, before any in-process pytester
# run: the plugin loads them in background threads (preflight, builds), which can outlive such a
# run, and pytester then drops the modules that run imported while a thread may be importing them.
import docker  # noqa: F401
import pytest
import python_on_whales  # noqa: F401
import testcontainers.core.container  # noqa: F401

from pytest_multiarch.names import SLOT_LABEL

if TYPE_CHECKING:
    from tests.integration.helpers import PrivateEngine

REGISTRY = os.environ.get("MULTIARCH_REGISTRY", "127.0.0.1:5000")
BUSYBOX = f"{REGISTRY}/multiarch/busybox:1"
PYTHON = f"{REGISTRY}/multiarch/python:3"
PLATFORMS = "linux/amd64,linux/arm64"

# A small web app: / answers with `uname -m` read at start, so it proves the runtime platform.
BUSYBOX_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /www && uname -m > /www/built-on
EXPOSE 8080
CMD ["sh", "-c", "echo \\"CPU Architecture: $(uname -m)\\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""

SETUP_HINT = "run `bash scripts/setup-docker.sh` first"


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        return "the Docker daemon does not answer"
    for ref in (BUSYBOX,):
        found = subprocess.run(["docker", "buildx", "imagetools", "inspect", ref], capture_output=True, text=True)
        if found.returncode != 0:
            return f"base image {ref} is missing"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip (fail under CI=true, see ../conftest.py) when the engine or base images are missing."""
    problem = _engine_problem()
    if problem:
        pytest.skip(f"Docker-backed test: {problem}; {SETUP_HINT}")


@pytest.fixture
def busybox_project(pytester: pytest.Pytester, docker_engine: None) -> pytest.Pytester:
    """A pytester project with the busybox app's Dockerfile and both platforms configured."""
    pytester.makefile("", Dockerfile=BUSYBOX_DOCKERFILE)
    # pytester points HOME at the project, so the docker CLI writes .docker/ and the plugin its
    # engine cache (.cache/) into the context, and runpytest_subprocess its folders and output.
    ignored = [".docker", ".cache", "*.xml", "pid", "images-*", "runpytest-*", "stdout", "stderr"]
    pytester.makefile("", **{".dockerignore": "\n".join(ignored) + "\n"})
    pytester.makeini(
        f"""
        [pytest]
        multiarch_platforms = {PLATFORMS}
        multiarch_build_args = BASE_IMAGE={BUSYBOX}
        """
    )
    return pytester


REMOTE_ENGINE_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "remote-engine.sh"


@pytest.fixture(scope="session")
def remote_engine(docker_engine: None) -> dict[str, str]:
    """The second engine standing in for a remote host (scripts/remote-engine.sh): its tcp:// and
    ssh:// endpoints, and the PATH entry whose ssh wrapper knows the key. Started if it is not
    running (setup.sh starts it before any container); skipped (failed under CI=true) otherwise."""
    done = subprocess.run(["bash", str(REMOTE_ENGINE_SCRIPT), "status"], capture_output=True, text=True)
    if done.returncode != 0:
        done = subprocess.run(["bash", str(REMOTE_ENGINE_SCRIPT), "start"], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"Docker-backed test: the second engine does not start: {done.stderr.strip()[-300:]}")
    env = subprocess.run(["bash", str(REMOTE_ENGINE_SCRIPT), "env"], capture_output=True, text=True, check=True)
    found = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines() if "=" in line)
    return found


@pytest.fixture
def private_engine(docker_engine: None) -> Iterator[PrivateEngine]:
    """A dockerd of the test's own (tests/integration/helpers.py), started; stopped and its state
    deleted at the end (also after a failed start or a kill: the script ends what is left of it
    by its state dir and cgroup)."""
    from tests.integration.helpers import PrivateEngine

    engine = PrivateEngine(REMOTE_ENGINE_SCRIPT)
    try:
        engine("start")
        yield engine
    finally:
        engine("stop", "--purge")
        shutil.rmtree(engine.state, ignore_errors=True)


def shared_by(item: pytest.Item) -> str | None:
    """What on this machine ``item`` cannot share with a test running beside it (under
    pytest-xdist, scripts/run-tests.sh, or in another test session): the private engine (one
    address, bridge and state dir), podman's containers (a test lists all of the plugin's), or the
    --multiarch-reuse containers (a test compares all of them before and after). None: it runs
    beside anything."""
    fixtures = getattr(item, "fixturenames", ())
    if "private_engine" in fixtures:
        return "private-engine"
    if "podman_engine" in fixtures:
        return "podman"
    if item.get_closest_marker("leaves_containers") is not None:
        return "leaves-containers"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "docker_engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def _one_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that share something on the machine (``shared_by``) run one after another: each
    holds a lock file of its group from before its first function-scoped fixture (autouse ones
    come first) to after its last. A lock, not xdist's ``--dist loadgroup``: with pytest 9.2,
    xdist 3.8's groups are silently ignored (it renames ``item._nodeid``, which pytest no longer
    reads), and a lock also holds against a second test session on this machine."""
    group = shared_by(request.node)
    if group is None:
        yield
        return
    from filelock import FileLock

    with FileLock(Path(tempfile.gettempdir()) / f"pytest-multiarch-tests-{group}.lock"):
        yield


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "leaves_containers(why): the test's own pytest sessions leave containers on purpose (--multiarch-reuse, "
        "a killed run); the test removes them itself before it ends",
    )


@pytest.fixture(autouse=True)
def _no_user_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin's caches (the engine's capabilities, early-start records) go to each pytester
    project's HOME: an XDG_CACHE_HOME set for the whole run would share them between tests, and a
    test putting a docker CLI shim in front would find the engine as the real CLI saw it."""
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


@pytest.fixture(autouse=True)
def _no_containers_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Around every Docker-backed test: no container of its own pytest sessions (in this process,
    in a subprocess, an xdist worker or a release gate) is left on either engine when the test
    ends, nor when each of its subprocess sessions ends (tests marked leaves_containers excepted,
    there). What is found is removed, and fails the test. See leftovers.py."""
    if request.node.get_closest_marker("docker") is None:
        yield
        return
    from tests.leftovers import LOCAL, REMOTE, Watch, answering

    leaving = request.node.get_closest_marker("leaves_containers") is not None
    watch = Watch(answering([LOCAL, REMOTE]), sessions_may_leave=leaving)
    watch.start()
    yield
    problems = watch.stop()
    if problems:
        pytest.fail("containers left behind (now removed):\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _remove_test_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Remove the images this session's pytester projects built, and only those: another test
    session may be running on the same engine (their repositories end in a hash of the
    project's folder, see build.image_repository)."""
    yield
    if shutil.which("docker") is None:
        return
    base = tmp_path_factory.getbasetemp()
    ours = {hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8] for path in _folders(base, depth=3)}
    listed = subprocess.run(
        [
            "docker",
            "image",
            "ls",
            "--filter",
            f"label={SLOT_LABEL}",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
        capture_output=True,
        text=True,
    )
    tags = [
        tag
        for tag in listed.stdout.split()
        if tag.startswith("pytest-multiarch/test-") and tag.split(":")[0].rsplit("-", 1)[-1] in ours
    ]
    if tags:
        subprocess.run(["docker", "image", "rm", "--force", *tags], capture_output=True)


def _folders(root: Path, depth: int) -> Iterator[Path]:
    yield root
    if depth > 0:
        for child in root.iterdir() if root.is_dir() else ():
            if child.is_dir() and not child.is_symlink():
                yield from _folders(child, depth - 1)
