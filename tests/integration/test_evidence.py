"""Evidence (issue 25) for real: release gate runs against indexes pushed to the local registry
write the report and one in-toto statement per platform, whose digests are the registry's own
(``docker buildx imagetools inspect --raw``); two single-platform runs (a native matrix) are
verified together, and a missing platform, a failed one and a moved tag are each refused."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import BUSYBOX, BUSYBOX_DOCKERFILE, REGISTRY
from pytest_multiarch import Platform
from pytest_multiarch.evidence_report import schema
from tests.integration.helpers import FOREIGN, NATIVE, WAIT, ctrl_c_as_usual, mode, wait_for

# The user's tests: test_flavour fails on an image whose /www/flavour says "broken".
USER_TESTS = """
def test_uname(multiarch_container, multiarch_platform):
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine

def test_flavour(multiarch_container):
    assert multiarch_container.exec("cat /www/flavour").strip() == "good"

def test_not_per_platform():
    pass
"""


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def published(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """amd64 and arm64 images (and a broken arm64 one) pushed, and three indexes of them:
    complete, arm64-broken and amd64-only; each name maps to its tag."""
    context = tmp_path_factory.mktemp("evidence-app")
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE + "ARG FLAVOUR=good\nRUN echo $FLAVOUR > /www/flavour\n")
    # A repository per xdist worker: workers pushing the same index into one repository made the
    # registry answer 500 to a read of it while another rewrote it.
    repo = f"{REGISTRY}/pytest-multiarch-test/evidence-app-{os.getpid()}"
    images = {}
    for name, platform, flavour in (
        ("amd64", "linux/amd64", "good"),
        ("arm64", "linux/arm64", "good"),
        ("arm64-broken", "linux/arm64", "broken"),
    ):
        tag = f"{repo}:{name}-{os.getpid()}"
        _run(
            "docker", "buildx", "build", "--platform", platform, "--load", "-t", tag,
            "--build-arg", f"BASE_IMAGE={BUSYBOX}", "--build-arg", f"FLAVOUR={flavour}", str(context),
        )  # fmt: skip
        _run("docker", "push", "-q", tag)
        images[name] = tag
    found = {"repo": repo}
    for name, parts in (
        ("complete", ["amd64", "arm64"]),
        ("broken", ["amd64", "arm64-broken"]),
        ("amd64-only", ["amd64"]),
    ):
        found[name] = f"{repo}:{name}-{os.getpid()}"
        _run("docker", "buildx", "imagetools", "create", "-t", found[name], *(images[p] for p in parts))
    subprocess.run(["docker", "image", "rm", *images.values()], capture_output=True)  # pushed: not needed here
    return found


def registry_index(ref: str) -> tuple[str, dict[str, str]]:
    """The index's digest (SHA-256 of its raw bytes) and its platforms' manifest digests, as the
    registry serves them."""
    raw = subprocess.run(["docker", "buildx", "imagetools", "inspect", "--raw", ref], capture_output=True, check=True)
    index = json.loads(raw.stdout)
    manifests = {
        str(Platform.parse(f"{m['platform']['os']}/{m['platform']['architecture']}")): m["digest"]
        for m in index["manifests"]
    }
    return "sha256:" + hashlib.sha256(raw.stdout).hexdigest(), manifests


def check_statement(path: Path) -> dict[str, Any]:
    """A statement file, checked against in-toto's own definitions: Statement v1 (validated)
    and the test-result v0.1 predicate (its protobuf message, which refuses unknown fields)."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.test_result.v0 import test_result_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    statement = json.loads(path.read_text())
    Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()
    assert statement["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    json_format.ParseDict(statement["predicate"], test_result_pb2.TestResult())
    assert statement["predicate"]["result"] in ("PASSED", "WARNED", "FAILED")
    assert (
        json.loads(path.with_name(path.name.replace(".intoto.", ".predicate.")).read_text()) == statement["predicate"]
    )
    return statement


def check_report(path: Path) -> dict[str, Any]:
    report = json.loads(path.read_text())
    jsonschema.validate(report, schema())
    return {"report": report, **{p["platform"]: p for p in report["platforms"]}}


@pytest.fixture
def gate_project(pytester: pytest.Pytester, docker_engine: None) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n")
    pytester.makepyfile(test_app=USER_TESTS)
    return pytester


def test_a_passing_gate_run_writes_the_report_and_a_statement_per_platform_with_the_registrys_digests(
    gate_project, published, monkeypatch
):
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/app")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.delenv("GITHUB_RUN_ATTEMPT", raising=False)
    args = ["--multiarch-report=out/report.json", "--multiarch-attest=out/attestations"]
    result = gate_project.runpytest_subprocess(f"--multiarch-image={published['complete']}", *args)
    result.assert_outcomes(passed=5)
    index_digest, manifests = registry_index(published["complete"])
    found = check_report(gate_project.path / "out" / "report.json")
    assert found["report"]["image"] == {"ref": published["complete"], "digest": index_digest, "source": "registry"}
    assert found["report"]["complete"] is True
    for platform in ("linux/amd64", "linux/arm64"):
        entry = found[platform]
        assert entry["manifest_digest"] == manifests[platform]
        assert entry["result"] == "PASSED" and entry["mode"] == mode(platform)
        assert entry["passed"] == [f"test_app.py::test_flavour[{platform}]", f"test_app.py::test_uname[{platform}]"]
        assert entry["image_id"].startswith("sha256:") and entry["arch_check"]["foreign"] == 0
        # The emulated platform's QEMU, as the emulator itself says (emulators.py reads the handler).
        emulated = mode(platform) == "emulated"
        assert (entry["emulator"] or "").startswith("QEMU ") if emulated else entry["emulator"] is None, entry
        statement = check_statement(
            gate_project.path / "out" / "attestations" / f"{Platform.parse(platform).slug}.intoto.json"
        )
        assert statement["subject"] == [
            {"name": published["repo"], "digest": {"sha256": manifests[platform].removeprefix("sha256:")}}
        ]
        predicate = statement["predicate"]
        assert (predicate["result"], predicate["passedTests"], predicate["failedTests"]) == (
            "PASSED",
            entry["passed"],
            [],
        )
        assert predicate["url"] == "https://github.com/acme/app/actions/runs/42"
        sha_of = {c["name"]: c["digest"]["sha256"] for c in predicate["configuration"]}
        assert sha_of == {
            name: hashlib.sha256((gate_project.path / name).read_bytes()).hexdigest()
            for name in ("tox.ini", "test_app.py")
        }


def test_a_platform_whose_test_fails_is_failed_in_the_report_and_its_statement(gate_project, published):
    args = ["--multiarch-report=report.json", "--multiarch-attest=attestations"]
    result = gate_project.runpytest_subprocess(f"--multiarch-image={published['broken']}", *args)
    result.assert_outcomes(passed=4, failed=1)
    found = check_report(gate_project.path / "report.json")
    assert found["linux/amd64"]["result"] == "PASSED"
    assert found["linux/arm64"]["result"] == "FAILED"
    assert found["linux/arm64"]["failed"] == ["test_app.py::test_flavour[linux/arm64]"]
    arm = check_statement(gate_project.path / "attestations" / "linux-arm64.intoto.json")["predicate"]
    assert (arm["result"], arm["failedTests"]) == ("FAILED", ["test_app.py::test_flavour[linux/arm64]"])
    amd = check_statement(gate_project.path / "attestations" / "linux-amd64.intoto.json")["predicate"]
    assert amd["result"] == "PASSED"


def test_a_build_run_reports_image_ids_and_no_digests(busybox_project):
    busybox_project.makepyfile(test_app="def test_x(multiarch_image):\n    pass\n")
    secret = "s3cr3t-evidence-value"
    result = busybox_project.runpytest_subprocess("--multiarch-report=report.json", f"--multiarch-build-arg=K={secret}")
    result.assert_outcomes(passed=2)
    assert secret not in (busybox_project.path / "report.json").read_text()  # build args are never in it
    found = check_report(busybox_project.path / "report.json")
    assert found["report"]["image"] == {"ref": None, "digest": None, "source": "build"}
    for platform in ("linux/amd64", "linux/arm64"):
        assert found[platform]["manifest_digest"] is None and found[platform]["image_id"].startswith("sha256:")
        assert found[platform]["result"] == "PASSED"


def _verify(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_multiarch", "verify", *args], cwd=cwd, capture_output=True, text=True
    )


def test_a_two_job_matrix_is_verified_and_a_missing_or_failed_platform_and_a_moved_tag_are_refused(
    gate_project, published
):
    tag = f"{published['repo']}:moving-{os.getpid()}"
    _run("docker", "buildx", "imagetools", "create", "-t", tag, published["complete"])
    index_digest, _ = registry_index(tag)
    by_digest = f"{published['repo']}@{index_digest}"  # as the release recipe tests what it pushed
    for platform in ("linux/amd64", "linux/arm64"):  # one matrix job each
        slug = Platform.parse(platform).slug
        job = gate_project.runpytest_subprocess(
            f"--multiarch-image={by_digest}", f"--multiarch-platforms={platform}", f"--multiarch-report={slug}.json"
        )
        job.assert_outcomes(passed=3)
    path = gate_project.path
    done = _verify(path, "linux-amd64.json", "linux-arm64.json", "--image", tag, "--vsa", "vsa.intoto.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"verified: index {index_digest}")
    vsa = json.loads((path / "vsa.intoto.json").read_text())
    assert vsa["subject"][0]["digest"] == {"sha256": index_digest.removeprefix("sha256:")}
    assert vsa["predicate"]["verificationResult"] == "PASSED"

    missing = _verify(path, "linux-amd64.json")
    assert missing.returncode == 1
    assert f"linux/arm64: no report covers it (index {index_digest} has linux/amd64, linux/arm64)" in missing.stdout

    # arm64's job again, its test failing there: the same index, but FAILED.
    gate_project.makepyfile(test_app=USER_TESTS.replace('== "good"', '== "good" and False'))
    failed_job = gate_project.runpytest_subprocess(
        f"--multiarch-image={by_digest}", "--multiarch-platforms=linux/arm64", "--multiarch-report=arm-failed.json"
    )
    failed_job.assert_outcomes(passed=2, failed=1)
    failed = _verify(path, "linux-amd64.json", "arm-failed.json")
    assert failed.returncode == 1
    problems = [line for line in failed.stdout.splitlines() if line.startswith("linux/arm64: FAILED")]
    said = "linux/arm64: FAILED in arm-failed.json (1 passed, 1 failed: test_app.py::test_flavour[linux/arm64])"
    assert problems == [said]  # test_not_per_platform is of no platform

    _run("docker", "buildx", "imagetools", "create", "-t", tag, published["broken"])  # the tag moves
    moved = _verify(path, "linux-amd64.json", "linux-arm64.json", "--image", tag, "--vsa", "vsa.intoto.json")
    assert moved.returncode == 1
    assert f"{tag} now resolves to {registry_index(tag)[0]}, not to the tested index {index_digest} (it moved)" in (
        moved.stdout.splitlines()
    )
    assert json.loads((path / "vsa.intoto.json").read_text())["predicate"]["verificationResult"] == "FAILED"


def test_under_xdist_the_controller_writes_the_report_with_the_workers_images(gate_project, published):
    result = gate_project.runpytest_subprocess(
        "-p", "xdist", "-n", "2", f"--multiarch-image={published['complete']}", "--multiarch-report=report.json",
        "--multiarch-attest=attestations",
    )  # fmt: skip
    result.assert_outcomes(passed=5)
    _, manifests = registry_index(published["complete"])
    found = check_report(gate_project.path / "report.json")
    assert found["report"]["image"]["digest"] == registry_index(published["complete"])[0]
    for platform in ("linux/amd64", "linux/arm64"):
        assert found[platform]["manifest_digest"] == manifests[platform]
        assert found[platform]["image_id"].startswith("sha256:") and found[platform]["mode"] == mode(platform)
        assert len(found[platform]["passed"]) == 2 and found[platform]["result"] == "PASSED"
        check_statement(gate_project.path / "attestations" / f"{Platform.parse(platform).slug}.intoto.json")


def test_an_interrupted_run_still_writes_what_it_knew_with_every_platform_failed(gate_project, published):
    gate_project.makepyfile(
        # The native platform runs first: its test passes, then the emulated one blocks.
        test_block=f"""
        import time
        from pathlib import Path

        def test_blocks_when_emulated(multiarch_container, multiarch_platform):
            if str(multiarch_platform) == {FOREIGN!r}:
                Path("blocking").write_text("")
                while True:
                    time.sleep(0.1)
        """
    )
    log = gate_project.path / "out.log"
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--multiarch-image={published['complete']}"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*args, "--multiarch-report=report.json"],
            cwd=gate_project.path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the signal goes to pytest alone
            preexec_fn=ctrl_c_as_usual,
        )
        try:
            wait_for(lambda: (gate_project.path / "blocking").exists() or process.poll() is not None, "the test")
            os.kill(process.pid, signal.SIGINT)
            code = process.wait(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
    output = log.read_text()
    assert code == pytest.ExitCode.INTERRUPTED, output
    found = check_report(gate_project.path / "report.json")
    assert (found["report"]["complete"], found["report"]["exit_status"]) == (False, 2)
    assert {found[p]["result"] for p in ("linux/amd64", "linux/arm64")} == {"FAILED"}
    assert f"test_block.py::test_blocks_when_emulated[{NATIVE}]" in found[NATIVE]["passed"]
    assert found["linux/arm64"]["manifest_digest"] == registry_index(published["complete"])[1]["linux/arm64"]
    assert "Traceback" not in output
