"""Early start: a repeated run starts the last run's containers while pytest collects."""

from __future__ import annotations

import os
import socket

import pytest

from tests.integration.helpers import OWNER_LABEL, SLOW_COLLECTION, run, unix_time


@pytest.mark.usefixtures("docker_engine")
class TestEarlyStart:
    """A run with the same arguments as the last one starts that run's containers while pytest
    collects; what collection then shows is not needed is removed at once."""

    def test_the_second_run_starts_its_containers_during_collection(self, busybox_project, monkeypatch):
        busybox_project.makeconftest(SLOW_COLLECTION)
        busybox_project.makepyfile(
            test_app="""
            import subprocess
            from pathlib import Path

            def test_x(multiarch_container, multiarch_platform):
                created = subprocess.run(["docker", "inspect", "-f", "{{.Created}}", multiarch_container.id],
                                         capture_output=True, text=True, check=True).stdout.strip()
                Path(f"images-created-{multiarch_platform.slug}").write_text(created)
            """
        )

        def created_before_collection_ended() -> dict[str, bool]:
            collected_at = float((busybox_project.path / "images-collected-at").read_text())
            created = {p.name: p.read_text() for p in busybox_project.path.glob("images-created-*")}
            return {name: unix_time(when) < collected_at for name, when in created.items()}

        run(busybox_project).assert_outcomes(passed=2)
        # Without a record of an earlier run, nothing starts before collection ends.
        both = ("images-created-linux-amd64", "images-created-linux-arm64")
        assert created_before_collection_ended() == dict.fromkeys(both, False)
        monkeypatch.setenv("WAIT_FOR_EARLY_CONTAINERS", "2")  # amd64 and arm64
        run(busybox_project).assert_outcomes(passed=2)
        assert created_before_collection_ended() == dict.fromkeys(both, True)

    def test_containers_started_early_but_no_longer_needed_are_removed_at_once(self, busybox_project, monkeypatch):
        (busybox_project.path / ".dockerignore").open("a").write("test_*.py\n")  # edits below: same image
        busybox_project.makeconftest(SLOW_COLLECTION)
        busybox_project.makepyfile(test_app="def test_x(multiarch_container):\n    pass\n")
        run(busybox_project, "-p", "no:randomly").assert_outcomes(passed=2)
        busybox_project.makepyfile(
            test_app=f"""
            import subprocess, time

            def test_without_container():
                # The containers started for the previous run's needs go while the tests run.
                owner = "label={OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    out = subprocess.run(["docker", "ps", "-aq", "--filter", owner], capture_output=True, text=True)
                    if not out.stdout.strip():
                        return
                    time.sleep(0.1)
                raise AssertionError("containers started early are still there: " + out.stdout)
            """
        )
        monkeypatch.setenv("WAIT_FOR_EARLY_CONTAINERS", "2")  # amd64 and arm64
        result = run(busybox_project, "-p", "no:randomly")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines_random(
            [
                "multiarch: starting the builds and containers the last run of this command needed (linux/amd64, *",
                "multiarch: the linux/arm64 container started early is not needed by these tests: removing it",
            ]
        )
        result.stdout.fnmatch_lines_random(
            ["*starting the linux/amd64 container*", "*starting the linux/arm64 container*"]
        )
