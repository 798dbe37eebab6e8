"""Real pytest sessions (pytester) against real buildx builds and containers, amd64 and arm64.

Every session here is checked afterwards for containers left behind.
"""

from __future__ import annotations

import datetime
import json
import os
import platform as host
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import BUSYBOX, PLATFORMS
from pytest_multiarch.build import image_repository
from pytest_multiarch.config import ImageSpec

OWNER_LABEL = "io.github.pytest-multiarch.owner"

APP_TESTS = """
import pytest

def test_root(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {multiarch_platform.machine}"

def test_exec(multiarch_container, multiarch_platform):
    assert multiarch_container.exec("cat /www/built-on").strip() == multiarch_platform.machine
    assert multiarch_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine

def test_image(multiarch_image, multiarch_platform):
    assert multiarch_image.platform == multiarch_platform
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
    listed = ["docker", "ps", "-aq", "--no-trunc", "--filter", "label=io.github.pytest-multiarch.reuse-slot"]
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


@pytest.mark.usefixtures("docker_engine")
class TestBothPlatforms:
    def test_tests_run_once_per_platform_with_the_platform_as_id(self, busybox_project):
        busybox_project.makepyfile(test_app=APP_TESTS)
        result = run(busybox_project, "-v")
        result.assert_outcomes(passed=7)
        result.stdout.fnmatch_lines_random(
            [
                "*test_root?linux/amd64? PASSED*",
                "*test_root?linux/arm64? PASSED*",
                "*test_exec?linux/arm64? PASSED*",
                "*test_not_parametrized PASSED*",
                "multiarch: platforms: linux/amd64 (native), linux/arm64 (emulated*",
                "linux/amd64*3*0*0*0*native*",
                "linux/arm64*3*0*0*0*emulated*",
            ]
        )

    def test_native_platform_runs_first_whatever_the_configured_order(self, busybox_project):
        busybox_project.makepyfile(
            test_app="""
            def test_plain_first():
                pass

            def test_x(multiarch_platform):
                pass

            def test_y(multiarch_platform):
                pass
            """
        )
        native, foreign = (
            ("linux/amd64", "linux/arm64") if host.machine() == "x86_64" else ("linux/arm64", "linux/amd64")
        )
        result = run(busybox_project, "-v", f"--multiarch-platforms={foreign},{native}")
        result.assert_outcomes(passed=5)
        ran = [line.split(" ")[0] for line in result.stdout.lines if line.startswith("test_app.py::")]
        assert ran == [
            "test_app.py::test_plain_first",
            f"test_app.py::test_x[{native}]",
            f"test_app.py::test_y[{native}]",
            f"test_app.py::test_x[{foreign}]",
            f"test_app.py::test_y[{foreign}]",
        ]

    def test_unchanged_image_is_reused_and_a_change_rebuilds(self, busybox_project):
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        run(busybox_project).assert_outcomes(passed=2)
        again = run(busybox_project)
        again.assert_outcomes(passed=2)
        again.stdout.fnmatch_lines(["linux/amd64*native*reused*", "linux/arm64*emulated*reused*"])
        busybox_project.makefile(".txt", extra="a new file in the context")
        changed = run(busybox_project)
        changed.stdout.fnmatch_lines(["linux/amd64*native*[0-9].[0-9] s*"])
        changed.stdout.no_fnmatch_line("linux/*reused*")
        # The builds the change replaced were pruned when the session ended: one image per platform.
        spec = ImageSpec(name="", context=busybox_project.path, dockerfile=busybox_project.path / "Dockerfile")
        listed = subprocess.run(
            ["docker", "image", "ls", "--format", "{{.Tag}}", f"{image_repository(spec)}"],
            capture_output=True,
            text=True,
        )
        assert sorted(tag.split("-")[1] for tag in listed.stdout.split()) == ["amd64", "arm64"], listed.stdout

    def test_marker_limits_platforms(self, busybox_project):
        busybox_project.makepyfile(
            test_app="""
            import pytest

            @pytest.mark.multiarch(platforms=["arm64"])
            def test_arm_only(multiarch_platform):
                assert str(multiarch_platform) == "linux/arm64"

            @pytest.mark.multiarch(platforms=["linux/s390x"])
            def test_not_configured(multiarch_platform):
                pass

            @pytest.mark.multiarch(platforms=["linux/amd64"])
            class TestAmd:
                def test_amd_only(self, multiarch_platform):
                    assert multiarch_platform.machine == "x86_64"
            """
        )
        result = run(busybox_project, "-v", "-rs")
        result.assert_outcomes(passed=2, skipped=1)
        result.stdout.fnmatch_lines_random(
            [
                "*test_arm_only?linux/arm64? PASSED*",
                "*TestAmd::test_amd_only?linux/amd64? PASSED*",
                "*none of the configured platforms (linux/amd64, linux/arm64) is in*linux/s390x*",
            ]
        )

    def test_unknown_platform_in_marker_names_it(self, busybox_project):
        busybox_project.makepyfile(
            test_app="""
            import pytest

            @pytest.mark.multiarch(platforms=["linux/arm65"])
            def test_x(multiarch_platform):
                pass
            """
        )
        result = run(busybox_project)
        result.stdout.fnmatch_lines(["*unknown platform 'linux/arm65'*"])
        assert "Traceback" not in result.stdout.str() + result.stderr.str()
        assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run

    def test_a_marker_given_no_platform_names_says_what_to_give(self, busybox_project):
        busybox_project.makepyfile(
            test_app="""
            import pytest

            @pytest.mark.multiarch(platforms=123)
            def test_x(multiarch_platform):
                pass
            """
        )
        result = run(busybox_project)
        result.stdout.fnmatch_lines(["*@pytest.mark.multiarch on test_app.py::test_x: expected a list of platforms*"])
        assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.usefixtures("docker_engine")
class TestOnePlatformFailing:
    def test_build_failing_on_arm64_only_errors_arm64_and_amd64_passes(self, busybox_project):
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            RUN echo "building on $(uname -m)"
            RUN if [ "$(uname -m)" = aarch64 ]; then echo "no arm64 support in this step" >&2; exit 3; fi
            EXPOSE 8080
            CMD ["httpd", "-f", "-p", "8080", "-h", "/"]
            """,
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_container): pass\ndef test_y(multiarch_image): pass")
        result = run(busybox_project, "-v")
        result.assert_outcomes(passed=2, errors=2)
        result.stdout.fnmatch_lines_random(
            [
                "*test_x?linux/amd64? PASSED*",
                "*test_y?linux/amd64? PASSED*",
                "*[[]linux/arm64[]] BuildError: build of *Dockerfile for linux/arm64 failed at step: [[]3/3[]] RUN if*",
                "*no arm64 support in this step*",
                "*exit code: 3*",
            ]
        )
        assert "Traceback" not in result.stdout.str() + result.stderr.str()

    def test_a_failed_build_stays_in_the_summary_when_another_image_of_its_platform_builds(self, busybox_project):
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            RUN if [ "$(uname -m)" = aarch64 ]; then exit 3; fi
            """,
        )
        (busybox_project.path / "slow").mkdir()
        # Finishes after the failing build, so that the summary's last word is a success.
        (busybox_project.path / "slow" / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN sleep 3 && echo {os.getpid()}\n"
        )
        busybox_project.makeconftest(
            """
            from pytest_multiarch import multiarch_fixtures

            slow_image, _, _ = multiarch_fixtures("slow", context="slow")
            """
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass\ndef test_slow(slow_image): pass")
        result = run(busybox_project)
        result.assert_outcomes(passed=3, errors=1)
        result.stdout.re_match_lines([r"^linux/arm64 +1 +0 +0 +1 +emulated +failed "])

    def test_a_secret_build_arg_never_reaches_the_output(self, busybox_project):
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            ARG NPM_TOKEN
            RUN echo "registry token is $NPM_TOKEN" && exit 2
            """,
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        result = run(
            busybox_project,
            "-v",
            "--multiarch-platforms=linux/amd64",
            "--multiarch-build-arg=NPM_TOKEN=sup3rs3cret",
            "--junitxml=report.xml",
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*registry token is ****"])
        everything = result.stdout.str() + result.stderr.str() + (busybox_project.path / "report.xml").read_text()
        assert "sup3rs3cret" not in everything

    def test_binaries_of_another_platform_are_an_error_naming_both(self, busybox_project):
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM --platform=linux/amd64 ${BASE_IMAGE}
            CMD ["sleep", "60"]
            """,
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_container): pass")
        result = run(busybox_project)
        result.assert_outcomes(passed=1, errors=1)
        # BuildKit labels the image arm64 but its binaries are amd64: `uname -m` inside tells.
        result.stdout.fnmatch_lines(
            ["*ImageMismatch: the linux/arm64 container reports `uname -m` = 'x86_64', expected 'aarch64'*"]
        )

    def test_container_exiting_during_start_errors_quickly_with_code_and_logs(self, busybox_project):
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            EXPOSE 8080
            CMD ["sh", "-c", "echo 'config file /etc/app.conf missing' >&2; exit 7"]
            """,
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_http): pass\ndef test_y(multiarch_container): pass")
        # A timeout of 10 minutes: only early exit detection lets this finish in seconds.
        result = run(busybox_project, "--multiarch-timeout=600")
        result.assert_outcomes(errors=4)
        result.stdout.fnmatch_lines(
            [
                "*ContainerError: the container exited during start with exit code 7*",
                "*| config file /etc/app.conf missing*",
            ]
        )
        assert result.duration < 300

    def test_port_never_ready_says_what_was_polled(self, busybox_project):
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            EXPOSE 8080
            CMD ["sh", "-c", "echo still warming up; sleep 600"]
            """,
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_http): pass")
        result = run(busybox_project, "--multiarch-timeout=1", "--multiarch-platforms=linux/amd64")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*never became ready: http://127.0.0.1:*/ (container port 8080; the image EXPOSEs 8080) did not "
                "answer with a status < 500 within 1 s; last error: nothing accepted the connection*",
                "*| still warming up*",
            ]
        )

    def test_missing_dockerfile_names_its_path(self, busybox_project):
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        result = run(busybox_project, "--multiarch-dockerfile=docker/Dockerfile.prod")
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(["*UsageError: Dockerfile not found: '*docker/Dockerfile.prod'*"])
        assert "Traceback" not in result.stdout.str() + result.stderr.str()

    def test_exec_failure_carries_exit_code_and_output(self, busybox_project):
        busybox_project.makepyfile(
            test_app="""
            import pytest
            from pytest_multiarch import ExecError

            def test_x(multiarch_container):
                with pytest.raises(ExecError) as err:
                    multiarch_container.exec(["sh", "-c", "echo oops; exit 4"])
                assert err.value.exit_code == 4
                assert "oops" in err.value.output
                assert "oops" not in multiarch_container.logs()
            """
        )
        run(busybox_project, "--multiarch-platforms=linux/arm64").assert_outcomes(passed=1)


@pytest.mark.usefixtures("docker_engine")
class TestProjectApi:
    def test_a_declaration_overridden_in_a_subfolder_builds_its_own_target(self, busybox_project):
        """Two conftests declare "app" from one Dockerfile with different targets: each folder's
        tests get their own image, not the one asked for first."""
        declare_app_twice(busybox_project)
        # The plugin knows which declaration each test uses: the debug container goes right after
        # its test (tests_debug runs first), not at the end of the session.
        (busybox_project.path / "tests_prod" / "test_prod.py").write_text(
            textwrap.dedent(
                """
                import os, socket, subprocess, time

                def test_stage(app_container):
                    assert app_container.exec(["cat", "/stage"]).strip() == "prod"
                    deadline = time.monotonic() + 20
                    owner = f"io.github.pytest-multiarch.owner={socket.gethostname()}:{os.getpid()}"
                    while True:  # this session's containers (its owner label), other than prod's
                        running = subprocess.run(
                            ["docker", "ps", "-q", "--no-trunc", "--filter", f"label={owner}"],
                            capture_output=True, text=True, check=True,
                        ).stdout.split()
                        debug = [i for i in running if i != app_container.id]
                        if not debug:
                            break
                        assert time.monotonic() < deadline, f"the debug container is still running: {debug}"
                        time.sleep(0.1)
                """
            )
        )
        result = run(busybox_project, "--multiarch-platforms=linux/amd64", "-p", "no:randomly")
        result.assert_outcomes(passed=2)

    def test_reuse_keeps_one_container_per_declaration_of_an_image_name(self, busybox_project):
        """Two conftests declare "app" with different targets: with --multiarch-reuse each gets
        its own container, kept and reused, instead of each start replacing the other's."""
        declare_app_twice(busybox_project)
        before = reuse_containers()
        kept: set[str] = set()
        try:
            run(busybox_project, "--multiarch-platforms=linux/amd64", "--multiarch-reuse").assert_outcomes(passed=2)
            kept = reuse_containers() - before
            assert len(kept) == 2, kept
            run(busybox_project, "--multiarch-platforms=linux/amd64", "--multiarch-reuse").assert_outcomes(passed=2)
            assert reuse_containers() - before == kept
        finally:
            leftover = reuse_containers() - before
            if leftover:
                subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True)

    def test_two_images_declared_in_conftest(self, busybox_project):
        dockerfile = (busybox_project.path / "Dockerfile").read_text()
        for name in ("api", "worker"):
            (busybox_project.path / name).mkdir()
            (busybox_project.path / name / "Dockerfile").write_text(
                dockerfile.replace("uname -m > /www/built-on", f"echo {name} > /www/name")
            )
        busybox_project.makeconftest(
            """
            from pytest_multiarch import multiarch_fixtures

            api_image, api_container, api_http = multiarch_fixtures("api", context="api")
            worker_image, worker_container, worker_http = multiarch_fixtures("worker", context="worker")
            """
        )
        busybox_project.makepyfile(
            test_app="""
            def test_api(api_http, api_container, multiarch_platform):
                assert api_http.get("/").text.strip().endswith(multiarch_platform.machine)
                assert api_container.exec("cat /www/name").strip() == "api"

            def test_worker(worker_container, worker_image, multiarch_platform):
                assert worker_container.exec("cat /www/name").strip() == "worker"
                assert worker_image.platform == multiarch_platform
                assert "worker" in worker_image.tag
            """
        )
        result = run(busybox_project, "-v")
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines_random(["*test_api?linux/arm64? PASSED*", "*test_worker?linux/amd64? PASSED*"])

    def test_collect_only_starts_no_build(self, busybox_project):
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        busybox_project.makefile(".txt", fresh=str(os.getpid()) + "-collect-only")
        result = run(busybox_project, "--collect-only", "-q")
        result.stdout.fnmatch_lines(["test_app.py::test_x[[]linux/amd64[]]", "test_app.py::test_x[[]linux/arm64[]]"])
        listed = subprocess.run(
            [
                "docker",
                "image",
                "ls",
                "-q",
                "--filter",
                "reference=pytest-multiarch/test-collect-only-starts-no-build*",
            ],
            capture_output=True,
            text=True,
        )
        assert listed.stdout.split() == []

    @pytest.mark.parametrize(
        ("call", "outcome", "shown"),
        [
            (
                "raise RuntimeError('seed data missing for ' + str(container.platform))",
                {"errors": 2},
                "*ContainerError: pytest_multiarch_container_started failed for the linux/arm64 container: "
                "RuntimeError: seed data missing for linux/arm64*",
            ),
            (
                "pytest.skip('no seed data for arm64')",
                {"skipped": 2},
                "SKIPPED [[]1[]] test_app.py:*: no seed data for arm64",
            ),
            (
                "pytest.fail('seed failed')",
                {"errors": 2},
                "*container_started failed for the linux/arm64*Failed: seed failed",
            ),
        ],
        ids=["exception", "skip", "fail"],
    )
    def test_a_failing_or_skipping_container_started_hook_ends_that_platform_once(
        self, busybox_project, call, outcome, shown
    ):
        busybox_project.makeconftest(
            f"""
            import pytest

            calls = []

            def pytest_multiarch_container_started(config, container):
                calls.append(str(container.platform))
                if container.platform.arch == "arm64":
                    {call}
            """
        )
        busybox_project.makepyfile(
            test_app="""
            def test_a(multiarch_container): pass
            def test_b(multiarch_container): pass
            def test_calls(request):
                import conftest
                assert sorted(conftest.calls) == ["linux/amd64", "linux/arm64"]  # arm64 tried once
            """
        )
        result = run(busybox_project, "-p", "no:randomly", "-rs")
        result.assert_outcomes(passed=3, **outcome)
        result.stdout.fnmatch_lines([shown])

    def test_platforms_a_hook_adds_are_normalized_and_a_bad_one_is_named(self, busybox_project, monkeypatch):
        busybox_project.makeconftest(
            """
            import os

            def pytest_multiarch_modify_platforms(config, platforms):
                if os.environ.get("RAISE"):
                    raise KeyError("NIGHTLY")
                if os.environ.get("NO_PLATFORMS"):
                    platforms.clear()  # say, arm/v7 only, on nightly runs only
                    return
                platforms += ["arm64", "linux/amd64", os.environ.get("EXTRA_PLATFORM", "x86_64")]
            """
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_platform): pass")
        listed = run(busybox_project, "--co", "-q", "--multiarch-platforms=linux/amd64")
        listed.stdout.fnmatch_lines(
            ["test_app.py::test_x[[]linux/amd64[]]", "test_app.py::test_x[[]linux/arm64[]]", ""]
        )
        assert listed.ret == pytest.ExitCode.OK
        monkeypatch.setenv("EXTRA_PLATFORM", "linux/riscv99")
        bad = run(busybox_project, "--co", "-q")
        bad.stdout.fnmatch_lines(
            ["*pytest_multiarch_modify_platforms left an entry that is not a platform: *linux/riscv99*"]
        )
        assert bad.ret == pytest.ExitCode.INTERRUPTED  # a collection error
        assert "Traceback" not in bad.stdout.str()
        monkeypatch.setenv("NO_PLATFORMS", "1")
        run(busybox_project).assert_outcomes(skipped=1)  # pytest's empty parameter set
        monkeypatch.setenv("RAISE", "1")
        raised = run(busybox_project)
        raised.stdout.fnmatch_lines(["*pytest_multiarch_modify_platforms raised: KeyError: 'NIGHTLY'*"])
        assert raised.ret == pytest.ExitCode.INTERRUPTED and "INTERNALERROR" not in raised.stdout.str()

    def test_a_build_args_hook_failing_for_one_platform_errors_its_tests_and_the_run_goes_on(self, busybox_project):
        busybox_project.makeconftest(
            """
            def pytest_multiarch_build_args(config, image, platform):
                if platform.arch == "arm64":
                    raise KeyError("ARM_TOKEN")
                return {}
            """
        )
        busybox_project.makepyfile(
            test_app="def test_x(multiarch_container): pass",
            test_later="def test_after_the_last_container_test(): pass",
        )
        result = run(busybox_project, "-p", "no:randomly")
        result.assert_outcomes(passed=2, errors=1)
        assert result.ret == pytest.ExitCode.TESTS_FAILED  # not an INTERNALERROR cutting the run short
        result.stdout.fnmatch_lines(["*pytest_multiarch_build_args raised for linux/arm64: KeyError: 'ARM_TOKEN'*"])

    def test_hooks(self, busybox_project):
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            ARG GREETING=unset
            RUN mkdir -p /www && echo "$GREETING" > /www/greeting
            EXPOSE 8080
            CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
            """,
        )
        busybox_project.makeconftest(
            """
            def pytest_multiarch_modify_platforms(config, platforms):
                from pytest_multiarch import Platform

                if Platform.parse("arm64") not in platforms:  # e.g. added for nightly runs
                    platforms.append(Platform.parse("arm64"))

            def pytest_multiarch_build_args(config, image, platform):
                return {"GREETING": "hello-" + platform.arch}

            def pytest_multiarch_container_started(config, container):
                container.exec(["sh", "-c", "echo seeded-$(uname -m) > /www/seed"])
            """
        )
        busybox_project.makepyfile(
            test_app="""
            def test_x(multiarch_container, multiarch_http, multiarch_platform):
                assert multiarch_http.get("/greeting").text.strip() == "hello-" + multiarch_platform.arch
                assert multiarch_http.get("/seed").text.strip() == "seeded-" + multiarch_platform.machine
            """
        )
        result = run(busybox_project, "-v", "--multiarch-platforms=linux/amd64")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["*test_x?linux/amd64? PASSED*", "*test_x?linux/arm64? PASSED*"])

    def test_junit_properties(self, busybox_project):
        busybox_project.makepyfile(test_app="def test_x(multiarch_http): pass\ndef test_plain(): pass")
        result = run(busybox_project, "--junitxml=report.xml", "-W", "error::pytest.PytestWarning")
        result.assert_outcomes(passed=3)
        cases = ET.parse(busybox_project.path / "report.xml").getroot().iter("testcase")
        props = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}
        assert props["test_x[linux/arm64]"]["platform"] == "linux/arm64"
        assert "linux-arm64" in props["test_x[linux/arm64]"]["image"]
        assert props["test_x[linux/amd64]"]["platform"] == "linux/amd64"
        assert props["test_plain"] == {}
        suite = ET.parse(busybox_project.path / "report.xml").getroot().find("testsuite")
        suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert re.search(r"\(linux/[^)]+\)$", suite_props["multiarch.engine"])
        assert suite_props["multiarch.buildx"]
        assert suite_props["multiarch.builder"]


@pytest.mark.usefixtures("docker_engine")
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
        slot_filter = "label=io.github.pytest-multiarch.reuse-slot"

        def ids() -> dict[str, str]:
            return {p.name: p.read_text() for p in busybox_project.path.glob("images-*")}

        try:
            run(busybox_project, "--multiarch-reuse").assert_outcomes(passed=2)
            first = ids()
            second_run = run(busybox_project, "--multiarch-reuse")
            second_run.assert_outcomes(passed=2)
            second_run.stdout.fnmatch_lines(
                ["linux/amd64*native*reused*reused*", "linux/arm64*emulated*reused*reused*"]
            )
            assert ids() == first  # the very same containers answered
            busybox_project.makefile(".txt", changed="a change to the context: new image, new container")
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

    def test_a_verified_container_is_reused_as_it_is_one_whose_hook_never_ran_is_replaced(self, busybox_project):
        """A reused container is trusted only if the session that started it ran its hook (the
        container's name says so): then without another uname check (counted from the engine's
        exec events). One left by a session killed before its hook is replaced, not reused."""
        busybox_project.makeconftest(
            """
            def pytest_multiarch_container_started(config, container):
                container.exec(["touch", "/tmp/seeded"])
            """
        )
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
            labels["io.github.pytest-multiarch.reuse-starter"] = f"{socket.gethostname()}:{dead.pid}"
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
            gone = subprocess.run(["docker", "inspect", unseeded], capture_output=True).returncode != 0
            assert gone
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
            assert killed.ret != 0
            (left,) = reuse_containers() - before
            monkeypatch.delenv("KILL_IN_HOOK")
            run(busybox_project, *reuse).assert_outcomes(passed=1)  # seeded by its own hook
            assert left not in reuse_containers()
        finally:
            for cid in reuse_containers() - before:
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)

    def test_xdist_workers_share_a_reuse_container_once_its_hook_ran(self, busybox_project):
        """The second worker finds the first one's container before that worker's (slow) hook
        is done: it waits for it instead of testing an unseeded container."""
        busybox_project.makeconftest(
            """
            import time

            def pytest_multiarch_container_started(config, container):
                time.sleep(2)
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
        finally:
            for cid in reuse_containers() - before:
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


