"""An engine without buildx or without a platform's emulator, and a build context that is missing."""

from __future__ import annotations

import pytest

from tests.integration.helpers import NATIVE, docker_cli_wrapper, run, shim_calls


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
        assert any(call.startswith("buildx") for call in shim_calls(tmp_path))  # it met the shim, not a cache

    def test_platform_without_emulator_skips_with_the_install_command(self, busybox_project, monkeypatch, tmp_path):
        monkeypatch.setenv("PATH", docker_cli_wrapper(tmp_path, hide_platform="linux/s390x"))
        monkeypatch.delenv("CI", raising=False)
        busybox_project.makepyfile(test_app="def test_x(multiarch_platform): pass")
        result = busybox_project.runpytest_subprocess("-rs", f"--multiarch-platforms={NATIVE},linux/s390x")
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(
            [
                f"*linux/s390x cannot run on this engine ({NATIVE} native): no QEMU emulator*"
                "tonistiigi/binfmt --install s390x*"
            ]
        )
        result.stdout.fnmatch_lines([f"multiarch: platforms: {NATIVE} (native), linux/s390x (unavailable*"])
        assert any(call.startswith("buildx inspect") for call in shim_calls(tmp_path))  # met the shim
        strict = busybox_project.runpytest_subprocess(
            "--multiarch-platforms=linux/amd64,linux/s390x", "--multiarch-strict"
        )
        strict.assert_outcomes(passed=1, errors=1)
        strict.stdout.fnmatch_lines(["*PlatformUnavailable: linux/s390x cannot run on this engine*"])
        # CI must not turn green by skipping a platform either.
        monkeypatch.setenv("CI", "true")
        in_ci = busybox_project.runpytest_subprocess("--multiarch-platforms=linux/amd64,linux/s390x")
        in_ci.assert_outcomes(passed=1, errors=1)
        in_ci.stdout.fnmatch_lines(["*PlatformUnavailable: linux/s390x cannot run on this engine*"])

    def test_missing_context_names_its_path(self, busybox_project):
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        result = run(busybox_project, "--multiarch-context=services/api")
        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(["*UsageError: build context '*services/api' is not a directory*"])
