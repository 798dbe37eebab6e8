"""The release workflow (issue 27: nothing was published, and nothing said how): a version tag
builds the sdist and wheel, checks them as the workflow does, and publishes with PyPI's trusted
publishing. The build job's steps run here as written, on a copy of the project."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pytest_multiarch

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def workflow() -> dict[str, Any]:
    yaml = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml comes with check-jsonschema (test extras)")
    return yaml.YAML(typ="safe").load(WORKFLOW.read_text())


def test_a_version_tag_publishes_by_trusted_publishing_and_no_stored_secret() -> None:
    found = workflow()
    assert found["on"] == {"push": {"tags": ["v*"]}}
    publish = found["jobs"]["publish"]
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    assert publish["steps"][-1] == {"uses": "pypa/gh-action-pypi-publish@release/v1"}  # no password, no token
    assert "secrets." not in WORKFLOW.read_text()
    checked = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _build_steps() -> tuple[str, str]:
    steps = {step.get("name"): step for step in workflow()["jobs"]["build"]["steps"]}
    return steps["Build the sdist and the wheel"]["run"], steps["The tag names the package's version"]["run"]


def test_the_build_jobs_steps_as_written_pass_on_this_tree_and_refuse_a_wrong_tag(tmp_path: Path) -> None:
    pytest.importorskip("twine", reason="twine is in the test extras: pip install -e '.[test]'")
    project = tmp_path / "project"
    shutil.copytree(
        ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", "dist", "build", "*.egg-info", ".*_cache")
    )
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    build, tag_check = _build_steps()
    built = subprocess.run(
        ["bash", "-e", "-c", build], cwd=project, env=environment, capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    checked = re.sub(r"\x1b\[[0-9;]*m", "", built.stdout)  # twine's colours
    assert re.search(r"Checking dist/pytest_multiarch-.*\.whl: PASSED", checked), checked
    version = pytest_multiarch.__version__
    right = subprocess.run(
        ["bash", "-e", "-c", tag_check],
        cwd=project,
        env={**environment, "TAG": f"v{version}"},
        capture_output=True,
        text=True,
    )
    assert right.returncode == 0, right.stderr
    wrong = subprocess.run(
        ["bash", "-e", "-c", tag_check],
        cwd=project,
        env={**environment, "TAG": "v9.9.9"},
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        f"tag v9.9.9 does not match __version__ {version} (pytest_multiarch/__init__.py): bump it, or tag v{version}"
    )
