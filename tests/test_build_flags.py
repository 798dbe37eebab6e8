"""--multiarch-no-cache and --multiarch-pull (issue 27): buildx's own flags, from the command
line or the ini, and a build even when an image with the same build key is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_multiarch import Platform
from pytest_multiarch.buildx import buildx_command
from pytest_multiarch.config import ImageSpec, Settings


def settings(pytester: pytest.Pytester, *args: str) -> Settings:
    return Settings.from_pytest(pytester.parseconfigure(*args))


def test_the_ini_keys_reach_buildx_and_imply_a_rebuild(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makeini("[pytest]\nmultiarch_no_cache = true\nmultiarch_pull = true\n")
    chosen = settings(pytester)
    assert (chosen.buildx_flags, chosen.rebuild) == (("--no-cache", "--pull"), True)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    spec = ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    command, _ = buildx_command(
        ["docker"], spec, Platform.parse("linux/arm64"), "t:1", {}, (None, None), None, flags=chosen.buildx_flags
    )
    assert command[-3:] == ["--no-cache", "--pull", str(tmp_path)]


def test_the_command_line_undoes_the_ini_and_nothing_is_the_default(pytester: pytest.Pytester) -> None:
    assert (settings(pytester).buildx_flags, settings(pytester).rebuild) == ((), False)
    pytester.makeini("[pytest]\nmultiarch_no_cache = true\n")
    assert settings(pytester, "--no-multiarch-no-cache", "--multiarch-pull").buildx_flags == ("--pull",)
