"""Promises of the README that no other test checked (issue 24): ports only on the loopback for a
local engine, the container host setting and its testcontainers variable, a module-level
marker, and the preflight's cache."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import FOREIGN, NATIVE, run

pytestmark = pytest.mark.usefixtures("docker_engine")

WHERE = """
import json, subprocess
from pathlib import Path
from urllib.parse import urlsplit

def test_where(multiarch_container, multiarch_http, multiarch_platform):
    inspected = json.loads(subprocess.run(
        ["docker", "container", "inspect", multiarch_container.id], capture_output=True, text=True, check=True
    ).stdout)[0]
    bindings = inspected["NetworkSettings"]["Ports"]["8080/tcp"]
    record = {"host_ips": [b["HostIp"] for b in bindings], "url_host": urlsplit(multiarch_container.url()).hostname}
    Path(f"where-{multiarch_platform.slug}.json").write_text(json.dumps(record))
    assert multiarch_http.get("/").ok
"""


def _where(project: pytest.Pytester) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(project.path.glob("where-*.json"))]


def test_a_local_engine_publishes_on_the_loopback_only(busybox_project):
    busybox_project.makepyfile(test_app=WHERE)
    run(busybox_project).assert_outcomes(passed=2)
    assert _where(busybox_project) == [{"host_ips": ["127.0.0.1"], "url_host": "127.0.0.1"}] * 2


@pytest.mark.parametrize("how", ["option", "testcontainers"])
def test_the_container_host_is_where_tests_reach_the_ports(busybox_project, monkeypatch, how):
    busybox_project.makepyfile(test_app=WHERE)
    if how == "option":
        result = run(busybox_project, "--multiarch-container-host=localhost")
    else:
        monkeypatch.setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
        result = run(busybox_project)
    result.assert_outcomes(passed=2)  # reached there
    assert _where(busybox_project) == [{"host_ips": ["127.0.0.1"], "url_host": "localhost"}] * 2


def test_a_module_level_marker_narrows_every_test_of_the_module(busybox_project):
    busybox_project.makepyfile(
        test_app=f"""
import pytest

pytestmark = pytest.mark.multiarch(platforms=["{FOREIGN}"])

def test_a(multiarch_platform):
    assert str(multiarch_platform) == "{FOREIGN}"

class TestB:
    def test_b(self, multiarch_platform):
        assert str(multiarch_platform) == "{FOREIGN}"
"""
    )
    result = run(busybox_project, "-v")
    result.assert_outcomes(passed=2)
    assert f"[{NATIVE}]" not in result.stdout.str()


def test_the_preflight_is_remembered_per_engine_and_builder(busybox_project):
    busybox_project.makepyfile(test_app="def test_x(multiarch_platform): pass")
    assert not (busybox_project.path / ".docker" / "buildx" / "current").exists()  # a fresh HOME
    run(busybox_project).assert_outcomes(passed=2)  # it writes ~/.docker/buildx/current: keyed after it
    cached = list((busybox_project.path / ".cache" / "pytest-multiarch").glob("engine-*.json"))
    assert len(cached) == 1, cached
    saved = json.loads(cached[-1].read_text())
    saved["engine"]["builder_name"] = "planted-builder"  # what the next run shows, if it reads the cache
    cached[-1].write_text(json.dumps(saved))
    again = run(busybox_project)
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["multiarch: engine * builder planted-builder (*"])
    saved["time"] -= 601  # older than ten minutes: asked anew
    cached[-1].write_text(json.dumps(saved))
    fresh = run(busybox_project)
    assert "planted-builder" not in fresh.stdout.str()
