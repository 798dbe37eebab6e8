"""Emulation as users meet it, on real containers (issue 26): per-platform timeouts, per-platform
xfail and skip, ``native``, the QEMU version, and QEMU's crash named as such."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from pytest_multiarch import Platform
from tests.integration.helpers import FOREIGN, NATIVE, run

pytestmark = pytest.mark.usefixtures("docker_engine")

FOREIGN_MACHINE = Platform.parse(FOREIGN).machine

# Serves at once, except on the emulated platform, where it takes 4 s to listen.
SLOW_ON_FOREIGN = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /www && echo ok > /www/index.html
EXPOSE 8080
CMD ["sh", "-c", "if [ \\"$(uname -m)\\" = \\"$SLOW_ON\\" ]; then sleep 4; fi; exec httpd -f -p 8080 -h /www"]
"""

# Dies at start on the emulated platform as QEMU does when it crashes: its report on stderr, then
# SIGSEGV (a child shell: PID 1 of a container ignores signals it has no handler for).
CRASH = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /www && echo ok > /www/index.html
COPY start.sh /start.sh
EXPOSE 8080
CMD ["sh", "/start.sh"]
"""
START = """\
if [ "$(uname -m)" = "$CRASH_ON" ]; then
  sh -c 'echo "qemu: uncaught target signal 11 (Segmentation fault) - core dumped" >&2; kill -SEGV $$'
  exit $?
fi
exec httpd -f -p 8080 -h /www
"""

# QEMU's report of its own crash, then SIGSEGV, in a child shell (a one-shot run's command is PID 1).
CRASHING_COMMAND = [
    "sh",
    "-c",
    "sh -c 'echo \"QEMU internal SIGSEGV {code=MAPERR, addr=0x20}\" >&2; kill -SEGV $$'; exit $?",
]


def handler_version() -> str:
    """The emulator's own answer, asked here without the plugin: the binfmt handler's
    interpreter, its symlink followed, run with --version."""
    name = {"linux/arm64": "aarch64", "linux/amd64": "x86_64"}[FOREIGN]
    text = Path(f"/proc/sys/fs/binfmt_misc/qemu-{name}").read_text()
    interpreter = next(line.split()[1] for line in text.splitlines() if line.startswith("interpreter"))
    said = subprocess.run([os.path.realpath(interpreter), "--version"], capture_output=True, text=True).stdout
    return "QEMU " + said.split("version ", 1)[1].split("\n")[0].strip()


def test_a_platforms_own_timeout_is_used_as_given(busybox_project):
    busybox_project.makefile("", Dockerfile=SLOW_ON_FOREIGN)
    busybox_project.makepyfile(test_app="def test_up(multiarch_http):\n    assert multiarch_http.get('/').ok\n")
    env = f"--multiarch-env=SLOW_ON={FOREIGN_MACHINE}"
    # 2 s for the slow platform, as given (not the default's 5x for emulation, 150 s).
    result = run(busybox_project, env, f"--multiarch-timeout=30, {FOREIGN}=2")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*{FOREIGN}*never became ready*within 2 s*"])
    run(busybox_project, env, f"--multiarch-timeout=30, {FOREIGN}=30").assert_outcomes(passed=2)


XFAIL_TESTS = f"""
import pytest

@pytest.mark.multiarch(xfail={{"{FOREIGN}": "known bug there"}})
def test_known_bug(multiarch_platform):
    assert str(multiarch_platform) != "{FOREIGN}"

@pytest.mark.multiarch(skip={{"{NATIVE}": "not shipped there"}})
def test_skipped_on_native(multiarch_platform):
    pass

@pytest.mark.multiarch(xfail={{"{NATIVE}": "fixed meanwhile"}}, strict=True)
def test_strict(multiarch_platform):
    pass
