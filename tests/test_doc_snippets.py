"""The code blocks of README.md and docs/ (issue 27: snippets that did not paste): every one is
known to tests/integration/test_doc_snippets.py, which runs, collects or builds it as written,
and every Python block compiles. A new block fails here until a test covers it."""

from __future__ import annotations

import re

import pytest

from tests.snippets import snippets

# How each block is exercised (tests/integration/test_doc_snippets.py).
RUN = "run against a busybox image, both platforms"
COLLECT = "collected (pytest --co): it names platforms the busybox base image does not have"
BUILD = "built, both platforms"
COMPILE = "compiled only: it needs postgres:16 from Docker Hub"
COVERED = {
    "README.md: # pytest.ini (next to your Dockerfile)": RUN,
    "README.md: # tests/test_app.py": RUN,
    "README.md: import pytest": COLLECT,
    "README.md: # conftest.py": COLLECT,
    'README.md: RUN --mount=type=secret,id=npm NPM_TOKEN="$(cat /run/secrets/npm)" npm ci   '
    "# --multiarch-secret id=npm,env=NPM_TOKEN": BUILD,
    "docs/any-image.md: def test_version(multiarch_run):": RUN,
    "docs/any-image.md: # conftest.py": RUN,
    "docs/any-image.md: import requests": RUN,
    "docs/any-image.md: # conftest.py (2)": COMPILE,
    "docs/any-image.md: def test_runs_as_non_root_everywhere(multiarch_image):  # also as a release gate": RUN,
    "docs/emulation.md: [pytest]": COLLECT,
    "docs/emulation.md: import pytest": COLLECT,
    "README.md: multiarch_structure_tests =": COLLECT,
    "docs/structure-tests.md: # pytest.ini": COLLECT,
    "docs/structure-tests.md: # conftest.py": RUN,
}


def test_every_block_is_covered_by_a_test() -> None:
    assert set(snippets()) == set(COVERED)


@pytest.mark.parametrize("key", [k for k, s in snippets().items() if s.language == "python"])
def test_every_python_block_compiles(key: str) -> None:
    compile(snippets()[key].text, key, "exec")


def test_no_dockerfile_block_needs_a_newer_frontend_than_docker_26s() -> None:
    """Docker 26's built-in Dockerfile frontend refuses env= in a secret mount (syntax 1.10+),
    and a `# syntax=` line needs Docker Hub: the README says so in prose, its blocks build."""
    for key, block in snippets().items():
        if block.language == "dockerfile":
            assert not re.search(r"--mount=type=secret[^ ]*,env=", block.text), key
            assert "# syntax=" not in block.text, key
