"""The doctor in a user's project (issue 27): it checks what the project configures (the
platforms, engines and builder of the pytest configuration pytest would use there), and it
changes nothing in the user's image store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import BUSYBOX, REGISTRY
from pytest_multiarch import projectconfig
from tests.integration.helpers import FOREIGN, NATIVE


def doctor_in(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_multiarch", "doctor", *args],
        cwd=folder,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_doctor_checks_the_projects_platforms_not_its_defaults(tmp_path: Path, docker_engine: None) -> None:
    (tmp_path / "tox.ini").write_text("[pytest]\nmultiarch_platforms = linux/s390x, linux/riscv64\n")
    result = doctor_in(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   project configuration: {tmp_path / 'tox.ini'} (multiarch_platforms)" in result.stdout
    checked = [line for line in result.stdout.splitlines() if line.startswith("ok   linux/")]
    assert [line.split(":")[0] for line in checked] == ["ok   linux/s390x", "ok   linux/riscv64"], result.stdout
    assert "linux/arm64:" not in result.stdout
    overridden = doctor_in(tmp_path, "--platforms", "linux/arm64")  # the command line wins
    assert "ok   linux/arm64:" in overridden.stdout and "linux/s390x:" not in overridden.stdout, overridden.stdout


def test_a_bad_value_in_the_project_is_one_failed_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmultiarch_platforms = linux/arm65\n")
    result = doctor_in(tmp_path, env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert result.returncode == 1
    assert "fail pytest.ini: multiarch_platforms: " in result.stdout and "arm65" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_pytests_order_of_configuration_files_and_toml_values(tmp_path: Path) -> None:
    assert projectconfig.read(tmp_path) == (None, {})
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = x\n")  # no [tool:pytest]: not pytest's file
    assert projectconfig.read(tmp_path) == (None, {})
    (tmp_path / "tox.ini").write_text("[pytest]\nmultiarch_builder = b1\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nmultiarch_engines = ["linux/arm64=ssh://a", "linux/s390x=ctx"]\nother = "1"\n'
    )
    assert projectconfig.read(tmp_path) == (
        tmp_path / "pyproject.toml",
        {"multiarch_engines": "linux/arm64=ssh://a\nlinux/s390x=ctx"},
    )
    (tmp_path / "pytest.ini").write_text("")  # pytest.ini counts even when empty
    assert projectconfig.read(tmp_path) == (tmp_path / "pytest.ini", {})
    (tmp_path / "pytest.toml").write_text('[pytest]\nmultiarch_platforms = "linux/arm64"\n')
    assert projectconfig.read(tmp_path) == (tmp_path / "pytest.toml", {"multiarch_platforms": "linux/arm64"})


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=300).stdout.strip()


def test_the_doctor_leaves_the_users_local_tag_and_image_store_as_they_were(
    tmp_path: Path, docker_engine: None
) -> None:
    """The user's local tag of the image is the native platform's; the doctor runs both
    platforms from the registry's index and, afterwards, the tag is the same image and the
    repository holds no image more than before (no tag moved to the foreign platform)."""
    repository = f"{REGISTRY}/pytest-multiarch-tests/doctor-store"
    ref = f"{repository}:{os.getpid()}"
    docker("buildx", "imagetools", "create", "-t", ref, BUSYBOX)  # a copy in the registry, of our own
    docker("pull", "--quiet", "--platform", NATIVE, ref)
    try:
        before = docker("image", "inspect", "--format", "{{.Id}}", ref)
        held = sorted(docker("images", "--no-trunc", "--format", "{{.ID}}", repository).split())
        result = doctor_in(tmp_path, "--platforms", f"{NATIVE},{FOREIGN}", "--image", ref)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"ok   run {FOREIGN}: uname -m = " in result.stdout, result.stdout
        assert docker("image", "inspect", "--format", "{{.Id}}", ref) == before
        assert sorted(docker("images", "--no-trunc", "--format", "{{.ID}}", repository).split()) == held
    finally:
        subprocess.run(["docker", "image", "rm", ref], capture_output=True)