@pytest.mark.usefixtures("docker_engine")
class TestEarlyRemoval:
    def test_a_platforms_container_goes_once_its_last_test_is_done(self, busybox_project):
        # amd64 (native) runs first; while arm64's tests run, amd64's container is being removed.
        busybox_project.makepyfile(
            running=RUNNING_SOURCE,
            test_app="""
            import time
            from running import running

            ids = {}

            def test_a(multiarch_container, multiarch_platform):
                ids[str(multiarch_platform)] = multiarch_container.id

            def test_b(multiarch_container, multiarch_platform):
                if str(multiarch_platform) == "linux/amd64":
                    assert running(ids["linux/amd64"])  # still needed here
                    return
                deadline = time.monotonic() + 30
                while running(ids["linux/amd64"]) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not running(ids["linux/amd64"])
                assert running(multiarch_container.id)
            """,
        )
        result = run(busybox_project, "-v", "-p", "no:randomly")
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(["*test_a?linux/amd64?*", "*test_b?linux/amd64?*", "*test_a?linux/arm64?*"])

    def test_a_container_a_module_fixture_uses_stays_until_that_fixture_is_torn_down(self, busybox_project):
        # pytest tears the amd64 instance of a module-scoped fixture down at arm64's first setup,
        # after amd64's last test: the container must still be there for its teardown, and go
        # right after it. The test module overrides the fixture with a function-scoped one that
        # requests it, which must not hide the module-scoped user.
        busybox_project.makeconftest(
            """
            import time
            import pytest

            @pytest.fixture(scope="module")
            def seeded(multiarch_container):
                multiarch_container.exec(["touch", "/tmp/seeded"])
                yield multiarch_container
                time.sleep(1)  # long enough for an early removal to have finished
                multiarch_container.exec(["rm", "/tmp/seeded"])
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
        result = run(busybox_project, "-v", "-p", "no:randomly")
        result.assert_outcomes(passed=4)

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


SLOW_COLLECTION = """
import os, time
from pathlib import Path

def pytest_collection_finish(session):
    time.sleep(float(os.environ.get("SLOW_COLLECTION", "0")))
    Path("images-collected-at").write_text(str(time.time()))
"""


def _unix_time(docker_time: str) -> float:
    """``2026-11-23T18:40:01.123456789Z`` (the engine's nanoseconds cut to microseconds)."""
    return datetime.datetime.fromisoformat(docker_time[:26].rstrip("Z") + "+00:00").timestamp()


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
            return {name: _unix_time(when) < collected_at for name, when in created.items()}

        run(busybox_project).assert_outcomes(passed=2)
        # Without a record of an earlier run, nothing starts before collection ends.
        both = ("images-created-linux-amd64", "images-created-linux-arm64")
        assert created_before_collection_ended() == dict.fromkeys(both, False)
        monkeypatch.setenv("SLOW_COLLECTION", "4")
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
        monkeypatch.setenv("SLOW_COLLECTION", "4")
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
        assert result.ret != 0
        if how == "failure":
            result.assert_outcomes(failed=1, passed=1)
        else:  # SIGTERM stops the whole session like Ctrl-C, it does not just fail one test
            result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
            result.stdout.no_fnmatch_line("*test_later.py .*")
        pid = (busybox_project.path / "pid").read_text()
        assert containers_of(f"{socket.gethostname()}:{pid}") == []

    def test_containers_of_a_killed_run_are_removed_by_the_next(self, busybox_project):
        dead = subprocess.Popen(["true"])
        dead.wait()
        owner = f"{socket.gethostname()}:{dead.pid}"

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
        elsewhere = start("io.github.pytest-multiarch.pid-namespace=pid:[1]")
        try:
            assert set(containers_of(owner)) == {orphan[:12], elsewhere[:12]}
            busybox_project.makepyfile(test_app="def test_x(multiarch_container): pass")
            result = run(busybox_project, "--multiarch-platforms=linux/amd64")
            result.assert_outcomes(passed=1)
            result.stdout.fnmatch_lines(["*removed 1 container(s) left by killed pytest runs*"])
            assert containers_of(owner) == [elsewhere[:12]]
        finally:
            subprocess.run(["docker", "rm", "-f", orphan, elsewhere], capture_output=True)


def test_without_an_engine_docker_tests_skip_with_one_reason(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    monkeypatch.delenv("CI", raising=False)
    pytester.makeini(f"[pytest]\nmultiarch_platforms = {PLATFORMS}\n")
    pytester.makepyfile(test_app="def test_x(multiarch_container): pass\ndef test_unit(): pass")
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]2[]] *the Docker daemon does not answer at DOCKER_HOST=tcp://127.0.0.1:9*"]
    )
    assert result.ret == pytest.ExitCode.OK and "Traceback" not in result.stderr.str()
    listed = pytester.runpytest_subprocess("--co", "-q")  # an IDE listing tests with Docker stopped
    assert listed.ret == pytest.ExitCode.OK and "Traceback" not in listed.stderr.str()


