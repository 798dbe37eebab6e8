"""What a build's one line says about why it runs (rebuilds.py), from the kept inputs."""

from __future__ import annotations

from pathlib import Path

from pytest_multiarch.context import REACH_KEY
from pytest_multiarch.rebuilds import recall, record_path, remember, why

KEY = {"scheme": "4", "dockerfile": "d1", "build_args": "b1", "target": None, "secrets": [], "ssh": [], "builder": "x"}


def inputs(files: dict[str, str], **key: object) -> dict[str, object]:
    return {"key": {**KEY, **key}, "files": {REACH_KEY: "reached", **files}}


def test_the_line_names_what_changed() -> None:
    before = inputs({"app.py": "Fa", "src": "D", "src/a.py": "Fb", "old.txt": "Fc"})
    after = inputs({"app.py": "Xa", "src": "D", "src/a.py": "Fz", "new.txt": "Fd"}, dockerfile="d2")
    assert why(before, after) == "the Dockerfile changed, app.py changed, new.txt added and 2 more"
    assert why(before, inputs({"app.py": "Fa", "src": "D", "src/a.py": "Fb", "old.txt": "Fc"}, build_args="b2")) == (
        "the build args changed"
    )


def test_why_a_build_runs_when_nothing_changed() -> None:
    same = inputs({"app.py": "Fa"})
    assert why(None, same) == "no earlier build of this image is known here"
    assert why(same, same, "--multiarch-rebuild") == "--multiarch-rebuild"
    assert why(same, same) == "the image of the same inputs is no longer loaded (removed since)"
    whole = {"key": KEY, "files": {REACH_KEY: "all", "app.py": "Fa"}}
    assert why(same, whole) == "which context files count changed"


def test_the_record_is_kept_per_slot_and_an_unreadable_one_is_unknown(tmp_path: Path) -> None:
    path = record_path(tmp_path, "pytest-multiarch/app-1234:linux-arm64")
    assert path is not None and recall(path) is None
    remember(path, inputs({"app.py": "Fa"}))
    assert recall(path) == inputs({"app.py": "Fa"})
    path.write_text("{not json")
    assert recall(path) is None
    assert record_path(None, "slot") is None
