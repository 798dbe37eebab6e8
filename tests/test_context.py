"""The build context's digest and its index (context.py): every change that buildx would send
changes the digest, an unchanged file is not read again, and the index is never trusted blindly."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_multiarch import context as context_module
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.context import context_digest


@pytest.fixture
def project(tmp_path: Path) -> ImageSpec:
    root = tmp_path / "app"
    (root / "src").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (root / "src" / "main.py").write_text("print('hi')\n")
    (root / "src" / "tool.sh").write_text("echo\n")
    os.symlink("main.py", root / "src" / "link")
    return ImageSpec(name="", context=root, dockerfile=root / "Dockerfile")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files whose content is read (hashed)."""
    seen: list[Path] = []
    original = context_module._hash_file

    def counting(path: Path, digest: Any) -> str:
        seen.append(path)
        return original(path, digest)

    monkeypatch.setattr(context_module, "_hash_file", counting)
    return seen


def settled(spec: ImageSpec) -> None:
    """Make every file older than the racy window, as files are that were not just written."""
    past = time.time_ns() - 10 * context_module.RACY_NS
    for path in spec.context.rglob("*"):
        os.utime(path, ns=(past, past), follow_symlinks=False)


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "src" / "main.py").write_text("print('bye')\n"),  # content
        lambda root: (root / "src" / "tool.sh").chmod(0o755),  # exec bit
        lambda root: ((root / "src" / "link").unlink(), os.symlink("tool.sh", root / "src" / "link")),  # link target
        lambda root: (root / "src" / "new.py").write_text(""),  # a new file
        lambda root: (root / "src" / "tool.sh").unlink(),  # a deleted one
        lambda root: (root / ".dockerignore").write_text("src/tool.sh\n"),  # what is sent
    ],
    ids=["content", "mode", "symlink", "new", "deleted", "dockerignore"],
)
def test_every_change_buildx_would_send_changes_the_digest(project, tmp_path, change):
    index = tmp_path / "index"
    settled(project)
    before = context_digest(project, index)
    assert context_digest(project, index) == before  # from the index
    change(project.context)
    assert context_digest(project, index) != before
    assert context_digest(project, None) == context_digest(project, index)  # the index changes nothing


def test_an_unchanged_file_is_not_read_again_and_a_touch_changes_nothing(project, tmp_path, reads):
    index = tmp_path / "index"
    settled(project)
    before = context_digest(project, index)
    assert len(reads) == 3
    reads.clear()
    assert context_digest(project, index) == before
    assert reads == []  # stat unchanged: the index's digests
    touched = time.time_ns() - 5 * context_module.RACY_NS  # a touch (older than the racy window)
    os.utime(project.context / "src" / "main.py", ns=(touched, touched))
    assert context_digest(project, index) == before  # a touch without a change: the same key
    assert reads == [project.context / "src" / "main.py"]  # only the touched file was read


def test_a_write_in_the_same_tick_as_the_index_is_caught(project, tmp_path):
    """The racy case, as git has it: a file written in the same clock tick as the index, then
    written again in that tick, keeps its whole stat while its content changed. Its recorded
    digest must not be trusted: the index is made to hold such a stale digest here."""
    index = tmp_path / "index"
    main = project.context / "src" / "main.py"
    now = time.time_ns()
    os.utime(main, ns=(now, now))  # modified just as the index is written
    correct = context_digest(project, index)
    (path,) = index.glob("*.json")
    data = json.loads(path.read_text())
    data["entries"]["src/main.py"][5] = "0" * 64  # what an earlier content of the same stat hashed to
    path.write_text(json.dumps(data))
    assert context_digest(project, index) == correct  # read again, not taken from the index


@pytest.mark.parametrize("damage", ["truncated", "foreign", "wrong shape"])
def test_a_damaged_or_foreign_index_is_ignored_and_rewritten(project, tmp_path, reads, damage):
    index = tmp_path / "index"
    settled(project)
    before = context_digest(project, index)
    (path,) = index.glob("*.json")
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "foreign":
        data = json.loads(text)
        data["context"] = "/elsewhere"
        data["entries"] = {rel: [*entry[:5], "0" * 64] for rel, entry in data["entries"].items()}
        path.write_text(json.dumps(data))
    else:
        path.write_text(json.dumps({"scheme": 1, "context": str(project.context.resolve()), "written_ns": "x"}))
    reads.clear()
    assert context_digest(project, index) == before
    assert len(reads) == 3  # nothing trusted
    reads.clear()
    assert context_digest(project, index) == before and reads == []  # rewritten


DOCKER_DOCS_EXAMPLES = [  # the .dockerignore examples of Docker's documentation, and some more
    "*/temp*",
    "*/*/temp*",
    "temp?",
    "**/*.go",
    "*.md\n!README.md",
    "*.md\n!README*.md\nREADME-secret.md",
    "*.md\nREADME-secret.md\n!README*.md",
    "docs\n!docs/keep/a.md",
    "/docs/",
    "**\n!Dockerfile\n!src",
    "a[!x]b",  # bracket expressions may match a "/" or hold one: asked of every path
    "x[.-0]y",
    "a[b/c]d",
]


@pytest.mark.parametrize("patterns", DOCKER_DOCS_EXAMPLES)
def test_the_files_sent_are_those_docker_py_sends(tmp_path, patterns):
    from docker.utils.build import exclude_paths

    from pytest_multiarch.context import context_entries

    root = tmp_path / "ctx"
    for rel in [
        "Dockerfile", "README.md", "README-secret.md", "README-other.md", "CHANGES.md", "temp1", "tempdir/x",
        "a/temporary.txt", "a/b/temp.txt", "a/b/c/temp.txt", "src/main.go", "src/deep/x.go", "docs/a.md",
        "docs/keep/a.md", "docs/keep/b.md", "abd/f", "x/y",
    ]:  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / ".dockerignore").write_text(patterns + "\n")
    spec = ImageSpec(name="", context=root, dockerfile=root / "Dockerfile")
    expected = exclude_paths(str(root), patterns.splitlines(), dockerfile="Dockerfile")
    assert set(context_entries(spec)) == expected


def test_the_index_holds_no_unkeyed_digest_of_a_file_that_may_be_secret(project, tmp_path, monkeypatch):
    """A context may hold a secret (a .env file): its digest in the index, and in the build key,
    is keyed with the user's key, so hashing a guessed content confirms nothing."""
    import hashlib

    secret = b"API_TOKEN=t0ken-guessable\n"
    (project.context / ".env").write_bytes(secret)
    digests = []
    for user in ("alice", "bob"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / user))
        index = tmp_path / user / "pytest-multiarch" / "contexts"
        digests.append(context_digest(project, index))
        (written,) = index.iterdir()
        assert hashlib.sha256(secret).hexdigest() not in written.read_text()
    assert digests[0] != digests[1]
