"""The evidence report on podman: a build run names podman's images per platform, a release gate
(the local registry's index, by digest) binds the registry's index and manifest digests as on
Docker, and `python -m pytest_multiarch verify` accepts that report, also with podman alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import BUSYBOX, REGISTRY
from pytest_multiarch import Platform
from pytest_multiarch.gate import repository_of
from tests.integration import podman_helpers
from tests.integration.helpers import mode
from tests.integration.podman_helpers import podman_containers, services_of, untag_gate_images, without_docker
from tests.integration.test_evidence import check_report, check_statement, registry_index

podman_engine = podman_helpers.podman_engine  # the fixtures, for this module
podman_project = podman_helpers.podman_project

UNAME = """
def test_uname(multiarch_run, multiarch_platform):
    assert multiarch_run("uname", "-m").stdout.strip() == multiarch_platform.machine
"""


def podman_image_id(ref: str) -> str:
    done = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return "sha256:" + done.stdout.strip().removeprefix("sha256:")


def check_platforms(found: dict, passed: str) -> None:
    for platform in ("linux/amd64", "linux/arm64"):
        entry = found[platform]
        assert (entry["result"], entry["passed"], entry["failed"]) == ("PASSED", [f"{passed}[{platform}]"], [])
        assert (entry["engine"], entry["mode"]) == ("podman", mode(platform)), entry
        emulated = mode(platform) == "emulated"
        assert (entry["emulator"] or "").startswith("QEMU ") if emulated else entry["emulator"] is None, entry
        assert entry["arch_check"] == {"elf_files": 1, "foreign": 0}, entry  # busybox


def test_a_podman_build_run_reports_podmans_image_per_platform(podman_project):
    podman_project.makepyfile(test_app=UNAME)
    args = ["--multiarch-runtime", "podman", "--multiarch-secret", "id=tok,env=HOME", "--multiarch-report=r.json"]
    podman_project.runpytest_subprocess(*args).assert_outcomes(passed=2)
    found = check_report(podman_project.path / "r.json")
    assert found["report"]["image"] == {"ref": None, "digest": None, "source": "build"}
    assert found["report"]["complete"] is True
    check_platforms(found, "test_app.py::test_uname")
    ids = {found[p]["image_id"] for p in ("linux/amd64", "linux/arm64")}
    assert len(ids) == 2, found
    for platform in ("linux/amd64", "linux/arm64"):  # the id podman has for that platform's build
        arch = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Architecture}}", found[platform]["image_id"]],
            capture_output=True,
            text=True,
        )
        assert arch.stdout.strip() == Platform.parse(platform).arch, (platform, arch.stderr)
        assert podman_image_id(found[platform]["image_id"]) == found[platform]["image_id"]


def _verify(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_multiarch", "verify", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=dict(os.environ))


def test_a_podman_release_gate_reports_the_registrys_digests_and_verify_accepts_it(
    pytester, podman_engine, monkeypatch, tmp_path_factory
):
    _, busybox = registry_index(BUSYBOX)  # an index of its amd64 and arm64 manifests alone, pushed:
    tag = f"{REGISTRY}/pytest-multiarch-test/podman-evidence:{os.getpid()}"  # verify wants every platform
    parts = [f"{repository_of(BUSYBOX)}@{busybox[p]}" for p in ("linux/amd64", "linux/arm64")]
    made = ["docker", "buildx", "imagetools", "create", "-t", tag, *parts]
    subprocess.run(made, capture_output=True, check=True)
    index_digest, manifests = registry_index(tag)
    by_digest = f"{repository_of(tag)}@{index_digest}"  # as the release recipe tests what it pushed
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n")
    pytester.makepyfile(test_release=UNAME)
    gate = ["--multiarch-runtime", "podman", f"--multiarch-image={by_digest}"]
    try:
        result = pytester.runpytest_subprocess(*gate, "--multiarch-report=report.json", "--multiarch-attest=att")
    finally:
        untag_gate_images()
    result.assert_outcomes(passed=2)
    found = check_report(pytester.path / "report.json")
    assert found["report"]["image"] == {"ref": by_digest, "digest": index_digest, "source": "registry"}
    check_platforms(found, "test_release.py::test_uname")
    for platform in ("linux/amd64", "linux/arm64"):
        assert found[platform]["manifest_digest"] == manifests[platform]
        assert found[platform]["image_id"].startswith("sha256:")
        slug = Platform.parse(platform).slug
        statement = check_statement(pytester.path / "att" / f"{slug}.intoto.json")
        digest = manifests[platform].removeprefix("sha256:")
        assert statement["subject"] == [{"name": repository_of(tag), "digest": {"sha256": digest}}]
    assert podman_containers(os.getpid()) == [] and services_of(os.getpid()) == []

    done = _verify(pytester.path, "report.json", "--image", tag)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"verified: index {index_digest}"), done.stdout

    # With podman alone (no docker on PATH): verify reads the index with podman.
    calls = without_docker(monkeypatch, tmp_path_factory.mktemp("no-docker"))
    monkeypatch.setenv("CONTAINER_RUNTIME", "podman")
    alone = _verify(pytester.path, "report.json", "--image", tag, "--vsa", "vsa.intoto.json")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert alone.stdout.splitlines()[-1].startswith(f"verified: index {index_digest}"), alone.stdout
    assert not calls.exists(), calls.read_text()
    vsa = json.loads((pytester.path / "vsa.intoto.json").read_text())
    assert vsa["subject"][0]["digest"] == {"sha256": index_digest.removeprefix("sha256:")}
    assert vsa["predicate"]["verificationResult"] == "PASSED"
    moved = _verify(pytester.path, "report.json", "--image", f"{repository_of(tag)}:no-such-tag")
    assert moved.returncode == 1, moved.stdout + moved.stderr
    assert not calls.exists(), calls.read_text()
