"""One test run per platform, the platform as test id, native first, and @pytest.mark.multiarch."""

from __future__ import annotations

import re

import pytest

from tests.integration.helpers import APP_TESTS, FOREIGN, LOADED_PLATFORM_SOURCE, NATIVE, mode, run


@pytest.mark.usefixtures("docker_engine")
class TestBothPlatforms:
    def test_tests_run_once_per_platform_with_the_platform_as_id(self, busybox_project):
        busybox_project.makepyfile(test_app=APP_TESTS, loaded=LOADED_PLATFORM_SOURCE)
        result = run(busybox_project, "-v")
        result.assert_outcomes(passed=7)
        result.stdout.fnmatch_lines_random(
            [
                "*test_root?linux/amd64? PASSED*",
                "*test_root?linux/arm64? PASSED*",
                "*test_exec?linux/arm64? PASSED*",
                "*test_not_parametrized PASSED*",
                f"multiarch: platforms: linux/amd64 ({mode('linux/amd64')}*), linux/arm64 ({mode('linux/arm64')}*",
            ]
        )
        for platform in ("linux/amd64", "linux/arm64"):  # passed, failed, skipped, errors; mode
            row = rf"^{platform} +3 +0 +0 +0 +{mode(platform)} "
            assert re.search(row, result.stdout.str(), re.M), result.stdout.str()

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
        native, foreign = NATIVE, FOREIGN
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
        assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run
