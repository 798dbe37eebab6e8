"""What a first run prints (issue 27): pytest's own lines stay whole in its default verbosity,
and the plugin's lines never say "None"."""

from __future__ import annotations

import re

import pytest

from conftest import BUSYBOX
from tests.integration.helpers import FOREIGN, NATIVE, run

# No EXPOSE: its container publishes no port and is ready once it runs.
NO_PORT_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
CMD ["sleep", "600"]
"""


@pytest.mark.usefixtures("docker_engine")
class TestDefaultVerbosity:
    def test_the_file_line_is_whole_and_a_container_without_port_is_not_at_none(self, busybox_project):
        """One file, two tests, two platforms: pytest prints the file's name once, with its four
        results on that line; the plugin's lines come before it or after it, never inside."""
        busybox_project.makefile("", Dockerfile=NO_PORT_DOCKERFILE)
        busybox_project.makepyfile(
            test_app="""
            def test_a(multiarch_container):
                assert multiarch_container.exec(["true"]) == ""

            def test_b(multiarch_container):
                pass
            """
        )
        result = run(busybox_project, f"--multiarch-build-arg=BASE_IMAGE={BUSYBOX}")
        result.assert_outcomes(passed=4)
        named = [line for line in result.stdout.lines if "test_app.py" in line]
        assert len(named) == 1 and re.fullmatch(r"test_app\.py \.\.\.\. +\[100%\]", named[0]), result.stdout.str()
        ready = [line for line in result.stdout.lines if "container ready in" in line]
        assert len(ready) == 2 and all(line.endswith("(no port published)") for line in ready), ready
        assert not [line for line in result.stdout.lines if "None" in line], result.stdout.str()


FAILING_BUILD = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo compiling && false
"""


@pytest.mark.usefixtures("docker_engine")
def test_a_build_failing_alike_on_both_platforms_is_shown_in_full_once_naming_both(busybox_project):
    busybox_project.makefile("", Dockerfile=FAILING_BUILD)
    busybox_project.makepyfile(test_app="def test_a(multiarch_image): pass\ndef test_b(multiarch_image): pass")
    result = run(busybox_project, f"--multiarch-build-arg=BASE_IMAGE={BUSYBOX}")
    result.assert_outcomes(errors=4)
    output = result.stdout.str()
    # In the ERRORS section (pytest's own short summary below repeats the first error's text).
    assert output.split("short test summary info")[0].count("lines of the build log:") == 1, output
    first, second = NATIVE, FOREIGN
    result.stdout.fnmatch_lines(
        [
            f"[[]{first}, {second}[]] BuildError: build of *Dockerfile for {first} failed at step: *RUN echo*",
            f"[[]{second}[]] BuildError: build of *Dockerfile for {second} failed at step: * (the same failure as on "
            f"{first}: in full above, at test_app.py::test_a[[]{first}[]])",
        ]
    )
