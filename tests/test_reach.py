"""Which context files a Dockerfile can reach (reach.py, issue 27): its COPY, ADD and bind-mount
sources, and the whole context whenever that is not certain."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_multiarch.reach import reach_of

PATHS = [
    "app.py",
    "requirements.txt",
    "src",
    "src/a.py",
    "src/x",
    "src/x/b.py",
    "tests",
    "tests/test_app.py",
    "junit.xml",
]


def reached(tmp_path: Path, dockerfile: str) -> list[str] | None:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    reach = reach_of(tmp_path / "Dockerfile")
    return None if reach is None else [p for p in PATHS if reach(p)]


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("FROM x\nCOPY app.py requirements.txt ./\n", ["app.py", "requirements.txt"]),
        (
            "FROM x\ncopy --chown=1000:1000 --chmod=644 --link ./src/ /app/src\n",
            ["src", "src/a.py", "src/x", "src/x/b.py"],
        ),
        ("FROM x\nCOPY *.py /app/\n", ["app.py"]),  # a * never crosses a /
        ("FROM x\nCOPY src/*.py /app/\n", ["src", "src/a.py"]),
        ('FROM x\nCOPY ["app.py", "/app/"]\n', ["app.py"]),
        ("FROM x AS build\nRUN make\nFROM y\nCOPY --from=build /out /\n", []),
        (
            "FROM x\nADD https://example.com/a.tgz git@github.com:a/b.git /\nADD requirements.txt /\n",
            ["requirements.txt"],
        ),
        ("FROM x\nRUN --mount=type=bind,source=requirements.txt,target=/r pip install -r /r\n", ["requirements.txt"]),
        ("FROM x\nRUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=npm true\n", []),
        ("FROM x\nRUN --mount=type=bind,from=build,source=/out,target=/o true\n", []),
        (
            "FROM x\n# a comment\nCOPY app.py \\\n  # between continuation lines\n  requirements.txt /app/\n",
            ["app.py", "requirements.txt"],
        ),
        ("FROM x\nONBUILD COPY . /app\nCOPY app.py /\n", ["app.py"]),  # ONBUILD runs in images built from it
    ],
)
def test_the_sources_a_dockerfile_reaches(tmp_path: Path, dockerfile: str, expected: list[str]) -> None:
    assert reached(tmp_path, dockerfile) == expected


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM x\nCOPY . /app\n",  # the whole context
        "# syntax=docker/dockerfile:1.10\nFROM x\nCOPY app.py /\n",  # another frontend
        "# escape=`\nFROM x\nCOPY app.py /\n",
        "FROM x\nARG APP=app.py\nCOPY $APP /\n",  # a variable
        "FROM x\nCOPY [ab]pp.py /\n",  # a bracket expression
        "FROM x\nCOPY --parents src/ /\n",  # a flag it does not know
        "FROM x\nCOPY ../secret /\n",  # outside the context
        "FROM x\nCOPY <<EOF /app/x\nhello\nEOF\n",  # a heredoc
        "FROM x\nRUN --mount=target=/src make -C /src\n",  # a bind mount of the whole context
    ],
)
def test_when_not_certain_the_whole_context_counts(tmp_path: Path, dockerfile: str) -> None:
    assert reached(tmp_path, dockerfile) is None


def test_an_unreadable_dockerfile_counts_the_whole_context(tmp_path: Path) -> None:
    assert reach_of(tmp_path / "missing") is None


def test_a_reached_symlink_counts_the_whole_context(tmp_path: Path) -> None:
    """COPY of a symlinked folder: what it points to may be anywhere in the context."""
    from pytest_multiarch.config import ImageSpec
    from pytest_multiarch.context import REACH_KEY, context_digest, context_manifest

    (tmp_path / "Dockerfile").write_text("FROM x\nCOPY data /data\n")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "file").write_text("1")
    (tmp_path / "data").symlink_to("real")
    spec = ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    assert context_manifest(spec, None)[REACH_KEY] == "all"
    before = context_digest(spec, None)
    (tmp_path / "real" / "file").write_text("2")
    assert context_digest(spec, None) != before
    (tmp_path / "data").unlink()
    (tmp_path / "data").mkdir()
    assert context_manifest(spec, None)[REACH_KEY] == "reached"