"""


def test_xfail_and_skip_per_platform_with_their_outcomes_in_the_summary(busybox_project):
    busybox_project.makepyfile(test_app=XFAIL_TESTS)
    result = run(busybox_project, "-rxXs")
    # strict: the native platform's pass is an XPASS(strict), a failure; the other passes.
    result.assert_outcomes(passed=3, xfailed=1, skipped=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            f"XFAIL test_app.py::test_known_bug[[]{FOREIGN}[]] - {FOREIGN}: known bug there",
            f"SKIPPED * {NATIVE}: not shipped there",
            f"[[]XPASS(strict)[]] {NATIVE}: fixed meanwhile",
        ]
    )
    summary = result.stdout.str().split("multiarch summary", 1)[1]
    assert re.search(r"^platform +passed +failed +skipped +errors +xfailed +xpassed +mode", summary, re.M), summary
    assert re.search(rf"^{FOREIGN} +2 +0 +0 +0 +1 +0 +emulated", summary, re.M), summary
    assert re.search(rf"^{NATIVE} +1 +1 +1 +0 +0 +0 +native", summary, re.M), summary


def test_native_runs_only_each_engines_own_platform(busybox_project):
    busybox_project.makepyfile(
        test_app="""
import pytest

def test_any(multiarch_platform):
    assert not multiarch_platform.emulated

@pytest.mark.multiarch(platforms=["native"])
def test_marked(multiarch_platform):
    pass
"""
    )
    result = run(busybox_project, "--multiarch-platforms=native", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random([f"*test_any[[]{NATIVE}[]] PASSED*", f"*test_marked[[]{NATIVE}[]] PASSED*"])
    # In the ini's list, the marker's "native" keeps the native platform only.
    both = run(busybox_project, "-v")
    both.assert_outcomes(passed=2, failed=1)
    both.stdout.fnmatch_lines_random([f"*test_marked[[]{NATIVE}[]] PASSED*"])
    assert f"test_marked[{FOREIGN}]" not in both.stdout.str()


def test_the_header_and_summary_name_the_qemu_that_ran(busybox_project):
    busybox_project.makepyfile(test_app="def test_x(multiarch_platform): pass")
    version = handler_version()
    assert re.fullmatch(r"QEMU \d+\.\d+\.\d+.*", version), version
    result = run(busybox_project)
    result.stdout.fnmatch_lines([f"multiarch: platforms: *{FOREIGN} (emulated: qemu-*, {version})*"])
    result.stdout.fnmatch_lines([f"multiarch: emulators: {FOREIGN}: {version}*"])


def test_qemus_crash_is_named_at_start_and_in_a_run(busybox_project):
    busybox_project.makefile("", Dockerfile=CRASH)
    (busybox_project.path / "start.sh").write_text(START)
    busybox_project.makepyfile(
        test_app=f"""
def test_up(multiarch_http):
    assert multiarch_http.get("/").ok

def test_run(multiarch_run):
    assert multiarch_run(*{CRASHING_COMMAND[1:]!r}, entrypoint=["sh"]).exit_code == 139  # natively: a result
"""
    )
    result = run(busybox_project, f"--multiarch-env=CRASH_ON={FOREIGN_MACHINE}", "-rA")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    version = handler_version()
    result.stdout.fnmatch_lines_random(
        [
            f"PASSED test_app.py::test_up[[]{NATIVE}[]]",
            f"PASSED test_app.py::test_run[[]{NATIVE}[]]",
            f"ERROR test_app.py::test_up[[]{FOREIGN}[]] - *",
            f"FAILED test_app.py::test_run[[]{FOREIGN}[]] - *",
        ]
    )
    # The messages in full, from the reports' sections: pytest cuts the summary's lines to the
    # terminal's width (unless CI is set).
    result.stdout.fnmatch_lines(
        [
            f"*_ ERROR at setup of test_up[[]{FOREIGN}[]] _*",
            f"[[]{FOREIGN}[]] EmulatorCrash: the container died under {version} with exit code 139*",
            f"*_ test_run[[]{FOREIGN}[]] _*",
            f"[[]{FOREIGN}[]] EmulatorCrash: the run `sh -c sh -c 'echo*",
        ]
    )
    out = result.stdout.str()
    assert "'qemu: uncaught target signal 11 (Segmentation fault) - core dumped'" in out
    assert f"run {FOREIGN} on a native engine (--multiarch-engine {FOREIGN}=ssh://HOST" in out


def test_an_exec_that_crashes_under_qemu_is_named(busybox_project):
    busybox_project.makepyfile(
        test_app=f"""
import pytest
from pytest_multiarch import ExecError

def test_exec(multiarch_container, multiarch_platform):
    with pytest.raises(ExecError) as raised:
        multiarch_container.exec({CRASHING_COMMAND!r})
    assert raised.value.exit_code == 139
"""
    )
    result = run(busybox_project, "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*[[]{FOREIGN}[]] EmulatorCrash: 'sh -c * in the container died under QEMU*"])
