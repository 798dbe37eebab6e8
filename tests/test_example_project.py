"""The example project end to end, exactly as README's first command runs it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PYTHON

EXAMPLE = Path(__file__).parent.parent / "example_project"


@pytest.fixture
def python_base_image(docker_engine: None) -> str:
    found = subprocess.run(["docker", "buildx", "imagetools", "inspect", PYTHON], capture_output=True)
    if found.returncode != 0:
        pytest.skip(f"base image {PYTHON} is missing; run `bash scripts/setup-docker.sh` first")
    return PYTHON


def test_example_passes_on_amd64_and_arm64(python_base_image: str):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            f"--multiarch-build-arg=BASE_IMAGE={python_base_image}",
        ],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for test in (
        "test_root_reports_the_platforms_cpu",
        "test_info_endpoint",
        "test_python_inside_sees_the_same_cpu",
        "test_image_is_built_for_the_platform",
    ):
        for platform in ("linux/amd64", "linux/arm64"):
            assert f"{test}[{platform}] PASSED" in out
    assert "test_arm64_only[linux/arm64] PASSED" in out
    # The summary line itself: "9 passed" alone would match "19 passed", or "9 passed, 1 error".
    assert re.search(r"^=+ 9 passed in [0-9.]+s", out, re.M), out
