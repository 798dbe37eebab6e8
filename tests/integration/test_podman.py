"""--multiarch-runtime podman, end to end: real podman builds for linux/amd64 and linux/arm64,
real containers through the podman service the plugin starts, and what is left afterwards
(nothing on podman, no service process, nothing on Docker)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BUSYBOX
from pytest_multiarch.build import image_repository
from pytest_multiarch.config import ImageSpec
from tests.integration.helpers import mode, wait_for

OWNER_LABEL = "io.github.pytest-multiarch.owner"
TOKEN = "podman-test-token-0123456789"

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG GREETING
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-16 > /secret-digest \\
    && mkdir -p /www && uname -m > /www/built-on && echo "$GREETING" > /greeting
EXPOSE 8080
CMD ["sh", "-c", "echo \\"CPU Architecture: $(uname -m)\\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""

TESTS = f"""
import hashlib, subprocess

def test_http(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {{multiarch_platform.machine}}"

def test_exec_and_files(multiarch_container, multiarch_platform):
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine
    assert multiarch_container.read_file("/www/built-on").decode().strip() == multiarch_platform.machine
    assert multiarch_container.read_file("/greeting").decode().strip() == "hello from podman"
    assert multiarch_container.file_info("/www").is_dir

def test_secret(multiarch_container):
    expected = hashlib.sha256(b"{TOKEN}").hexdigest()[:16]
    assert multiarch_container.read_file("/secret-digest").decode().strip() == expected

def test_run(multiarch_run, multiarch_platform):
    assert multiarch_run("uname", "-m").stdout.strip() == multiarch_platform.machine

def test_image(multiarch_image, multiarch_platform):
    inspect = ["podman", "image", "inspect", "--format", "{{{{.Os}}}}/{{{{.Architecture}}}}", multiarch_image.id]
    loaded = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == str(multiarch_platform)
    assert multiarch_image.config.exposed_ports == ("8080/tcp",)
    assert multiarch_image.arch.cell(()) == "1/0"  # busybox, read from the export of a created container

def test_by_name_on_the_sessions_network(multiarch_container, multiarch_run, multiarch_network, multiarch_platform):
    assert multiarch_run("wget", "-qO-", "http://app:8080/").stdout.strip().endswith(multiarch_platform.machine)

def test_fails_on_purpose(multiarch_container):
    assert False, "a failing test must leave nothing behind either"
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


@pytest.fixture
def podman_project(pytester: pytest.Pytester, podman_engine: None) -> Iterator[pytest.Pytester]:
    pytester.makefile("", Dockerfile=DOCKERFILE)
    ignored = [".docker", ".cache", "*.xml", "pid", "runpytest-*", "stdout", "stderr", "started", "release"]
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


def docker_images(repository: str) -> str:
    return subprocess.run(["docker", "images", "-q", repository], capture_output=True, text=True).stdout.strip()


def without_docker(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """As on a machine with podman only: a `docker` first on PATH that fails and notes each call,
    and DOCKER_HOST pointing nowhere. Returns the file of the calls."""
    calls = folder / "docker-calls"
    (folder / "docker").write_text(f'#!/bin/sh\necho "$*" >> {calls}\necho "no docker here" >&2\nexit 127\n')
    (folder / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{folder}/no-docker.sock")
    return calls


def test_both_platforms_built_and_tested_on_podman_and_nothing_left(podman_project, monkeypatch, tmp_path_factory):
    podman_project.makepyfile(test_app=TESTS)
    monkeypatch.setenv("PODMAN_TEST_TOKEN", TOKEN)
    args = ["--multiarch-runtime", "podman", "--multiarch-secret", "id=tok,env=PODMAN_TEST_TOKEN", "--junitxml=j.xml"]
    with monkeypatch.context() as podman_only:
        calls = without_docker(podman_only, tmp_path_factory.mktemp("no-docker"))
        result = podman_project.runpytest_inprocess("-p", "no:cacheprovider", *args)
    assert not calls.exists(), calls.read_text()  # podman alone did it all
    result.assert_outcomes(passed=12, failed=2)
    out = result.stdout.str()
    assert re.search(r"^multiarch: runtime podman \d+\.\d+\.\d+ \(linux/\w+\), API at unix://", out, re.M), out
    assert re.search(r"^multiarch: runtime: podman \d+\.\d+\.\d+", out, re.M), out  # the summary
    for platform in ("linux/amd64", "linux/arm64"):
        assert re.search(rf"^{platform} +6 +1 +0 +0 +{mode(platform)} +\d+\.\d s ", out, re.M), out
    assert TOKEN not in out
    suite = {p.get("name"): p.get("value") for p in ET.parse(podman_project.path / "j.xml").iter("property")}
    assert suite["multiarch.runtime"].startswith("podman "), suite
    assert TOKEN not in (podman_project.path / "j.xml").read_text()
    assert podman_containers(os.getpid()) == [], "containers left on podman"
    assert services_of(os.getpid()) == [], "the session's podman service outlived it"
    repository = image_repository(ImageSpec(name="", context=podman_project.path, dockerfile=Path("Dockerfile")))
    assert docker_images(repository) == "", "a podman run built on Docker"

    again = podman_project.runpytest_inprocess("-p", "no:cacheprovider", *args)
    again.assert_outcomes(passed=12, failed=2)
    for platform in ("linux/amd64", "linux/arm64"):  # unchanged: the build key finds podman's images
        again.stdout.fnmatch_lines([f"{platform}*{mode(platform)}*reused*"])
    assert podman_containers(os.getpid()) == [] and services_of(os.getpid()) == []


BLOCKING_TESTS = """
import pathlib, time

def test_blocks(multiarch_container, multiarch_platform):
    pathlib.Path("started").write_text(multiarch_container.id)
    deadline = time.monotonic() + 120
    while not pathlib.Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_session_leaves_no_podman_service_and_its_containers_go(podman_project, sig):
    """SIGTERM: the session removes its containers, then stops its service. SIGKILL: nothing of
    pytest runs, yet its service ends (its pipe closed), and the next session sweeps the containers."""
    podman_project.makepyfile(test_block=BLOCKING_TESTS)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--multiarch-runtime", "podman"]
    command += ["--multiarch-platforms", "linux/amd64"]
    # In a process group of its own, signalled as a whole, as a terminal's Ctrl-C or a CI runner does.
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "start_new_session": True}
    with subprocess.Popen(command, cwd=podman_project.path, **popen) as run:
        started = podman_project.path / "started"
        wait_for(lambda: started.exists() or run.poll() is not None, "the test to get its container")
        assert started.exists(), run.stdout.read().decode() if run.stdout else ""
        assert podman_containers(run.pid), "no container of the session on podman"
        assert services_of(run.pid), "no podman service of the session"
        os.killpg(run.pid, sig)
        output = run.communicate(timeout=120)[0].decode(errors="replace")
    wait_for(lambda: not services_of(run.pid), "the service to end", timeout=30)
    if sig == signal.SIGTERM:
        assert podman_containers(run.pid) == [], output
        return
    assert podman_containers(run.pid), "SIGKILL runs no cleanup: its container is there until a sweep"
    (podman_project.path / "release").write_text("")
    after = podman_project.runpytest_inprocess("-p", "no:cacheprovider", *command[5:])
    after.assert_outcomes(passed=1)
    assert podman_containers(run.pid) == [], after.stdout.str()
    after.stdout.fnmatch_lines(["*removed 1 container(s) left by earlier pytest runs*"])


GATE_TESTS = """
def test_release(multiarch_run, multiarch_platform, multiarch_index, multiarch_image):
    assert multiarch_run("uname", "-m").stdout.strip() == multiarch_platform.machine
    assert multiarch_image.key == multiarch_index.manifests[str(multiarch_platform)]
    assert multiarch_image.arch.cell(()) == "1/0"
    print("index digest:", multiarch_index.digest)
"""


def test_release_gate_pulls_each_platform_by_digest_into_podman(pytester, podman_engine):
    """The published index (the registry's busybox base image) read with podman, each platform
    pulled by its manifest digest, run under its platform; the index digest is the registry's."""
    pytester.makepyfile(test_release=GATE_TESTS)
    expected = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", BUSYBOX, "--format", "{{json .Manifest}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    digest = json.loads(expected.stdout)["digest"]
    gate = ["--multiarch-runtime", "podman", "--multiarch-image", BUSYBOX, "--multiarch-platforms", "linux/amd64,arm64"]
    try:
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-s", *gate)
    finally:
        listed = subprocess.run(
            ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
        )
        ours = [tag for tag in listed.stdout.split() if tag.startswith("localhost/pytest-multiarch/gate-")]
        if ours:
            subprocess.run(["podman", "image", "untag", *ours], capture_output=True)
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count(f"index digest: {digest}") == 2, result.stdout.str()
    for platform in ("linux/amd64", "linux/arm64"):
        result.stdout.fnmatch_lines([f"*{platform}: testing manifest sha256:* of {BUSYBOX}"])
    assert podman_containers(os.getpid()) == [] and services_of(os.getpid()) == []


def test_the_doctor_checks_podman_and_leaves_no_service(podman_engine):
    """CONTAINER_RUNTIME=podman, as pytest_container users set it: the doctor checks podman's
    layers and runs uname -m on both platforms, starting and stopping a service of its own."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "CONTAINER_RUNTIME": "podman"}
    env.pop("CONTAINER_HOST", None)
    with subprocess.Popen(
        [sys.executable, "-m", "pytest_multiarch", "doctor", "--image", BUSYBOX],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as doctor:
        output = doctor.communicate(timeout=600)[0]
    assert doctor.returncode == 0, output
    for pattern in (
        r"^ok   podman: podman \d+\.\d+\.\d+, native linux/\w+, (rootful|rootless: host ports >= 1024 only)",
        r"^ok   podman API: ",
        r"^ok   run linux/amd64: uname -m = x86_64",
        r"^ok   run linux/arm64: uname -m = aarch64",
    ):
        assert re.search(pattern, output, re.M), f"no line matching {pattern!r} in:\n{output}"
    assert "Docker" not in output, output
    assert services_of(doctor.pid) == []


ROOTLESS_USER = os.environ.get("MULTIARCH_ROOTLESS_USER", "multiarch-rootless")
ROOTLESS_TESTS = """
def test_http(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {multiarch_platform.machine}"

def test_exec_and_run(multiarch_container, multiarch_run, multiarch_platform):
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine
    assert multiarch_run("uname", "-m").stdout.strip() == multiarch_platform.machine
"""


def as_user(user: str, *command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` run as ``user`` with exactly ``env`` (runuser, as root)."""
    settings = [f"{name}={value}" for name, value in env.items()]
    full = ["runuser", "-u", user, "--", "env", "-i", *settings, *command]
    return subprocess.run(full, cwd=cwd, capture_output=True, text=True, timeout=900)


def test_rootless_podman_builds_and_runs_both_platforms(podman_engine, tmp_path_factory):
    """As an unprivileged user (set up by setup-podman.sh): podman's rootless storage and network,
    a service of the session's own in the user's runtime dir, ports published on high host ports."""
    import pwd
    import shutil
    import site

    if os.geteuid() != 0:
        pytest.skip("podman-backed test: the rootless test switches to its user, which needs root")
    try:
        user = pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.skip(f"podman-backed test: no user {ROOTLESS_USER}; run `bash scripts/setup-podman.sh` as root")
    runtime = Path(f"/run/user/{user.pw_uid}")  # the user's own, as a login would make it
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(runtime, user.pw_uid, user.pw_gid)
    project = Path(tempfile.mkdtemp(prefix="multiarch-rootless-"))
    # Port 80: a rootless podman binds no host port below 1024, yet the app serves there inside.
    dockerfile = DOCKERFILE.replace("RUN --mount=type=secret,id=tok ", "RUN ").replace("8080", "80")
    (project / "Dockerfile").write_text(dockerfile)
    (project / "pytest.ini").write_text(
        f"[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n"
        f"multiarch_build_args =\n    BASE_IMAGE={BUSYBOX}\n    GREETING=rootless\n"
    )
    (project / "test_app.py").write_text(ROOTLESS_TESTS)
    for path in [project, *project.iterdir()]:
        os.chown(path, user.pw_uid, user.pw_gid)
    root = Path(__file__).resolve().parents[2]
    env = {
        "HOME": user.pw_dir,
        "XDG_RUNTIME_DIR": str(runtime),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(root), *site.getsitepackages()]),
    }
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = [p for p in (sys.executable, "/usr/bin/python3", shutil.which("python3")) if p]
    usable = [
        p
        for p in dict.fromkeys(found)
        if as_user(
            ROOTLESS_USER, p, "-c", "import sys; print('%d.%d' % sys.version_info[:2])", env=env, cwd=project
        ).stdout.strip()
        == version
    ]
    if not usable:
        pytest.skip(f"podman-backed test: {ROOTLESS_USER} can run no Python {version} ({', '.join(found)})")
    try:
        done = as_user(
            ROOTLESS_USER, usable[0], "-m", "pytest", "-p", "no:cacheprovider", "--multiarch-runtime", "podman",
            env=env, cwd=project,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert re.search(r"^multiarch: runtime: podman \S+ \(linux/\w+, rootless\)$", output, re.M), output
        assert re.search(r"^linux/arm64 +2 +0 +0 +0 ", output, re.M), output
        low = "container ready in * s at http://127.0.0.1:*/ (rootless podman: container port 80 is published on a host"
        assert fnmatch.filter(output.splitlines(), f"*{low}*"), output
        left = as_user(ROOTLESS_USER, "podman", "ps", "-aq", "--filter", f"label={OWNER_LABEL}", env=env, cwd=project)
        assert left.stdout.split() == [], left
        assert not _processes_of(user.pw_uid, "system service")
    finally:
        images = as_user(ROOTLESS_USER, "podman", "images", "-q", "--filter", "label=io.github.pytest-multiarch.slot",
                         env=env, cwd=project).stdout.split()  # fmt: skip
        if images:
            as_user(ROOTLESS_USER, "podman", "image", "rm", "--force", *set(images), env=env, cwd=project)
        shutil.rmtree(project, ignore_errors=True)


def _processes_of(uid: int, text: str) -> list[str]:
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
