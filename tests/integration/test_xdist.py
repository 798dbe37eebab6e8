"""pytest-xdist: one build per platform across workers, and the controller building ahead of them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from pytest_multiarch.config import ImageSpec
from pytest_multiarch.names import image_repository
from tests.integration.helpers import change_the_image, mode


@pytest.mark.usefixtures("docker_engine")
def test_xdist_builds_each_platform_once_across_workers(busybox_project):
    busybox_project.makepyfile(
        test_app="""
        import pytest
        from pathlib import Path

        @pytest.mark.parametrize("n", range(6))
        def test_x(multiarch_image, multiarch_container, worker_id, n):
            out = Path(f"images-{worker_id}-{multiarch_image.platform.slug}")
            out.write_text(f"{multiarch_image.id} reused={multiarch_image.reused}")
            assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_image.platform.machine
        """
    )
    change_the_image(busybox_project, str(os.getpid()) + "-xdist")  # a new build key: a real build
    result = busybox_project.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "--dist", "load", "-v", "--junitxml=report.xml"
    )
    result.assert_outcomes(passed=12)
    suite = ET.parse(busybox_project.path / "report.xml").getroot().find("testsuite")
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert re.search(r"\(linux/[^)]+\)$", suite_props["multiarch.engine"]), suite_props  # as without xdist
    records = [p.read_text() for p in busybox_project.path.glob("images-gw*")]
    # Both workers used both platforms' images, and only one build per platform really ran.
    assert len(records) == 4, records
    assert sum("reused=False" in r for r in records) == 2, records
    assert len({r.split()[0] for r in records}) == 2
    result.stdout.fnmatch_lines(["*PASSED*test_x?linux/arm64-0?*"])
    # The controller's summary has the workers' columns: the build time of the worker that built.
    (arm64_image,) = {p.read_text().split()[0] for p in busybox_project.path.glob("images-gw*-linux-arm64")}
    summary = re.search(
        rf"^linux/arm64 +6 +0 +0 +0 +{mode('linux/arm64')} +\d+\.\d s +([0-9a-f]{{12}}) +\d+\.\d s +1/0$",
        result.stdout.str(),
        re.M,
    )
    assert summary and arm64_image.removeprefix("sha256:").startswith(summary.group(1)), result.stdout.str()
    # --multiarch-rebuild builds again, but still once per platform for the whole run.
    first = {r.split()[0] for r in records}
    for record in busybox_project.path.glob("images-gw*"):
        record.unlink()
    rebuilt = busybox_project.runpytest_subprocess("-p", "xdist", "-n", "2", "--multiarch-rebuild")
    rebuilt.assert_outcomes(passed=12)
    records = [p.read_text() for p in busybox_project.path.glob("images-gw*")]
    assert sum("reused=False" in r for r in records) == 2, records
    # ... and the images it replaced (same build keys) are pruned, not left dangling.
    assert all(_no_such_image(i) for i in first)
    # After a change, the controller removes the older builds once all workers are done.
    older = {r.split()[0] for r in records}
    change_the_image(busybox_project, str(os.getpid()) + "-xdist-changed")
    busybox_project.runpytest_subprocess("-p", "xdist", "-n", "2").assert_outcomes(passed=12)
    newer = {p.read_text().split()[0] for p in busybox_project.path.glob("images-gw*")}
    assert newer.isdisjoint(older) and len(newer) == 2
    exists = {
        i: subprocess.run(["docker", "image", "inspect", i], capture_output=True).returncode == 0 for i in older | newer
    }
    assert exists == {**dict.fromkeys(older, False), **dict.fromkeys(newer, True)}


@pytest.mark.usefixtures("docker_engine")
def test_xdist_controller_starts_the_builds_the_last_run_needed(busybox_project, monkeypatch):
    """Repeating a -n 2 run, the controller builds while its workers start: they find the
    images built (reused=True for every worker), though a change made them new builds."""
    # Workers that take a while to start, as in a large project: with WAIT_FOR_CONTROLLER set, a
    # worker starts once the images of this run (tags not in images-tags-before) are loaded for
    # both platforms, at most 120 s. Not a fixed sleep: the controller's head start is made
    # certain, not likely; without it the workers build themselves, and reused=False says so.
    spec = ImageSpec(name="", context=busybox_project.path, dockerfile=busybox_project.path / "Dockerfile")
    repository = image_repository(spec)
    busybox_project.makeconftest(
        f"""
        import os, subprocess, time
        from pathlib import Path

        def pytest_configure(config):
            if not (hasattr(config, "workerinput") and os.environ.get("WAIT_FOR_CONTROLLER")):
                return
            before = set(Path("images-tags-before").read_text().split())
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                listed = ["docker", "image", "ls", "--format", "{{{{.Tag}}}}", "{repository}"]
                tags = set(subprocess.run(listed, capture_output=True, text=True).stdout.split())
                if len({{tag.rsplit("-", 1)[0] for tag in tags - before}}) == 2:  # linux-amd64, linux-arm64
                    return
                time.sleep(0.1)
        """
    )
    busybox_project.makepyfile(
        test_app="""
        from pathlib import Path

        def test_x(multiarch_image, multiarch_container, worker_id):
            out = Path(f"images-{worker_id}-{multiarch_image.platform.slug}")
            out.write_text(f"{multiarch_image.id} reused={multiarch_image.reused}")

        def test_y(multiarch_container):
            pass
        """
    )

    def run_records(change: str) -> tuple[pytest.RunResult, list[str]]:
        for old in busybox_project.path.glob("images-gw*"):
            old.unlink()
        change_the_image(busybox_project, f"{os.getpid()}-{change}")  # a new build key: a real build
        listed = ["docker", "image", "ls", "--format", "{{.Tag}}", repository]
        tags = subprocess.run(listed, capture_output=True, text=True, check=True).stdout
        (busybox_project.path / "images-tags-before").write_text(tags)
        # Not runpytest_subprocess: it adds a --basetemp of its own to each run's command line.
        result = busybox_project.run(sys.executable, "-m", "pytest", "-p", "xdist", "-n", "2")
        result.assert_outcomes(passed=4)
        return result, [p.read_text() for p in busybox_project.path.glob("images-gw*")]

    # The controller prints what its own builds report; the workers' output is not shown.
    first, first_records = run_records("first")
    first.stdout.no_fnmatch_line("*build linux/*: done in*")  # no record yet: the workers build
    monkeypatch.setenv("WAIT_FOR_CONTROLLER", "1")
    second, second_records = run_records("second")
    second.stdout.fnmatch_lines_random(["*build linux/amd64: done in*", "*build linux/arm64: done in*"])
    assert second_records and all("reused=True" in r for r in second_records), second_records
    assert {r.split()[0] for r in second_records}.isdisjoint({r.split()[0] for r in first_records})


def _no_such_image(image_id: str) -> bool:
    """The engine says the image is gone (not merely that the call failed)."""
    done = subprocess.run(["docker", "image", "inspect", image_id], capture_output=True, text=True)
    return done.returncode != 0 and "No such image" in done.stderr
