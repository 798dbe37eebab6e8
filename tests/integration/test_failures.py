"""Containers that fail: wrong binaries, exit during start, port never ready, exec errors, usage errors."""

from __future__ import annotations

import pytest

from pytest_multiarch.config import ImageSpec
from tests.integration.helpers import mode, run


@pytest.mark.usefixtures("docker_engine")
class TestOnePlatformFailing:
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
        # BuildKit labels the image arm64 but its binaries are amd64: the architecture check reads it.
        result.stdout.fnmatch_lines(
            [
                "*ArchMismatch: the linux/arm64 image * holds binaries that a linux/arm64 CPU cannot run*",
                "  /bin/busybox: ELF 64-bit x86-64, but linux/arm64 needs aarch64 (the entrypoint)",
            ]
        )
        # Without it, `uname -m` inside still tells (the second line of defence).
        result = run(busybox_project, "--multiarch-arch-check=off")
        result.assert_outcomes(passed=1, errors=1)
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
        # Again, the images built: what is left is starting, seeing the exit and reporting it.
        # Waiting for the start timeout instead would take 10 minutes (amd64), 50 (arm64).
        again = run(busybox_project, "--multiarch-timeout=600")
        again.assert_outcomes(errors=4)
        again.stdout.fnmatch_lines_random(
            [f"linux/amd64*{mode('linux/amd64')}*reused*", f"linux/arm64*{mode('linux/arm64')}*reused*"]
        )
        assert again.duration < 60, again.stdout.str()

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


def test_an_image_removed_before_its_container_starts_is_named_not_pulled(docker_engine, tmp_path):
    from pytest_multiarch.build import BuiltImage
    from pytest_multiarch.engine import Engine
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
        start_container(Engine.default(), gone, spec, timeout=5)
