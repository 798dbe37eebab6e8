"""The CI recipes of docs/ci.md and the project's own workflow.

- Every workflow file is valid against the GitHub Actions schema and the GitLab file against
  GitLab CI's (check-jsonschema ships both and needs no network).
- Each recipe's pytest command line is taken from the file and run here as written, in a project
  like a user's, with the variables GitHub or GitLab would set: the matrix values, the pushed
  index's digest (an index published to the local registry), the dind engine's address (the
  second engine of scripts/remote-engine.sh standing in for the ``docker`` service).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BUSYBOX, BUSYBOX_DOCKERFILE, PLATFORMS, REGISTRY

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "docs" / "ci"
WORKFLOWS = sorted(RECIPES.glob("github-actions-*.yml")) + sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GITLAB = RECIPES / "gitlab-ci.yml"
RECIPE_IMAGE = "ghcr.io/acme/app"  # the one value a user of the release-gate recipe changes

# What a user's tests look like: the app answers on / with the CPU it runs on.
USER_TESTS = """
def test_serves_its_platform(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {multiarch_platform.machine}"

def test_runs_on_its_platform(multiarch_container, multiarch_platform):
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine
"""


# -- the schemas ----------------------------------------------------------------------------------


def _check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is in the test extras: pip install -e '.[test]'")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
    )


def test_the_recipes_and_the_projects_workflow_are_all_there():
    names = {p.name for p in WORKFLOWS} | {GITLAB.name}
    assert names >= {
        "github-actions-emulated.yml",
        "github-actions-native.yml",
        "github-actions-release-gate.yml",
        "ci.yml",
        "gitlab-ci.yml",
    }


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid_against_the_github_actions_schema(path):
    done = _check_jsonschema("vendor.github-workflows", path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_gitlab_recipe_is_valid_against_the_gitlab_ci_schema():
    done = _check_jsonschema("vendor.gitlab-ci", GITLAB)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_mistake(tmp_path):
    """The check is not a formality: a misspelt key fails it."""
    broken = tmp_path / "broken.yml"
    broken.write_text((RECIPES / "github-actions-emulated.yml").read_text().replace("runs-on:", "runs_on:"))
    done = _check_jsonschema("vendor.github-workflows", broken)
    assert done.returncode == 1 and "runs_on" in done.stdout
    broken.write_text(GITLAB.read_text().replace("when: always", "when: sometimes"))
    done = _check_jsonschema("vendor.gitlab-ci", broken)
    assert done.returncode == 1 and "sometimes" in done.stdout


# -- reading the recipes ----------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    yaml = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml comes with check-jsonschema (test extras)")
    return yaml.YAML(typ="safe").load(path.read_text())


def _pytest_line(script: str) -> str:
    """The one line of a run step or script entry that calls pytest."""
    lines = [line.strip() for line in script.splitlines() if re.match(r"\s*(python -m )?pytest\b", line)]
    assert len(lines) == 1, script
    return lines[0]


def _github_pytest_step(path: Path, job: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(workflow, job, step) of the one step of ``job`` that runs pytest, and its command line."""
    workflow = _load(path)
    calls_pytest = re.compile(r"^\s*(python -m )?pytest\b", re.M)
    steps = [s for s in workflow["jobs"][job]["steps"] if calls_pytest.search(s.get("run", ""))]
    assert len(steps) == 1, f"{path.name}: job {job} has {len(steps)} pytest steps"
    line = _pytest_line(steps[0]["run"])
    assert "${{" not in line, f"{path.name}: pass values through env:, not expressions in the command line"
    return workflow, steps[0], line


def _expand(value: object, context: dict[str, str]) -> str:
    """A workflow value with its ``${{ expr }}`` filled in from ``context`` (unknown: KeyError)."""
    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", lambda m: context[m.group(1)], str(value))


def _run_as_written(project: pytest.Pytester, line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``line`` run by bash -e in the project, as a CI step runs it, with ``pytest`` on PATH."""
    environ = dict(os.environ)  # pytester's HOME included
    environ.update(env)
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ['PATH']}"
    return subprocess.run(
        ["bash", "-e", "-c", line], cwd=project.path, env=environ, capture_output=True, text=True, timeout=900
    )


def _junit_platforms(path: Path) -> dict[str, str]:
    """Test case name → outcome ("passed", "failure", "error", "skipped") in a JUnit file; each
    case must carry its platform property."""
    found = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert "platform" in properties, ET.tostring(case, encoding="unicode")
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        found[case.get("name")] = outcome
    return found


def _assert_ran(done: subprocess.CompletedProcess[str], passed: int) -> None:
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(rf"^=+ {passed} passed(, \d+ warnings?)? in ", done.stdout, re.M), done.stdout[-2000:]


# -- GitHub Actions: one job with QEMU ----------------------------------------------------------------


def test_emulated_recipe_tests_both_platforms_as_written(busybox_project):
    _, _, line = _github_pytest_step(RECIPES / "github-actions-emulated.yml", "test")
    busybox_project.makepyfile(test_app=USER_TESTS)
    done = _run_as_written(busybox_project, line, {})
    _assert_ran(done, passed=4)
    report = _junit_platforms(busybox_project.path / "junit.xml")
    assert report == {
        "test_serves_its_platform[linux/amd64]": "passed",
        "test_serves_its_platform[linux/arm64]": "passed",
        "test_runs_on_its_platform[linux/amd64]": "passed",
        "test_runs_on_its_platform[linux/arm64]": "passed",
    }
    workflow = _load(RECIPES / "github-actions-emulated.yml")
    uploads = [s for s in workflow["jobs"]["test"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert [s["with"]["path"] for s in uploads] == ["junit.xml"]


# -- GitHub Actions: a native runner per platform ------------------------------------------------------


def test_native_recipe_tests_each_matrix_platform_alone_and_gathers_both_reports(busybox_project):
    workflow, step, line = _github_pytest_step(RECIPES / "github-actions-native.yml", "test")
    entries = workflow["jobs"]["test"]["strategy"]["matrix"]["include"]
    assert {(e["platform"], e["runner"]) for e in entries} == {
        ("linux/amd64", "ubuntu-latest"),
        ("linux/arm64", "ubuntu-24.04-arm"),
    }
    busybox_project.makepyfile(test_app=USER_TESTS)
    gathered = busybox_project.path / "junit"  # what download-artifact merges the reports into
    gathered.mkdir()
    for entry in entries:
        context = {f"matrix.{key}": str(value) for key, value in entry.items()}
        env = {name: _expand(value, context) for name, value in step["env"].items()}
        done = _run_as_written(busybox_project, line, env)
        _assert_ran(done, passed=2)
        report_name = _expand(workflow["jobs"]["test"]["steps"][-1]["with"]["path"], context)
        report = busybox_project.path / report_name
        assert set(_junit_platforms(report)) == {
            f"test_serves_its_platform[{entry['platform']}]",
            f"test_runs_on_its_platform[{entry['platform']}]",
        }
        report.rename(gathered / report.name)
    check = next(s for s in workflow["jobs"]["junit"]["steps"] if s.get("name", "").startswith("Check"))
    done = _run_as_written(busybox_project, check["run"], {})  # the final job's check, as written
    assert done.returncode == 0, done.stderr


# -- GitHub Actions: the release gate ---------------------------------------------------------------


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _index_digest(ref: str) -> str:
    manifest = json.loads(_run("docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Manifest}}"))
    return manifest["digest"]


@pytest.fixture(scope="module")
def released(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """What the push job of the recipe would leave in a registry, here the local one: the repository
    and the digests of a complete index, one without linux/arm64, and one whose linux/arm64 image
    is broken (its app exits at start)."""
    context = tmp_path_factory.mktemp("release-app")
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    (context / "Dockerfile.broken").write_text(f'FROM {BUSYBOX}\nEXPOSE 8080\nCMD ["sh", "-c", "exit 3"]\n')
    # A repository per xdist worker: workers pushing the same index into one repository made the
    # registry answer 500 to a read of it while another rewrote it.
    repo = f"{REGISTRY}/pytest-multiarch-test/ci-recipe-app-{os.getpid()}"
    suffix = os.getpid()
    images = {}
    for name, platform, dockerfile in (
        ("amd64", "linux/amd64", "Dockerfile"),
        ("arm64", "linux/arm64", "Dockerfile"),
        ("arm64-broken", "linux/arm64", "Dockerfile.broken"),
    ):
        tag = f"{repo}:{name}-{suffix}"
        _run(
            "docker", "buildx", "build", "--platform", platform, "--load", "-t", tag,
            "-f", str(context / dockerfile), "--build-arg", f"BASE_IMAGE={BUSYBOX}", str(context),
        )  # fmt: skip
        _run("docker", "push", "-q", tag)
        images[name] = tag
    found = {"repo": repo}
    for name, parts in (
        ("complete", ["amd64", "arm64"]),
        ("amd64-only", ["amd64"]),
        ("arm64-broken", ["amd64", "arm64-broken"]),
    ):
        tag = f"{repo}:{name}-{suffix}"
        _run("docker", "buildx", "imagetools", "create", "-t", tag, *(images[p] for p in parts))
        found[name] = _index_digest(tag)
    yield found
    subprocess.run(["docker", "image", "rm", *images.values()], capture_output=True)  # pushed: not needed here


@pytest.fixture
def gate_recipe() -> tuple[dict[str, Any], dict[str, Any], str]:
    return _github_pytest_step(RECIPES / "github-actions-release-gate.yml", "gate")


def _gate_env(workflow: dict[str, Any], step: dict[str, Any], repo: str, digest: str) -> dict[str, str]:
    """The gate step's environment: the workflow's IMAGE pointed at ``repo``, and the digest that
    the push job's output would hand over."""
    assert workflow["env"] == {"IMAGE": RECIPE_IMAGE}
    env = {"IMAGE": repo}
    env.update({name: _expand(value, {"needs.push.outputs.digest": digest}) for name, value in step["env"].items()})
    return env


def test_release_gate_recipe_needs_only_its_image_name_changed():
    text = (RECIPES / "github-actions-release-gate.yml").read_text()
    assert text.count(RECIPE_IMAGE) == 1  # the env line; every job uses $IMAGE / env.IMAGE
    workflow = _load(RECIPES / "github-actions-release-gate.yml")
    jobs = workflow["jobs"]
    assert jobs["gate"]["needs"] == "push" and set(jobs["release"]["needs"]) == {"push", "gate"}
    assert jobs["push"]["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"
    build = next(s for s in jobs["push"]["steps"] if s.get("id") == "build")
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64" and build["with"]["push"] is True


def test_release_gate_recipe_passes_a_complete_index_by_digest(gate_project_files, released, gate_recipe):
    workflow, step, line = gate_recipe
    done = _run_as_written(gate_project_files, line, _gate_env(workflow, step, released["repo"], released["complete"]))
    _assert_ran(done, passed=4)
    assert "testing manifest sha256:" in done.stdout and released["repo"] in done.stdout
    report = _junit_platforms(gate_project_files.path / "junit-release.xml")
    assert set(report.values()) == {"passed"} and len(report) == 4


@pytest.mark.parametrize(
    ("index", "said"),
    [
        ("amd64-only", "has no linux/arm64 image"),
        ("arm64-broken", "exited during start with exit code 3"),
    ],
)
def test_release_gate_recipe_fails_when_a_platform_is_missing_or_broken(
    gate_project_files, released, gate_recipe, index, said
):
    workflow, step, line = gate_recipe
    done = _run_as_written(gate_project_files, line, _gate_env(workflow, step, released["repo"], released[index]))
    assert done.returncode == 1, done.stdout[-3000:]  # the gate job fails, so the release job never runs
    report = _junit_platforms(gate_project_files.path / "junit-release.xml")
    assert {name: outcome for name, outcome in report.items() if "amd64" in name} == {
        "test_serves_its_platform[linux/amd64]": "passed",
        "test_runs_on_its_platform[linux/amd64]": "passed",
    }
    assert {outcome for name, outcome in report.items() if "arm64" in name} == {"error"}
    assert said in done.stdout, done.stdout[-6000:]


@pytest.fixture
def gate_project_files(pytester: pytest.Pytester, docker_engine: None) -> pytest.Pytester:
    """A user's project at release time: its tests and pytest.ini (no Dockerfile is needed)."""
    pytester.makeini(f"[pytest]\nmultiarch_platforms = {PLATFORMS}\n")
    pytester.makepyfile(test_app=USER_TESTS)
    return pytester


# -- GitLab CI with docker:dind ----------------------------------------------------------------------


def test_gitlab_recipe_runs_against_a_remote_engine_as_its_dind_service(busybox_project, remote_engine):
    """The job's variables with the service's host name ``docker`` pointed at the second engine
    (tcp://127.0.0.2:2375, the same port): the plugin builds and runs there and reaches the
    published ports at that host, as it reaches them at ``docker`` under GitLab."""
    recipe = _load(GITLAB)
    job = recipe["multiarch"]
    assert job["variables"]["DOCKER_HOST"] == "tcp://docker:2375"
    assert [s["alias"] for s in job["services"]] == ["docker"]
    address = remote_engine["REMOTE_DOCKER_HOST"].removeprefix("tcp://").split(":")[0]
    env = {name: str(value).replace("tcp://docker:", f"tcp://{address}:") for name, value in job["variables"].items()}
    assert env["DOCKER_HOST"] == remote_engine["REMOTE_DOCKER_HOST"]
    line = _pytest_line("\n".join(job["script"]))
    busybox_project.makepyfile(
        test_app=USER_TESTS
        + f"""
def test_reached_at_the_engines_host(multiarch_container):
    assert multiarch_container.url().startswith("http://{address}:")
"""
    )
    done = _run_as_written(busybox_project, line, env)
    _assert_ran(done, passed=6)
    assert job["artifacts"]["reports"]["junit"] == "junit.xml"
    assert len(_junit_platforms(busybox_project.path / "junit.xml")) == 6


# -- Release evidence: a native matrix gate, verify, and the attestations (GitHub, GitLab) -----------

EVIDENCE_GITHUB = RECIPES / "github-actions-release-evidence.yml"
EVIDENCE_GITLAB = RECIPES / "gitlab-ci-release-evidence.yml"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"


def test_gitlab_evidence_recipe_is_valid_against_the_gitlab_ci_schema():
    done = _check_jsonschema("vendor.gitlab-ci", EVIDENCE_GITLAB)
    assert done.returncode == 0, done.stdout + done.stderr


def _expression_values(text: str) -> set[str]:
    return set(re.findall(r"\$\{\{\s*(.*?)\s*\}\}", text))


def test_github_evidence_recipe_gates_each_platform_natively_verifies_and_attests_what_was_verified(
    gate_project_files, released
):
    """The matrix jobs' pytest line as written (one native runner per platform, the index by
    the digest the push job hands over), then the verify job's step as written on the merged
    evidence: its outputs are the digests the attest steps name, and each predicate file the
    attest steps attach is there, of the type they declare."""
    workflow, step, line = _github_pytest_step(EVIDENCE_GITHUB, "gate")
    assert workflow["env"] == {"IMAGE": RECIPE_IMAGE}
    entries = workflow["jobs"]["gate"]["strategy"]["matrix"]["include"]
    assert {(e["platform"], e["runner"]) for e in entries} == {
        ("linux/amd64", "ubuntu-latest"),
        ("linux/arm64", "ubuntu-24.04-arm"),
    }
    for entry in entries:
        context = {f"matrix.{key}": str(value) for key, value in entry.items()}
        context["needs.push.outputs.digest"] = released["complete"]
        env = {"IMAGE": released["repo"], **{k: _expand(v, context) for k, v in step["env"].items()}}
        _assert_ran(_run_as_written(gate_project_files, line, env), passed=2)
    verify_job = workflow["jobs"]["verify"]
    assert set(verify_job["needs"]) == {"push", "gate"}
    assert verify_job["permissions"]["id-token"] == "write" and verify_job["permissions"]["attestations"] == "write"
    verify_step = next(s for s in verify_job["steps"] if s.get("id") == "verify")
    outputs = gate_project_files.path / "github-output"
    env = {"IMAGE": released["repo"], "GITHUB_REF_NAME": f"complete-{os.getpid()}", "GITHUB_OUTPUT": str(outputs)}
    done = _run_as_written(gate_project_files, verify_step["run"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values["index"] == released["complete"]
    attests = [s for s in verify_job["steps"] if s.get("uses", "").startswith("actions/attest@")]
    assert len(attests) == 3
    for attest in attests:
        inputs = attest["with"]
        assert inputs["subject-name"] == "${{ env.IMAGE }}" and inputs["push-to-registry"] is True
        (expression,) = _expression_values(inputs["subject-digest"])
        digest = values[expression.removeprefix("steps.verify.outputs.")]
        predicate = json.loads((gate_project_files.path / inputs["predicate-path"]).read_text())
        if inputs["predicate-type"] == TEST_RESULT:
            statement_path = inputs["predicate-path"].replace(".predicate.json", ".intoto.json")
            statement = json.loads((gate_project_files.path / statement_path).read_text())
            assert statement["predicate"] == predicate and predicate["result"] == "PASSED"
            assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
        else:
            assert inputs["predicate-type"] == "https://slsa.dev/verification_summary/v1"
            assert digest == released["complete"] and predicate["verificationResult"] == "PASSED"


def test_gitlab_evidence_recipe_gates_each_platform_and_verifies_as_written(gate_project_files, released):
    """The gate job's matrix entries and the verify job's first script line, as written, with the
    variables GitLab would set (the cosign lines need GitLab's OIDC token and are not run)."""
    recipe = _load(EVIDENCE_GITLAB)
    gate = recipe["gate"]
    assert gate["tags"] == ["saas-linux-small-$ARCH"] and gate["needs"] == ["push"]
    line = _pytest_line("\n".join(gate["script"]))
    for entry in gate["parallel"]["matrix"]:
        env = {"IMAGE": released["repo"], "DIGEST": released["complete"], **entry}
        _assert_ran(_run_as_written(gate_project_files, line, env), passed=2)
    verify = recipe["verify"]["script"][0]
    assert verify.startswith("python -m pytest_multiarch verify ")
    env = {"IMAGE": released["repo"], "CI_COMMIT_TAG": f"complete-{os.getpid()}"}
    done = _run_as_written(gate_project_files, verify, env)
    assert done.returncode == 0, done.stdout + done.stderr
    cosign = "\n".join(recipe["verify"]["script"][1:])
    assert f"--type {TEST_RESULT}" in cosign and "--type https://slsa.dev/verification_summary/v1" in cosign
    assert (gate_project_files.path / "evidence" / "vsa.predicate.json").is_file()
