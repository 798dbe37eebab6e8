"""Functions and test-source snippets the integration tests share (a plain module, not a conftest)."""

from __future__ import annotations

import datetime
import os
import platform as host
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pytest_multiarch import Platform
from pytest_multiarch.names import OWNER_LABEL, REUSE_SLOT_LABEL


def _engine_native() -> str:
    """The engine's own platform (its host's when it does not answer): it runs that one natively
    and the other of linux/amd64 and linux/arm64 under QEMU. linux/amd64 on an x86_64 machine,
    linux/arm64 on an arm64 one (GitHub's ubuntu-24.04-arm, Apple Silicon)."""
    try:
        asked = ["docker", "version", "--format", "{{.Server.Arch}}"]
        arch = subprocess.run(asked, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        arch = ""
    return str(Platform.parse(f"linux/{arch or host.machine().lower()}"))  # x86_64 → linux/amd64


NATIVE = _engine_native()
FOREIGN = "linux/amd64" if NATIVE == "linux/arm64" else "linux/arm64"


def mode(platform: str) -> str:
    """What the summary and the header say of ``platform`` on this machine."""
    return "native" if platform == NATIVE else "emulated"


# What the engine says a loaded image is (its config's os/architecture/variant), for test sources:
# the plugin's own BuiltImage.platform is only the platform it was asked for.
LOADED_PLATFORM_SOURCE = """
import subprocess
from pytest_multiarch import Platform

def loaded_platform(image):
    inspect = ["docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}/{{.Variant}}", image.id]
    loaded = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip().rstrip("/")
    return Platform.parse(loaded)
"""

APP_TESTS = """
import pytest
from loaded import loaded_platform

def test_root(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {multiarch_platform.machine}"

def test_exec(multiarch_container, multiarch_platform):
    assert multiarch_container.exec("cat /www/built-on").strip() == multiarch_platform.machine
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine

def test_image(multiarch_image, multiarch_platform):
    assert multiarch_image.platform == multiarch_platform
    assert loaded_platform(multiarch_image) == multiarch_platform
    assert multiarch_image.tag.endswith(multiarch_platform.slug + "-" + multiarch_image.key[:16])

def test_not_parametrized():
    pass
"""


def containers_of(owner: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={OWNER_LABEL}={owner}"], capture_output=True, text=True
    )
    return out.stdout.split()


def reuse_containers() -> set[str]:
    """Ids of all --multiarch-reuse containers on the engine."""
    listed = ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={REUSE_SLOT_LABEL}"]
    return set(subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split())


def declare_app_twice(project: pytest.Pytester) -> None:
    """One Dockerfile with stages debug and prod, and two folders whose conftests declare "app"
    with either target; each folder's test checks it got its own stage."""
    project.makefile(
        "",
        Dockerfile="""\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE} AS debug
        RUN echo debug > /stage
        CMD ["sleep", "600"]
        FROM ${BASE_IMAGE} AS prod
        RUN echo prod > /stage
        CMD ["sleep", "600"]
        """,
    )
    for stage in ("debug", "prod"):
        folder = project.mkpydir(f"tests_{stage}")
        declare = f'app_image, app_container, _ = multiarch_fixtures("app", target="{stage}")'
        (folder / "conftest.py").write_text(f"from pytest_multiarch import multiarch_fixtures\n\n{declare}\n")
        check = f"assert app_container.exec(['cat', '/stage']).strip() == '{stage}'"
        (folder / f"test_{stage}.py").write_text(f"def test_stage(app_container):\n    {check}\n")


# running.py for generated test projects: is a container running (by id)?
RUNNING_SOURCE = """
import subprocess

def running(container_id):
    out = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"id={container_id}"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip() != ""
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in this process and check that the plugin removed every container it started."""
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
    assert containers_of(f"{socket.gethostname()}:{os.getpid()}") == []
    return result


# A conftest whose collection, as a large project's would, takes a while: with
# WAIT_FOR_EARLY_CONTAINERS=N it ends once N containers of this (in-process) session run, at
# most 120 s; not after a fixed time, which a loaded machine may need more of. In
# pytest_collection_modifyitems, before the plugin's own pytest_collection_finish starts what the
# tests need: only early start can have started containers by then.
SLOW_COLLECTION = f"""
import os, socket, subprocess, time
from pathlib import Path

def pytest_collection_modifyitems(session, config, items):
    wanted = int(os.environ.get("WAIT_FOR_EARLY_CONTAINERS", "0"))
    owner = f"label={OWNER_LABEL}={{socket.gethostname()}}:{{os.getpid()}}"
    deadline = time.monotonic() + 120
    while wanted and time.monotonic() < deadline:
        listed = subprocess.run(["docker", "ps", "-q", "--filter", owner], capture_output=True, text=True)
        if len(listed.stdout.split()) >= wanted:
            break
        time.sleep(0.1)
    Path("images-collected-at").write_text(str(time.time()))
"""


def unix_time(docker_time: str) -> float:
    """``2026-11-23T18:40:01.123456789Z`` (the engine's nanoseconds cut to microseconds)."""
    return datetime.datetime.fromisoformat(docker_time[:26].rstrip("Z") + "+00:00").timestamp()


def docker_cli_wrapper(
    folder, *, no_buildx: bool = False, hide_platform: str | None = None, build_as: tuple[str, str] | None = None
) -> str:
    """A `docker` in front of the real one that behaves like a machine without buildx, like a
    remote daemon whose builder cannot run ``hide_platform``, or like a builder that builds
    ``build_as[0]`` as ``build_as[1]``. Every call is logged to ``folder/fake-bin/calls``, so a
    test can tell that the plugin met it. Returns a PATH value."""
    real = shutil.which("docker")
    bin_dir = folder / "fake-bin"
    script = ["#!/bin/sh", f'echo "$*" >> {bin_dir / "calls"}']
    if no_buildx:
        script.append("""if [ "$1" = buildx ]; then echo "docker: 'buildx' is not a docker command." >&2; exit 1; fi""")
    if hide_platform:
        script += [
            # the builder does not list it, and the daemon looks remote (another host name), so
            # this kernel's binfmt_misc is not consulted
            f"""if [ "$1" = buildx ] && {{ [ "$2" = inspect ] || [ "$2" = ls ]; }}; then {real} "$@" | """
            f"""sed 's#{hide_platform}, ##g; s#, {hide_platform}##g; """
            f"""s#"{hide_platform}",##g; s#,"{hide_platform}"##g'; """
            """exit; fi""",
            f"""if [ "$1" = info ] || [ "$2" = info ]; then {real} "$@" | """
            f"""sed 's/"Name":"[^"]*"/"Name":"elsewhere"/g'; exit; fi""",
        ]
    if build_as:
        asked, built = build_as
        script += [
            """if [ "$1" = buildx ] && [ "$2" = build ]; then""",
            """  for arg do""",
            """    shift""",
            f"""    case "$arg" in {asked}) arg={built} ;; --platform={asked}) arg=--platform={built} ;; esac""",
            '    set -- "$@" "$arg"',
            """  done""",
            """fi""",
        ]
    script.append(f'exec {real} "$@"')
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("\n".join(script) + "\n")
    (bin_dir / "docker").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def shim_calls(folder) -> list[str]:
    """The command lines the docker_cli_wrapper in ``folder`` was called with."""
    calls = folder / "fake-bin" / "calls"
    return calls.read_text().splitlines() if calls.exists() else []


WAIT = 120  # seconds a state may take to be reached on a loaded machine before a test fails


def ctrl_c_as_usual() -> None:
    """A ``preexec_fn`` for a pytest session a test sends SIGINT to: SIGINT back to its default.
    A process started in the background of a non-interactive shell (a CI step's ``cmd &``)
    ignores SIGINT, and so do its children: Python then installs no KeyboardInterrupt handler,
    and the test's Ctrl-C would be lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, what: str, timeout: float = WAIT):
    """``condition()``'s first true value, polled every 0.1 s; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def owned_by(pid: int, host: str = "unix:///var/run/docker.sock", *, running: bool = False) -> list[str]:
    """Containers on the engine at ``host`` whose owner label names process ``pid``; with
    ``running``, only those running (not, say, the never-started one the architecture check reads
    the image's files from)."""
    listed = ["docker", "-H", host, "ps", "-q" if running else "-aq", "--filter", f"label={OWNER_LABEL}"]
    ids = subprocess.run(listed, capture_output=True, text=True, check=True).stdout.split()
    owners = []
    for container in ids:
        label = subprocess.run(
            ["docker", "-H", host, "inspect", "-f", f'{{{{index .Config.Labels "{OWNER_LABEL}"}}}}', container],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if label.endswith(f":{pid}"):
            owners.append(container)
    return owners


class PrivateEngine:
    """A dockerd of a test's own, run by scripts/remote-engine.sh with a state dir, bridge,
    cgroup, containerd namespaces and loopback address of its own (never the shared engines).
    Calling it runs the script (``engine("stop")``); ``kill()`` SIGKILLs its dockerd."""

    endpoint = "tcp://127.0.0.3:2375"

    def __init__(self, script: Path) -> None:
        # A short path: containerd's sockets live there, and a unix socket path has at most 104 bytes.
        self.state = tempfile.mkdtemp(prefix="pm-", dir="/tmp")
        self._script = script
        self._env = {
            **os.environ,
            "MULTIARCH_STATE_DIR": self.state,
            "MULTIARCH_REMOTE_ADDR": "127.0.0.3",
            "MULTIARCH_REMOTE_NAME": "pytest-multiarch-private",
            "MULTIARCH_REMOTE_BRIDGE": "pmprivate0",
            "MULTIARCH_REMOTE_BRIDGE_CIDR": "10.214.0.1/24",
            "MULTIARCH_REMOTE_ADDRESS_POOL": "10.214.128.0/17",
            "MULTIARCH_REMOTE_SSH": "no",  # sshd's StrictModes refuse a state dir under /tmp
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        bridge = _docker0()
        done = subprocess.run(["bash", str(self._script), *args], env=self._env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        if args[:1] == ("start",):  # the first engine's bridge was never deleted (and put back)
            assert _docker0() == bridge, f"docker0 was deleted by the start: {done.stderr}"
        return done

    def kill(self) -> None:
        """SIGKILL this engine's dockerd (and only it: the pid is checked against its exec root),
        as an out-of-memory kill or a crash would end it; wait until it is gone."""
        pid = int(Path(self.state, "remote-engine", "dockerd.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "dockerd" in cmdline and f"{self.state}/remote-engine/exec" in cmdline, cmdline
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), "the killed dockerd to be gone")

    def answers(self) -> bool:
        asked = ["docker", "-H", self.endpoint, "info", "--format", "{{.Name}}"]
        return subprocess.run(asked, capture_output=True, timeout=30).returncode == 0


def _docker0() -> str | None:
    """The interface index of the first engine's bridge: a new one means it was deleted and made
    again, and its containers, of tests running beside this one, lost their network."""
    try:
        return Path("/sys/class/net/docker0/ifindex").read_text().strip()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def change_the_image(project: pytest.Pytester, text: str) -> None:
    """A change the build key sees, so that the next run really builds: a label added to the
    Dockerfile (a new file in the context is not enough when the Dockerfile does not COPY it)."""
    dockerfile = project.path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + f'LABEL pytest-multiarch-test="{text}"\n')