@pytest.mark.parametrize(
    ("ci", "args", "because"),
    [
        ("true", [], "*because CI is set*"),
        # --multiarch-image verifies a pushed release: no engine must not turn it green.
        (
            None,
            ["--multiarch-image=127.0.0.1:5000/some/release:1.0"],
            "*because --multiarch-image makes this run a release gate*",
        ),
    ],
    ids=["ci", "release-gate"],
)
def test_without_an_engine_ci_or_a_release_gate_fails_instead_of_skipping(pytester, monkeypatch, ci, args, because):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeini(f"[pytest]\nmultiarch_platforms = {PLATFORMS}\nmultiarch_build_args = BASE_IMAGE={BUSYBOX}\n")
    pytester.makepyfile(test_app="def test_x(multiarch_container): pass")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*EngineError: the Docker daemon does not answer at DOCKER_HOST=tcp://127.0.0.1:9*", because]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


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
    busybox_project.makefile(".txt", fresh=str(os.getpid()) + "-xdist")  # a new build key: a real build
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
        r"^linux/arm64 +6 +0 +0 +0 +emulated +\d+\.\d s +([0-9a-f]{12}) +\d+\.\d s$", result.stdout.str(), re.M
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
    assert all(subprocess.run(["docker", "image", "inspect", i], capture_output=True).returncode for i in first)
    # After a change, the controller removes the older builds once all workers are done.
    older = {r.split()[0] for r in records}
    busybox_project.makefile(".txt", fresh=str(os.getpid()) + "-xdist-changed")
    busybox_project.runpytest_subprocess("-p", "xdist", "-n", "2").assert_outcomes(passed=12)
    newer = {p.read_text().split()[0] for p in busybox_project.path.glob("images-gw*")}
    assert newer.isdisjoint(older) and len(newer) == 2
    exists = {
        i: subprocess.run(["docker", "image", "inspect", i], capture_output=True).returncode == 0 for i in older | newer
    }
    assert exists == {**dict.fromkeys(older, False), **dict.fromkeys(newer, True)}


