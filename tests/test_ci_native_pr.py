"""The recipes for native-only pull requests and every platform on the main branch
(docs/ci/*-pr-native.yml): valid against the CI schemas, and their pytest line run as written
here, once as a pull request and once as the main branch (issue 26)."""

from __future__ import annotations

import pytest

from tests.integration.helpers import FOREIGN, NATIVE
from tests.test_ci_recipes import (
    RECIPES,
    USER_TESTS,
    _assert_ran,
    _check_jsonschema,
    _github_pytest_step,
    _junit_platforms,
    _load,
    _pytest_line,
    _run_as_written,
)

GITHUB = RECIPES / "github-actions-pr-native.yml"
GITLAB = RECIPES / "gitlab-ci-pr-native.yml"


def test_the_gitlab_recipe_is_valid_against_the_gitlab_ci_schema():
    done = _check_jsonschema("vendor.gitlab-ci", GITLAB)
    assert done.returncode == 0, done.stdout + done.stderr


def _github_platforms(event: str) -> str:
    """The PLATFORMS the workflow's expression gives for a GitHub event."""
    _, step, _ = _github_pytest_step(GITHUB, "test")
    expression = step["env"]["PLATFORMS"]
    assert expression == "${{ github.event_name == 'pull_request' && 'native' || 'linux/amd64,linux/arm64' }}"
    return "native" if event == "pull_request" else "linux/amd64,linux/arm64"


def _gitlab_platforms(source: str) -> tuple[str, str]:
    """PLATFORMS for a GitLab pipeline source (the job's rules), and the script's pytest line."""
    job = _load(GITLAB)["multiarch"]
    chosen = job["variables"]["PLATFORMS"]
    for rule in job["rules"]:
        if "merge_request_event" in rule["if"] and source == "merge_request_event":
            chosen = rule["variables"]["PLATFORMS"]
            break
    return chosen, _pytest_line("\n".join(job["script"]))


@pytest.mark.parametrize("event", ["pull_request", "push"])
def test_github_recipe_tests_the_native_platform_on_pull_requests_and_all_on_main(busybox_project, event):
    _, _, line = _github_pytest_step(GITHUB, "test")
    busybox_project.makepyfile(test_app=USER_TESTS)
    done = _run_as_written(busybox_project, line, {"PLATFORMS": _github_platforms(event)})
    ran = _junit_platforms(busybox_project.path / "junit.xml")
    if event == "pull_request":
        _assert_ran(done, passed=2)
        assert set(ran) == {f"test_serves_its_platform[{NATIVE}]", f"test_runs_on_its_platform[{NATIVE}]"}
    else:
        _assert_ran(done, passed=4)
        assert f"test_serves_its_platform[{FOREIGN}]" in ran
    qemu = [s for s in _load(GITHUB)["jobs"]["test"]["steps"] if "setup-qemu-action" in s.get("uses", "")]
    assert [s["if"] for s in qemu] == ["${{ github.event_name != 'pull_request' }}"]


def test_gitlab_recipe_tests_the_native_platform_in_merge_requests(busybox_project):
    platforms, line = _gitlab_platforms("merge_request_event")
    assert platforms == "native" and _gitlab_platforms("push")[0] == "linux/amd64,linux/arm64"
    busybox_project.makepyfile(test_app=USER_TESTS)
    done = _run_as_written(busybox_project, line, {"PLATFORMS": platforms})
    _assert_ran(done, passed=2)
    assert set(_junit_platforms(busybox_project.path / "junit.xml")) == {
        f"test_serves_its_platform[{NATIVE}]",
        f"test_runs_on_its_platform[{NATIVE}]",
    }
