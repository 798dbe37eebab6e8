"""--multiarch-runtime podman under pytest-xdist (-n 2): each platform built once for the whole
run though both workers test both platforms, the controller's report names those images, every
podman service (the controller's, the workers') gone afterwards, and no container left on podman."""

from __future__ import annotations

import json
import os
import re
import subprocess

from tests.integration import podman_helpers
from tests.integration.helpers import change_the_image, mode
from tests.integration.podman_helpers import podman_containers, services_of

podman_engine = podman_helpers.podman_engine  # the fixtures, for this module
podman_project = podman_helpers.podman_project

XDIST_TESTS = """
import json, os, pytest
from pathlib import Path

@pytest.mark.parametrize("n", range(4))
def test_x(multiarch_image, multiarch_container, worker_id, n):
    record = {"image": multiarch_image.id, "reused": multiarch_image.reused, "pid": os.getpid()}
    Path(f"images-{worker_id}-{multiarch_image.platform.slug}.json").write_text(json.dumps(record))
    # podman 4 sometimes loses a short exec's output (containers/podman#9096): asked twice
    machine = multiarch_container.exec("uname -m").strip() or multiarch_container.exec("uname -m").strip()
    assert machine == multiarch_image.platform.machine
"""


def test_xdist_on_podman_builds_each_platform_once_and_leaves_no_service_or_container(podman_project):
    podman_project.makepyfile(test_app=XDIST_TESTS)
    podman_project.makeconftest(
        """
        import os
        from pathlib import Path

        def pytest_configure(config):
            if not hasattr(config, "workerinput"):
                Path("images-controller.pid").write_text(str(os.getpid()))
        """
    )
    change_the_image(podman_project, f"{os.getpid()}-podman-xdist")  # a new build key: a real build
    before = set(podman_containers())
    args = ["-p", "xdist", "-n", "2", "--multiarch-runtime", "podman", "--multiarch-secret", "id=tok,env=HOME"]
    args += ["--multiarch-report=report.json"]
    result = podman_project.runpytest_subprocess(*args)
    result.assert_outcomes(passed=8)
    out = result.stdout.str()
    records = {p.name: json.loads(p.read_text()) for p in podman_project.path.glob("images-gw*.json")}
    # Both workers tested both platforms (gw0/gw1 x amd64/arm64); one build per platform ran.
    assert len(records) == 4 and len({name.split("-")[1] for name in records}) == 2, records
    assert [r["reused"] for r in records.values()].count(False) == 2, records
    images = {r["image"] for r in records.values()}
    assert len(images) == 2, records
    for image in images:  # podman's images, one per platform
        inspected = subprocess.run(["podman", "image", "inspect", image], capture_output=True, text=True)
        assert inspected.returncode == 0, f"{image} is not in podman's storage: {inspected.stderr}"
    for platform in ("linux/amd64", "linux/arm64"):
        assert re.search(rf"^{platform} +4 +0 +0 +0 +{mode(platform)} +\d+\.\d s ", out, re.M), out
    assert re.search(r"^multiarch: runtime: podman \d+\.\d+\.\d+", out, re.M), out
    # The controller's report has the workers' images, one per platform, and podman as engine.
    report = json.loads((podman_project.path / "report.json").read_text())
    assert {p["image_id"] for p in report["platforms"]} == images, report
    assert {(p["engine"], p["result"], len(p["passed"])) for p in report["platforms"]} == {("podman", "PASSED", 4)}
    workers = {r["pid"] for r in records.values()}
    assert len(workers) == 2, records
    controller = int((podman_project.path / "images-controller.pid").read_text())
    for pid in (controller, *workers):  # the controller builds ahead: it has a service too
        assert services_of(pid) == [], f"the podman service of pytest process {pid} outlived it"
        assert podman_containers(pid) == [], f"pytest process {pid} left containers on podman"
    assert set(podman_containers()) <= before, "containers left on podman"
