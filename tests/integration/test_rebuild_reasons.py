"""Build only when the image can change (issue 27): a file the Dockerfile never copies (a test
file, a report written into the rootdir) rebuilds nothing; a copied one rebuilds each platform,
and the build says why in one line."""

from __future__ import annotations

import pytest

from conftest import BUSYBOX
from tests.integration.helpers import run

COPYING = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY app.sh /app.sh
CMD ["sleep", "600"]
"""


@pytest.mark.usefixtures("docker_engine")
def test_only_what_the_dockerfile_copies_rebuilds_and_the_build_says_why(busybox_project):
    busybox_project.makefile("", Dockerfile=COPYING)
    (busybox_project.path / "app.sh").write_text("echo 1\n")
    busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
    args = [f"--multiarch-build-arg=BASE_IMAGE={BUSYBOX}"]
    first = run(busybox_project, *args)
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines_random(
        [
            f"multiarch: building {p} (*): no earlier build of this image is known here…"
            for p in ("linux/amd64", "linux/arm64")
        ]
    )

    busybox_project.makepyfile(test_app="def test_x(multiarch_image): assert True")  # the tests change
    (busybox_project.path / "results.txt").write_text("written by a run")  # a report in the rootdir
    second = run(busybox_project, *args)
    second.assert_outcomes(passed=2)
    assert second.stdout.str().count("reused (unchanged)") == 2, second.stdout.str()
    assert "multiarch: building" not in second.stdout.str()

    (busybox_project.path / "app.sh").write_text("echo 2\n")
    third = run(busybox_project, *args)
    third.assert_outcomes(passed=2)
    third.stdout.fnmatch_lines_random(
        [f"multiarch: building {p} (*): app.sh changed…" for p in ("linux/amd64", "linux/arm64")]
    )
