"""No container outlives its run, however it ends; a killed run's containers go with the next run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from conftest import BUSYBOX
from pytest_multiarch.names import PID_NAMESPACE_LABEL
from tests.integration.helpers import OWNER_LABEL, containers_of, run, wait_for


@pytest.mark.usefixtures("docker_engine")
class TestCleanup:
    @pytest.mark.parametrize("how", ["sigterm", "keyboardinterrupt", "failure"])
    def test_containers_are_removed_however_the_run_ends(self, busybox_project, how):
        busybox_project.makepyfile(
            test_app=f"""
            import os, signal
            from pathlib import Path

            def test_x(multiarch_container):
                Path("pid").write_text(str(os.getpid()))
                how = {how!r}
                if how == "sigterm":
                    os.kill(os.getpid(), signal.SIGTERM)
                elif how == "keyboardinterrupt":
                    raise KeyboardInterrupt
                assert False, "failing on purpose"
            """
        )
        busybox_project.makepyfile(test_later="def test_after(): pass")
        result = busybox_project.runpytest_subprocess("--multiarch-platforms=linux/arm64", "-p", "no:randomly")
        expected = pytest.ExitCode.TESTS_FAILED if how == "failure" else pytest.ExitCode.INTERRUPTED
        assert result.ret == expected, result.stdout.str()  # not an INTERNALERROR, nor a crash
        if how == "failure":
            result.assert_outcomes(failed=1, passed=1)
        else:  # SIGTERM stops the whole session like Ctrl-C, it does not just fail one test
            result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
            result.stdout.no_fnmatch_line("*test_later.py .*")
        pid = (busybox_project.path / "pid").read_text()
        assert containers_of(f"{socket.gethostname()}:{pid}") == []

    def test_containers_of_a_killed_run_are_removed_by_the_next(self, busybox_project):
        # Any pytest-multiarch session on this host removes an orphan of this host, another test
        # session running beside this one too. Where it can (root), the session runs under a host
        # name of its own (a UTS namespace), and the orphans carry that name: its to remove alone.
        host = f"pm-sweep-{os.getpid()}"
        own_host = subprocess.run(["unshare", "--uts", "hostname", host], capture_output=True).returncode == 0
        if not own_host:
            host = socket.gethostname()
        dead = subprocess.Popen(["true"])
        dead.wait()
        owner = f"{host}:{dead.pid}"

        def start(*labels: str) -> str:
            label_args = [arg for label in (f"{OWNER_LABEL}={owner}", *labels) for arg in ("--label", label)]
            return subprocess.run(
                ["docker", "run", "-d", "--platform", "linux/amd64", *label_args, f"{BUSYBOX}-amd64", "sleep", "600"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()

        orphan = start()
        # The same host name and pid, but a process of another PID namespace (a CI job in its own
        # container with host networking): whether it still runs cannot be told from here.
        elsewhere = start(f"{PID_NAMESPACE_LABEL}=pid:[1]")
        try:
            assert set(containers_of(owner)) == {orphan[:12], elsewhere[:12]}
            busybox_project.makepyfile(test_app="def test_x(multiarch_container): pass")
            if own_host:
                renamed = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$0" "$@"']
                pytest_run = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
                result = busybox_project.run(*renamed, *pytest_run, "--multiarch-platforms=linux/amd64")
            else:
                result = run(busybox_project, "--multiarch-platforms=linux/amd64")
            result.assert_outcomes(passed=1)
            result.stdout.fnmatch_lines(
                ["*removed 1 container(s) left by earlier pytest runs that could not remove them*"]
            )
            assert containers_of(owner) == [elsewhere[:12]]
        finally:
            subprocess.run(["docker", "rm", "-f", orphan, elsewhere], capture_output=True)


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.leaves_containers("the first session is killed with SIGKILL; the second removes what it left")
def test_a_killed_run_only_session_leaves_a_container_the_next_run_only_session_removes(busybox_project):
    """A session that only uses multiarch_run starts containers too: the next one, run-only as
    well, must sweep what a SIGKILLed one left (it swept only when it started a container). Both
    run under a host name of their own (a UTS namespace, as root) so that no other session on
    this machine sweeps first."""
    host = f"pm-runonly-{os.getpid()}"
    if subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs a UTS namespace of its own (root): another session could sweep first")
    busybox_project.makepyfile(
        test_run="""
        def test_run(multiarch_run):
            multiarch_run("sleep", "300")
        """,
        test_quick="def test_quick(multiarch_run):\n    assert multiarch_run('true').exit_code == 0\n",
    )
    renamed = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$0" "$@"']
    pytest_run = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--multiarch-platforms=linux/amd64"]
    log = busybox_project.path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(
            [*renamed, *pytest_run, "test_run.py"], cwd=busybox_project.path, stdout=out, stderr=out
        )
    owner = f"{host}:{first.pid}"  # unshare and sh exec: the pid is pytest's
    try:
        # The running one-shot container (under the new host name the engine does not look local,
        # so the architecture check reads the image through a created container of its own,
        # which it removes at once: not the one this test is about).
        left = wait_for(lambda: running_of(owner) or first.poll() is not None, "the one-shot container")
        assert first.poll() is None, log.read_text()
        first.kill()
        first.wait(timeout=60)
        assert running_of(owner) == left  # SIGKILL: nothing removed it
        result = busybox_project.run(*renamed, *pytest_run, "test_quick.py")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*removed 1 container(s) left by earlier pytest runs that could not remove*"])
        assert containers_of(owner) == []
    finally:
        if first.poll() is None:
            first.kill()
        subprocess.run(["docker", "rm", "-f", *containers_of(owner)], capture_output=True)


@pytest.mark.usefixtures("docker_engine")
def test_the_older_build_a_killed_session_left_goes_with_the_next_warm_run(busybox_project):
    """A session killed after its build, before its prune, leaves the older image; the next run
    finds its build unchanged (warm runs skip pruning) and must prune that slot all the same."""
    busybox_project.makepyfile(
        test_image="""
        import os, time
        from pathlib import Path

        def test_image(multiarch_image):
            # images-*: in .dockerignore, so not in the build context
            Path("images-" + os.environ["ROUND"]).write_text(multiarch_image.id)
            if os.environ["ROUND"] == "killed":
                time.sleep(300)
        """
    )
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--multiarch-platforms=linux/amd64"]
    path = busybox_project.path

    def session(round_name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(base, cwd=path, env={**os.environ, "ROUND": round_name}, stdout=subprocess.DEVNULL)

    assert session("first").wait(timeout=120) == 0
    # A new build: the Dockerfile is in the build key (a file it does not COPY is not, since the
    # key covers only what the Dockerfile reaches), and a new label makes a new image id.
    (path / "Dockerfile").write_text((path / "Dockerfile").read_text() + "LABEL round=killed\n")
    killed = session("killed")
    try:
        wait_for(lambda: (path / "images-killed").exists() or killed.poll() is not None, "the second build")
    finally:
        killed.kill()
        killed.wait(timeout=60)
    older, newer = (path / "images-first").read_text(), (path / "images-killed").read_text()

    def loaded(image: str) -> bool:
        return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0

    assert older != newer and loaded(older)  # the killed session never pruned
    assert session("warm").wait(timeout=120) == 0
    assert (path / "images-warm").read_text() == newer  # found unchanged: no build
    assert not loaded(older) and loaded(newer)


@pytest.mark.usefixtures("docker_engine")
def test_a_session_leaves_the_process_as_it_found_it(busybox_project):
    """os.environ, SIGTERM's handler and the user's own testcontainers and containers are as
    before a session that built and ran containers; and what one in-process session declared
    with multiarch_fixtures is unknown to the next."""
    import signal

    from testcontainers.core.config import testcontainers_config

    busybox_project.makeconftest(
        """
        import docker
        from pytest_multiarch import multiarch_fixtures

        api_image, api_container, api_http = multiarch_fixtures("api")

        def pytest_sessionfinish(session):
            # the user's own container, started with their own client: the plugin must not touch it
            client = docker.from_env()
            mine = client.containers.run("127.0.0.1:5000/multiarch/busybox:1", ["sleep", "60"], detach=True,
                                         platform="linux/amd64", labels={"test": "users-own"})
            session.config.users_own = mine.id
        """
    )
    busybox_project.makepyfile(
        test_app="""
        def test_x(api_container, multiarch_platform):
            assert api_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine
        """
    )

    def environ_now() -> dict[str, str]:  # pytest itself drops the outer test's PYTEST_CURRENT_TEST
        return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}

    environ = environ_now()
    sigterm = signal.getsignal(signal.SIGTERM)
    ryuk = testcontainers_config._ryuk_disabled
    result = busybox_project.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    users_own = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", "label=test=users-own"], capture_output=True, text=True
    ).stdout.split()
    try:
        assert len(users_own) == 1  # still running: the plugin removed only its own containers
    finally:
        subprocess.run(["docker", "rm", "-f", *users_own], capture_output=True)
    assert environ_now() == environ
    assert signal.getsignal(signal.SIGTERM) == sigterm
    assert testcontainers_config._ryuk_disabled == ryuk
    assert containers_of(f"{socket.gethostname()}:{os.getpid()}") == []
    # A second session in the same process: the first one's declaration is gone with its conftest.
    (busybox_project.path / "conftest.py").unlink()
    busybox_project.makepyfile(
        test_app="""
        from pytest_multiarch.fixtures import declarations

        def test_nothing_declared_before(request):
            found = declarations(request.config.pluginmanager.get_plugins())
            assert sorted(found) == ["multiarch"]
        """
    )
    busybox_project.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert environ_now() == environ


def running_of(owner: str) -> list[str]:
    """Running containers of the session ``owner`` (host:pid)."""
    listed = ["docker", "ps", "-q", "--filter", f"label={OWNER_LABEL}={owner}"]
    return subprocess.run(listed, capture_output=True, text=True).stdout.split()
