"""Builds: reuse of an unchanged image, pruning, build args and their masking, failing builds."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from conftest import BUSYBOX, BUSYBOX_DOCKERFILE
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.names import image_repository
from tests.integration.helpers import mode, run


@pytest.mark.usefixtures("docker_engine")
class TestBothPlatforms:
    def test_unchanged_image_is_reused_and_a_change_rebuilds(self, busybox_project):
        # COPY . : every file of the context reaches the image (a Dockerfile copying less rebuilds
        # for less: test_rebuild_reasons.py).
        busybox_project.makefile("", Dockerfile=BUSYBOX_DOCKERFILE + "COPY . /context\n")
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")

        def build_and_image(result: pytest.RunResult) -> dict[str, tuple[str, str]]:
            """Per platform, the summary's build column (a time or `reused`) and image id."""
            result.assert_outcomes(passed=2)
            rows = {}
            for platform in ("linux/amd64", "linux/arm64"):
                row = rf"^{platform} +1 +0 +0 +0 +{mode(platform)} +(reused|\d+\.\d s) +([0-9a-f]{{12}}) +- +1/0$"
                found = re.search(row, result.stdout.str(), re.M)
                assert found, result.stdout.str()
                rows[platform] = (found.group(1), found.group(2))
            return rows

        first = build_and_image(run(busybox_project))
        assert "reused" not in {build for build, _ in first.values()}  # a new project: built
        again = run(busybox_project)
        amd, arm = mode("linux/amd64"), mode("linux/arm64")
        again.stdout.fnmatch_lines([f"linux/amd64*{amd}*reused*", f"linux/arm64*{arm}*reused*"])
        assert build_and_image(again) == {platform: ("reused", image) for platform, (_, image) in first.items()}
        busybox_project.makefile(".txt", extra="a new file in the context")
        changed_run = run(busybox_project)
        changed = build_and_image(changed_run)
        changed_run.stdout.no_fnmatch_line("linux/*reused*")
        assert "reused" not in {build for build, _ in changed.values()}  # the build column: a time
        assert {image for _, image in changed.values()}.isdisjoint(image for _, image in first.values())
        # The builds the change replaced were pruned when the session ended: one image per platform.
        spec = ImageSpec(name="", context=busybox_project.path, dockerfile=busybox_project.path / "Dockerfile")
        listed = subprocess.run(
            ["docker", "image", "ls", "--format", "{{.Tag}}", f"{image_repository(spec)}"],
            capture_output=True,
            text=True,
        )
        assert sorted(tag.split("-")[1] for tag in listed.stdout.split()) == ["amd64", "arm64"], listed.stdout


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
        (busybox_project.path / "slow" / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {os.getpid()}-{time.time_ns()}\n"
        )
        busybox_project.makeconftest(
            """
            from pytest_multiarch import multiarch_fixtures

            slow_image, _, _ = multiarch_fixtures("slow", context="slow")
            """
        )
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass\ndef test_slow(slow_image): pass")
        # One build at a time, in the order the tests need them: the "slow" arm64 build finishes
        # after the failing one, so that the summary's last word would be a success. Not a sleep
        # in the build that a loaded machine may outrun.
        result = run(busybox_project, "--multiarch-build-jobs=1")
        result.assert_outcomes(passed=3, errors=1)
        ended = [line for line in result.stdout.lines if line.startswith("multiarch: build linux/arm64")]
        assert [line.split(":")[1] for line in ended] == [" build linux/arm64", " build linux/arm64 (slow)"], ended
        assert "failed after" in ended[0] and "done in" in ended[1], ended
        result.stdout.re_match_lines([rf"^linux/arm64 +1 +0 +0 +1 +{mode('linux/arm64')} +failed "])

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
        # The mask itself, at the end of the step's output line: not the value, nor nothing.
        result.stdout.re_match_lines([r".*registry token is \*\*\*$"])
        everything = result.stdout.str() + result.stderr.str() + (busybox_project.path / "report.xml").read_text()
        assert "sup3rs3cret" not in everything


def test_pruning_spares_an_image_another_session_built_after_this_one_started(docker_engine, tmp_path):
    """Two sessions of one project at once: the one ending first must not remove the image the
    other has just built and is about to start a container from."""
    import docker as docker_sdk

    from pytest_multiarch.build import prune_stale
    from pytest_multiarch.names import SLOT_LABEL

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
