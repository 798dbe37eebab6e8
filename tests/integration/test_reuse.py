"""--multiarch-reuse: containers kept for the next run, trusted only once their hook ran."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time

import pytest

from pytest_multiarch.names import REUSE_SLOT_LABEL, REUSE_STARTER_LABEL
from tests.integration.helpers import mode, reuse_containers, run


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.leaves_containers("--multiarch-reuse sessions keep theirs, and one is killed in its hook")
class TestReuse:
    def test_reuse_keeps_containers_for_the_next_run_and_replaces_stale_ones(self, busybox_project):
        busybox_project.makepyfile(
            test_app="""
            from pathlib import Path

            def test_x(multiarch_container, multiarch_http, multiarch_platform):
                Path(f"images-{multiarch_platform.slug}").write_text(multiarch_container.id)
                assert multiarch_http.get("/").ok
            """
        )
        slot_filter = f"label={REUSE_SLOT_LABEL}"

        def ids() -> dict[str, str]:
            return {p.name: p.read_text() for p in busybox_project.path.glob("images-*")}

        try:
            run(busybox_project, "--multiarch-reuse").assert_outcomes(passed=2)
            first = ids()
            second_run = run(busybox_project, "--multiarch-reuse")
            second_run.assert_outcomes(passed=2)
            amd, arm = mode("linux/amd64"), mode("linux/arm64")
            second_run.stdout.fnmatch_lines([f"linux/amd64*{amd}*reused*reused*", f"linux/arm64*{arm}*reused*reused*"])
            assert ids() == first  # the very same containers answered
            # A change the image sees (the Dockerfile; a file it does not COPY is not in the build key).
            dockerfile = busybox_project.path / "Dockerfile"
            dockerfile.write_text(dockerfile.read_text() + "LABEL changed=yes\n")
            run(busybox_project, "--multiarch-reuse").assert_outcomes(passed=2)
            third = ids()
            assert set(third.values()).isdisjoint(first.values())
            listed = subprocess.run(
                ["docker", "ps", "-aq", "--no-trunc", "--filter", slot_filter], capture_output=True, text=True
            ).stdout.split()
            assert not set(first.values()) & set(listed)  # the stale ones were replaced, not kept
            assert set(third.values()) <= set(listed)
        finally:
            for cid in set(ids().values()) | set(first.values() if "first" in locals() else []):
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)

    def test_a_verified_container_is_reused_as_it_is_one_whose_hook_never_ran_is_replaced(
        self, busybox_project, monkeypatch, tmp_path
    ):
        """A reused container is trusted only if the session that started it ran its hook (the
        container's name says so): then without another uname check (counted from the engine's
        exec events). One left by a session killed before its hook is replaced, not reused."""
        busybox_project.makeconftest(
            """
            import os
            from pathlib import Path

            def pytest_multiarch_container_started(config, container):
                container.exec(["touch", "/tmp/seeded"])
                with Path(os.environ["HOOK_CALLS"]).open("a") as calls:  # outside the build context
                    calls.write(f"{container.platform}\\n")
            """
        )
        monkeypatch.setenv("HOOK_CALLS", str(tmp_path / "hook-calls"))

        def hook_calls() -> list[str]:
            """Platforms the container-started hook was called for, since the last call."""
            calls = tmp_path / "hook-calls"
            called = sorted(calls.read_text().split()) if calls.exists() else []
            calls.unlink(missing_ok=True)
            return called

        busybox_project.makepyfile(
            test_app="""
            from pathlib import Path

            def test_x(multiarch_container, multiarch_platform):
                Path(f"images-{multiarch_platform.slug}").write_text(multiarch_container.id)
                assert multiarch_container.exec(["ls", "/tmp/seeded"]).strip() == "/tmp/seeded"
            """
        )

        def ids() -> dict[str, str]:
            return {p.name.removeprefix("images-"): p.read_text() for p in busybox_project.path.glob("images-*")}

        def uname_execs_during(*args: str) -> dict[str, int]:
            since = time.time()
            run(busybox_project, *args).assert_outcomes(passed=2)
            events = subprocess.run(
                [
                    "docker",
                    "events",
                    "--since",
                    f"{since:.3f}",
                    "--until",
                    f"{time.time():.3f}",
                    "--filter",
                    "event=exec_create",
                    "--format",
                    "{{.Actor.ID}} {{.Action}}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.splitlines()
            return {slug: sum(e.startswith(cid) and "uname -m" in e for e in events) for slug, cid in ids().items()}

        leftover: list[str] = []
        try:
            assert uname_execs_during("--multiarch-reuse") == {"linux-amd64": 1, "linux-arm64": 1}
            assert hook_calls() == ["linux/amd64", "linux/arm64"]
            names = {
                slug: subprocess.run(
                    ["docker", "inspect", "-f", "{{.Name}}", cid], capture_output=True, text=True
                ).stdout.strip()
                for slug, cid in ids().items()
            }
            assert all(re.search(rf"pytest-multiarch.*-{slug}-[0-9a-f]{{8}}$", name) for slug, name in names.items()), (
                names
            )
            first = ids()
            assert uname_execs_during("--multiarch-reuse") == {"linux-amd64": 0, "linux-arm64": 0}
            assert ids() == first
            assert hook_calls() == []  # README: the hook is not called again for a reused container
            # As if a session had been killed between the arm64 container's start and its hook:
            # the same reuse labels, a starter that is gone, the random name, nothing seeded.
            labels = json.loads(
                subprocess.run(
                    ["docker", "inspect", "-f", "{{json .Config.Labels}}", first["linux-arm64"]],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            image = subprocess.run(
                ["docker", "inspect", "-f", "{{.Config.Image}}", first["linux-arm64"]],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            subprocess.run(["docker", "rm", "-f", first["linux-arm64"]], capture_output=True, check=True)
            dead = subprocess.Popen(["true"])
            dead.wait()
            labels[REUSE_STARTER_LABEL] = f"{socket.gethostname()}:{dead.pid}"
            label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
            unseeded = subprocess.run(
                ["docker", "run", "-d", "--platform", "linux/arm64", "-p", "127.0.0.1::8080", *label_args, image],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            leftover.append(unseeded)
            uname_execs_during("--multiarch-reuse")  # its test checks the seed: the hook ran
            assert ids()["linux-amd64"] == first["linux-amd64"]
            assert ids()["linux-arm64"] != unseeded
            assert hook_calls() == ["linux/arm64"]  # the replacement's, and only its
            gone = subprocess.run(["docker", "container", "inspect", unseeded], capture_output=True, text=True)
            assert gone.returncode != 0 and "No such container" in gone.stderr, gone.stderr
        finally:
            for cid in [*ids().values(), *leftover]:
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)

    def test_a_container_whose_session_was_killed_in_its_hook_is_replaced(self, busybox_project, monkeypatch):
        """The container is trusted (renamed) only after its hook: one whose session died in the
        hook keeps its random name, and the next session replaces it instead of reusing it."""
        busybox_project.makeconftest(
            """
            import os, signal

            def pytest_multiarch_container_started(config, container):
                if os.environ.get("KILL_IN_HOOK"):  # not a file: that would change the build context
                    os.kill(os.getpid(), signal.SIGKILL)
                container.exec(["touch", "/tmp/seeded"])
            """
        )
        busybox_project.makepyfile(
            test_app="""
            def test_x(multiarch_container):
                assert multiarch_container.exec(["ls", "/tmp/seeded"]).strip() == "/tmp/seeded"
            """
        )
        reuse = ("--multiarch-reuse", "--multiarch-platforms=linux/amd64")

        before = reuse_containers()
        try:
            monkeypatch.setenv("KILL_IN_HOOK", "1")
            killed = busybox_project.runpytest_subprocess(*reuse)
            assert killed.ret == -signal.SIGKILL, killed.stdout.str()  # killed in the hook, not an error of its own
            (left,) = reuse_containers() - before
            monkeypatch.delenv("KILL_IN_HOOK")
            run(busybox_project, *reuse).assert_outcomes(passed=1)  # seeded by its own hook
            assert left not in reuse_containers()
        finally:
            for cid in reuse_containers() - before:
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)

    def test_xdist_workers_share_a_reuse_container_once_its_hook_ran(self, busybox_project):
        """The second worker finds the first one's container before that worker's hook is done:
        it waits for it instead of testing an unseeded container. The hook seeds only once the
        other worker waits (the plugin's wait is wrapped to leave a note), so the race happens
        every time instead of when a fixed sleep was long enough."""
        busybox_project.makeconftest(
            """
            import os, time
            from pathlib import Path

            import pytest_multiarch.containers

            waiting = pytest_multiarch.containers.wait_until_renamed

            def noted(*args, **kwargs):
                Path(f"images-waiting-{os.getpid()}").write_text("")  # images-*: not in the context
                return waiting(*args, **kwargs)

            pytest_multiarch.containers.wait_until_renamed = noted

            def pytest_multiarch_container_started(config, container):
                deadline = time.monotonic() + 120
                while not list(Path().glob("images-waiting-*")) and time.monotonic() < deadline:
                    time.sleep(0.05)
                container.exec(["touch", "/tmp/seeded"])
            """
        )
        busybox_project.makepyfile(
            test_app="""
            import pytest

            @pytest.mark.parametrize("n", range(4))
            def test_x(multiarch_container, n):
                assert multiarch_container.exec(["ls", "/tmp/seeded"]).strip() == "/tmp/seeded"
            """
        )
        before = reuse_containers()
        try:
            result = busybox_project.runpytest_subprocess(
                "-p", "xdist", "-n", "2", "--multiarch-reuse", "--multiarch-platforms=linux/amd64"
            )
            result.assert_outcomes(passed=4)
            assert len(reuse_containers() - before) == 1  # one container, shared by both workers
            assert len(list(busybox_project.path.glob("images-waiting-*"))) == 1  # the other worker waited
        finally:
            for cid in reuse_containers() - before:
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
