"""--multiarch-runtime podman, end to end: real podman builds for linux/amd64 and linux/arm64,
real containers through the podman service the plugin starts, and what is left afterwards
(nothing on podman, no service process, nothing on Docker)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import BUSYBOX
from pytest_multiarch.build import image_repository
from pytest_multiarch.config import ImageSpec
from tests.integration import podman_helpers
from tests.integration.helpers import mode, wait_for
from tests.integration.podman_helpers import (
    DOCKERFILE,
    podman_containers,
    services_of,
    untag_gate_images,
    without_docker,
)

podman_engine = podman_helpers.podman_engine  # the fixtures, for this module
podman_project = podman_helpers.podman_project

TOKEN = "podman-test-token-0123456789"

TESTS = f"""
import hashlib, subprocess

def test_http(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {{multiarch_platform.machine}}"

def test_exec_and_files(multiarch_container, multiarch_platform):
    # podman 4 sometimes loses a short exec's output (containers/podman#9096): asked twice
    machine = multiarch_container.exec(["uname", "-m"]).strip() or multiarch_container.exec(["uname", "-m"]).strip()
    assert machine == multiarch_platform.machine
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


def docker_images(repository: str) -> str:
    return subprocess.run(["docker", "images", "-q", repository], capture_output=True, text=True).stdout.strip()


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
    engines = {
        p.get("value") for p in ET.parse(podman_project.path / "j.xml").iter("property") if p.get("name") == "engine"
    }
    assert engines == {"podman"}, engines  # each test's engine, not the session's private socket
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


def podman_tags(repository: str) -> list[str]:
    listed = subprocess.run(
        ["podman", "images", "--format", "{{.Tag}}", f"localhost/{repository}"], capture_output=True, text=True
    )
    return sorted(listed.stdout.split())


def test_a_change_rebuilds_on_podman_and_the_older_builds_are_pruned(podman_project):
    podman_project.makepyfile(test_app="def test_x(multiarch_image): pass")
    podman_project.makefile("", Dockerfile=DOCKERFILE + "COPY extra.txt /extra.txt\n")
    podman_project.makefile(".txt", extra="what the image holds")
    args = ["-p", "no:cacheprovider", "--multiarch-runtime", "podman", "--multiarch-secret", "id=tok,env=HOME"]
    podman_project.runpytest_inprocess(*args).assert_outcomes(passed=2)
    repository = image_repository(ImageSpec(name="", context=podman_project.path, dockerfile=Path("Dockerfile")))
    first = podman_tags(repository)
    assert [tag.split("-")[1] for tag in first] == ["amd64", "arm64"], first
    podman_project.makefile(".txt", extra="what the image holds, changed")  # a file the image copies
    changed = podman_project.runpytest_inprocess(*args)
    changed.assert_outcomes(passed=2)
    changed.stdout.no_fnmatch_line("linux/*reused*")
    now = podman_tags(repository)  # the builds the change replaced went when the session ended
    assert [tag.split("-")[1] for tag in now] == ["amd64", "arm64"] and set(now).isdisjoint(first), now


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
        untag_gate_images()
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


def test_a_single_platform_image_gates_its_platform_and_errors_the_other(pytester, podman_engine):
    """Its manifest names no platform: podman reads it from the image's config."""
    manifests = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", BUSYBOX, "--format", "{{json .Manifest}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    arm64 = next(
        m["digest"] for m in json.loads(manifests.stdout)["manifests"] if m["platform"]["architecture"] == "arm64"
    )
    ref = f"{BUSYBOX.rsplit(':', 1)[0]}@{arm64}"
    pytester.makepyfile(
        test_release=GATE_TESTS.replace("multiarch_index, ", "")
        .replace("    assert multiarch_image.key == multiarch_index.manifests[str(multiarch_platform)]\n", "")
        .replace('    print("index digest:", multiarch_index.digest)\n', "")
    )
    gate = ["--multiarch-runtime", "podman", "--multiarch-image", ref, "--multiarch-platforms", "linux/amd64,arm64"]
    try:
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *gate)
    finally:
        untag_gate_images()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [f"*has no linux/amd64 image: its single-platform manifest ({arm64}) holds linux/arm64*"]
    )
    assert podman_containers(os.getpid()) == []