@pytest.mark.usefixtures("docker_engine")
def test_xdist_controller_starts_the_builds_the_last_run_needed(busybox_project):
    """Repeating a -n 2 run, the controller builds while its workers start: they find the
    images built (reused=True for every worker), though a change made them new builds."""
    # Workers that take a while to start, as in a large project: the race stays decided.
    busybox_project.makeconftest(
        """
        import time

        def pytest_configure(config):
            if hasattr(config, "workerinput"):
                time.sleep(2)
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
        busybox_project.makefile(".txt", fresh=f"{os.getpid()}-{change}")  # a new build key: a real build
        # Not runpytest_subprocess: it adds a --basetemp of its own to each run's command line.
        result = busybox_project.run(sys.executable, "-m", "pytest", "-p", "xdist", "-n", "2")
        result.assert_outcomes(passed=4)
        return result, [p.read_text() for p in busybox_project.path.glob("images-gw*")]

    # The controller prints what its own builds report; the workers' output is not shown.
    first, first_records = run_records("first")
    first.stdout.no_fnmatch_line("*build linux/*: done in*")  # no record yet: the workers build
    second, second_records = run_records("second")
    second.stdout.fnmatch_lines_random(["*build linux/amd64: done in*", "*build linux/arm64: done in*"])
    assert second_records and all("reused=True" in r for r in second_records), second_records
    assert {r.split()[0] for r in second_records}.isdisjoint({r.split()[0] for r in first_records})


def docker_cli_wrapper(folder, *, no_buildx: bool = False, hide_platform: str | None = None) -> str:
    """A `docker` in front of the real one that behaves like a machine without buildx, or like a
    remote daemon whose builder cannot run ``hide_platform``. Returns a PATH value."""
    real = shutil.which("docker")
    script = ["#!/bin/sh"]
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
    script.append(f'exec {real} "$@"')
    bin_dir = folder / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("\n".join(script) + "\n")
    (bin_dir / "docker").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.usefixtures("docker_engine")
class TestEnvironmentErrors:
    def test_missing_buildx_is_one_clear_error(self, busybox_project, monkeypatch, tmp_path):
        monkeypatch.setenv("PATH", docker_cli_wrapper(tmp_path, no_buildx=True))
        monkeypatch.delenv("CI", raising=False)
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass\ndef test_unit(): pass")
        result = busybox_project.runpytest_subprocess("-rs")
        result.assert_outcomes(passed=1, skipped=2)
        result.stdout.fnmatch_lines(
            [
                "SKIPPED [[]2[]] *docker buildx is not available (docker: 'buildx' is not a docker command)*"
                "apt-get install docker-buildx*python -m pytest_multiarch doctor*"
            ]
        )

    def test_platform_without_emulator_skips_with_the_install_command(self, busybox_project, monkeypatch, tmp_path):
        monkeypatch.setenv("PATH", docker_cli_wrapper(tmp_path, hide_platform="linux/s390x"))
        monkeypatch.delenv("CI", raising=False)
        busybox_project.makepyfile(test_app="def test_x(multiarch_platform): pass")
        result = busybox_project.runpytest_subprocess("-rs", "--multiarch-platforms=linux/amd64,linux/s390x")
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(
            [
                "*linux/s390x cannot run on this engine (linux/amd64 native): no QEMU emulator*"
                "tonistiigi/binfmt --install s390x*"
            ]
        )
        result.stdout.fnmatch_lines(["multiarch: platforms: linux/amd64 (native), linux/s390x (unavailable*"])
        strict = busybox_project.runpytest_subprocess(
            "--multiarch-platforms=linux/amd64,linux/s390x", "--multiarch-strict"
        )
        strict.assert_outcomes(passed=1, errors=1)
        strict.stdout.fnmatch_lines(["*PlatformUnavailable: linux/s390x cannot run on this engine*"])

    def test_missing_context_names_its_path(self, busybox_project):
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        result = run(busybox_project, "--multiarch-context=services/api")
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(["*UsageError: build context '*services/api' is not a directory*"])


def test_pruning_spares_an_image_another_session_built_after_this_one_started(docker_engine, tmp_path):
    """Two sessions of one project at once: the one ending first must not remove the image the
    other has just built and is about to start a container from."""
    import docker as docker_sdk

    from pytest_multiarch.build import SLOT_LABEL, prune_stale

    slot = f"test-prune-{os.getpid()}-{time.time_ns()}"
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nLABEL {SLOT_LABEL}={slot}\nRUN echo {slot} > /made\n")
    build = ["docker", "buildx", "build", "--quiet", "--load", "-t", f"pytest-multiarch/{slot}:x", str(tmp_path)]
    subprocess.run(build, check=True, capture_output=True)
    time.sleep(1.0)  # pruning errs a tenth of a second on keeping
    this_session_started = time.time()
    # The other session builds it again: served from the cache, it keeps its first creation time,
    # but --load tags it anew.
    subprocess.run(build, check=True, capture_output=True)
    sdk = docker_sdk.from_env()
    try:
        prune_stale(sdk, slot, keep=set(), made_before=this_session_started)
        assert sdk.images.list(filters={"label": f"{SLOT_LABEL}={slot}"}), "loaded after the session started: kept"
        prune_stale(sdk, slot, keep=set(), made_before=time.time() + 5)
        assert not sdk.images.list(filters={"label": f"{SLOT_LABEL}={slot}"}), "made before it, not kept: removed"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", f"pytest-multiarch/{slot}:x"], capture_output=True)
        sdk.close()


def test_an_image_removed_before_its_container_starts_is_named_not_pulled(docker_engine, tmp_path):
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.errors import ContainerError
    from pytest_multiarch.platforms import Platform
    from pytest_multiarch.start import start_container

    gone = BuiltImage(
        tag="pytest-multiarch/test-gone:linux-amd64-0",
        id="sha256:" + "0" * 64,
        platform=Platform.parse("linux/amd64"),
        key="0" * 64,
        reused=False,
        seconds=0.0,
    )
    spec = ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    with pytest.raises(ContainerError, match=r"image pytest-multiarch/test-gone:linux-amd64-0 is gone: removed since"):
        start_container(gone, spec, timeout=5)
