"""Early removal: a container goes once the last test (or fixture) using it is done."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.integration.helpers import FOREIGN, NATIVE, RUNNING_SOURCE, run


@pytest.mark.usefixtures("docker_engine")
class TestEarlyRemoval:
    def test_a_platforms_container_goes_once_its_last_test_is_done(self, busybox_project):
        # The native platform runs first; while the other's tests run, its container is being removed.
        busybox_project.makepyfile(
            running=RUNNING_SOURCE,
            test_app=f"""
            import time
            from running import running

            ids = {{}}
            FIRST = {NATIVE!r}

            def test_a(multiarch_container, multiarch_platform):
                ids[str(multiarch_platform)] = multiarch_container.id

            def test_b(multiarch_container, multiarch_platform):
                if str(multiarch_platform) == FIRST:
                    assert running(ids[FIRST])  # still needed here
                    return
                deadline = time.monotonic() + 30
                while running(ids[FIRST]) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not running(ids[FIRST])
                assert running(multiarch_container.id)
            """,
        )
        result = run(busybox_project, "-v", "-p", "no:randomly")
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines([f"*test_a?{NATIVE}?*", f"*test_b?{NATIVE}?*", f"*test_a?{FOREIGN}?*"])

    def test_a_container_a_module_fixture_uses_stays_until_that_fixture_is_torn_down(self, busybox_project):
        # pytest tears the amd64 instance of a module-scoped fixture down at arm64's first setup,
        # after amd64's last test: the container must still be there for its teardown, and go
        # right after it. The test module overrides the fixture with a function-scoped one that
        # requests it, which must not hide the module-scoped user.
        busybox_project.makeconftest(
            """
            import threading, time
            from pathlib import Path
            import pytest

            @pytest.fixture(scope="module")
            def seeded(multiarch_container):
                multiarch_container.exec(["touch", "/tmp/seeded"])
                yield multiarch_container
                # A removal begun too early (after the platform's last test, before this teardown)
                # runs in the plugin's release thread: let it finish, then the container must be there.
                for thread in threading.enumerate():
                    if thread.name == "multiarch-release":
                        thread.join()
                multiarch_container.exec(["rm", "/tmp/seeded"])
                done = f"{multiarch_container.id} {time.time()}"
                Path(f"images-teardown-{multiarch_container.platform.slug}").write_text(done)
            """
        )
        busybox_project.makepyfile(
            running=RUNNING_SOURCE,
            test_app="""
            import time
            from running import running
            import pytest

            ids = {}

            @pytest.fixture
            def seeded(seeded):
                return seeded

            def test_a(seeded, multiarch_platform):
                ids[str(multiarch_platform)] = seeded.id
                assert seeded.exec(["ls", "/tmp/seeded"]).strip() == "/tmp/seeded"

            def test_b(multiarch_platform):
                if str(multiarch_platform) == "linux/arm64":  # amd64's went after that teardown
                    deadline = time.monotonic() + 20
                    while running(ids["linux/amd64"]) and time.monotonic() < deadline:
                        time.sleep(0.1)
                    assert not running(ids["linux/amd64"])
            """,
        )
        since = time.time()
        result = run(busybox_project, "-v", "-p", "no:randomly")
        result.assert_outcomes(passed=4)
        # And by the engine's clock too: the amd64 container was killed only after its teardown ended.
        container, torn_down = (busybox_project.path / "images-teardown-linux-amd64").read_text().split()
        listed = ["docker", "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}"]
        listed += ["--filter", f"container={container}", "--filter", "event=kill", "--filter", "event=die"]
        events = subprocess.run([*listed, "--format", "{{.TimeNano}}"], capture_output=True, text=True, check=True)
        events = events.stdout.split()
        assert events and min(int(e) for e in events) / 1e9 > float(torn_down), (events, torn_down)

    def test_a_test_asking_again_after_the_removal_gets_a_new_container(self, busybox_project):
        # A plugin that reorders the tests after collection (as this conftest does) must not
        # have a test handed a container that was removed after "its last test".
        busybox_project.makeconftest(
            """
            import pytest

            @pytest.hookimpl(trylast=True)
            def pytest_collection_finish(session):
                session.items.reverse()
            """
        )
        busybox_project.makepyfile(
            test_app="""
            seen = []

            def test_x(multiarch_container):
                seen.append(multiarch_container.id)
                assert multiarch_container.exec(["uname", "-m"]).strip() == "x86_64"

            def test_y(multiarch_container):
                test_x(multiarch_container)
            """
        )
        result = run(busybox_project, "--multiarch-platforms=linux/amd64", "-v")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["*test_y*PASSED*", "*test_x*PASSED*"])
