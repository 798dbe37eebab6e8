"""The project API: images declared with multiarch_fixtures, the hooks, --collect-only and JUnit properties."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
import xml.etree.ElementTree as ET

import pytest

from pytest_multiarch.config import ImageSpec
from pytest_multiarch.names import image_repository
from tests.integration.helpers import (
    LOADED_PLATFORM_SOURCE,
    change_the_image,
    declare_app_twice,
    mode,
    reuse_containers,
    run,
)


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
                from pytest_multiarch.names import OWNER_LABEL

                def test_stage(app_container):
                    assert app_container.exec(["cat", "/stage"]).strip() == "prod"
                    deadline = time.monotonic() + 20
                    owner = f"{OWNER_LABEL}={socket.gethostname()}:{os.getpid()}"
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

    @pytest.mark.leaves_containers("--multiarch-reuse sessions keep theirs")
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
            loaded=LOADED_PLATFORM_SOURCE,
            test_app="""
            from loaded import loaded_platform

            def test_api(api_http, api_container, multiarch_platform):
                assert api_http.get("/").text.strip().endswith(multiarch_platform.machine)
                assert api_container.exec("cat /www/name").strip() == "api"

            def test_worker(worker_container, worker_image, multiarch_platform):
                assert worker_container.exec("cat /www/name").strip() == "worker"
                assert worker_image.platform == multiarch_platform
                assert loaded_platform(worker_image) == multiarch_platform
                assert "worker" in worker_image.tag
            """,
        )
        result = run(busybox_project, "-v")
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines_random(["*test_api?linux/arm64? PASSED*", "*test_worker?linux/amd64? PASSED*"])

    def test_collect_only_starts_no_build(self, busybox_project, monkeypatch):
        from pytest_multiarch.images import Images

        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass\ndef test_y(multiarch_container): pass")
        change_the_image(busybox_project, str(os.getpid()) + "-collect-only")
        cache = busybox_project.path / ".cache" / "pytest-multiarch"  # pytester's HOME
        asked: list[str] = []  # every build (or reuse) the in-process sessions ask for, started or not
        future = Images.future
        monkeypatch.setattr(
            Images, "future", lambda self, full, platform: asked.append(str(platform)) or future(self, full, platform)
        )
        for listing in ("--collect-only", "--fixtures", "--fixtures-per-test", "--setup-plan"):
            result = run(busybox_project, listing, "-q")
            assert result.ret == pytest.ExitCode.OK, result.stdout.str()
            assert asked == [], listing
        run(busybox_project, "--collect-only", "-q").stdout.fnmatch_lines(
            ["test_app.py::test_x[[]linux/amd64[]]", "test_app.py::test_x[[]linux/arm64[]]"]
        )
        spec = ImageSpec(name="", context=busybox_project.path, dockerfile=busybox_project.path / "Dockerfile")
        listed = subprocess.run(["docker", "image", "ls", "-q", image_repository(spec)], capture_output=True, text=True)
        assert listed.returncode == 0 and listed.stdout.split() == []  # nothing built
        assert not list(cache.glob("early/*")), "a listing run recorded what it needed"
        # The same project run for real builds, and records: what the checks above would have seen.
        run(busybox_project, "--multiarch-platforms=linux/amd64").assert_outcomes(passed=2)
        assert "linux/amd64" in asked
        listed = subprocess.run(["docker", "image", "ls", "-q", image_repository(spec)], capture_output=True, text=True)
        assert len(listed.stdout.split()) == 1 and len(list(cache.glob("early/*"))) == 1

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
        # The properties raise no PytestWarning (record_property's under xdist, say). Not the
        # in-process run's own: a pytest_multiarch imported by this process before the inner
        # session could rewrite it (whether it was depends on the tests run before on the worker).
        warnings = ["-W", "error::pytest.PytestWarning", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
        result = run(busybox_project, "--junitxml=report.xml", *warnings)
        result.assert_outcomes(passed=3)
        cases = ET.parse(busybox_project.path / "report.xml").getroot().iter("testcase")
        props = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases}
        assert props["test_x[linux/arm64]"]["platform"] == "linux/arm64"
        assert "linux-arm64" in props["test_x[linux/arm64]"]["image"]
        assert props["test_x[linux/amd64]"]["platform"] == "linux/amd64"
        assert props["test_x[linux/arm64]"]["engine"] == "unix:///var/run/docker.sock"  # the engine that ran it
        assert props["test_plain"] == {}
        suite = ET.parse(busybox_project.path / "report.xml").getroot().find("testsuite")
        suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert re.search(r"\(linux/[^)]+\)$", suite_props["multiarch.engine"])
        # What the docker CLI itself says about the engine, buildx and the current builder.
        server = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert suite_props["multiarch.engine"] == server
        buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, check=True).stdout
        assert suite_props["multiarch.buildx"] == buildx.split()[1]  # github.com/docker/buildx 0.13.1 abc
        inspected = subprocess.run(["docker", "buildx", "inspect"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in inspected.split("\n\n")[0].splitlines() if ":" in line)
        assert suite_props["multiarch.builder"] == f"{fields['Name'].strip()} ({fields['Driver'].strip()})"


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("how", ["github", "option", "off"])
def test_the_summary_is_appended_as_markdown_for_a_ci_job_page(busybox_project, monkeypatch, how):
    summary = busybox_project.path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = {"github": [], "option": ["--multiarch-summary-file", "other.md"], "off": ["--no-multiarch-summary-file"]}
    busybox_project.makepyfile(
        test_app="""
        import pytest

        def test_a(multiarch_container): assert multiarch_container.exec(["uname", "-m"])
        def test_b(multiarch_platform):
            if multiarch_platform.arch == "arm64":
                pytest.fail("arm64 on purpose")
        @pytest.mark.skip(reason="skipped on purpose")
        def test_c(multiarch_platform): pass
        """
    )
    run(busybox_project, *args[how]).assert_outcomes(passed=3, failed=1, skipped=2)
    written = {"github": summary, "option": busybox_project.path / "other.md", "off": None}[how]
    if written is None:
        assert summary.read_text() == "earlier step\n"
        return
    text = written.read_text()
    if how == "github":
        assert text.startswith("earlier step\n")  # appended, as GitHub expects
    rows = [line for line in text.splitlines() if line.startswith("| linux/")]
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:7]] for row in rows}
    assert cells == {
        "linux/amd64": ["2", "0", "1", "0", mode("linux/amd64")],
        "linux/arm64": ["1", "1", "1", "0", mode("linux/arm64")],
    }
    assert (
        "| platform | passed | failed | skipped | errors | mode | build | image | ready | elf checked/foreign |" in text
    )
    # Built, ready, and the architecture check read one ELF file (busybox) of the right CPU.
    assert all(len(row.split("|")) == 12 and " - |" not in row.split("|", 8)[-1] for row in rows), rows
    assert all(row.split("|")[10].strip() == "1/0" for row in rows), rows
