"""--multiarch-rebuild still hits BuildKit's layer cache; --multiarch-no-cache builds from
scratch (issue 27). A RUN step stores a random id: the same id is a cached layer."""

from __future__ import annotations

import re

import pytest

from tests.integration.helpers import run

RANDOM_LAYER = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN cat /proc/sys/kernel/random/uuid > /built-id
"""

TESTS = """
from pathlib import Path

def test_id(multiarch_run, multiarch_platform):
    Path(f"images-id-{multiarch_platform.slug}").write_text(multiarch_run("cat", "/built-id").stdout)
"""


@pytest.mark.usefixtures("docker_engine")
def test_rebuild_keeps_the_layer_cache_and_no_cache_drops_it(busybox_project):
    busybox_project.makefile("", Dockerfile=RANDOM_LAYER)
    busybox_project.makepyfile(test_ids=TESTS)

    def ids(*args: str) -> dict[str, str]:
        result = run(busybox_project, "-v", *args)
        result.assert_outcomes(passed=2)
        if args:  # the key is unchanged: only the flag makes these build, and the build says so
            done = [line for line in result.stdout.lines if re.match(r"multiarch: build linux/\w+: done in", line)]
            assert len(done) == 2, result.stdout.str()
            why = [line for line in result.stdout.lines if line.startswith("multiarch: building ")]
            assert len(why) == 2 and all(line.endswith(f": {args[0]}…") for line in why), why
        return {arch: (busybox_project.path / f"images-id-linux-{arch}").read_text() for arch in ("amd64", "arm64")}

    first = ids()
    assert ids("--multiarch-rebuild") == first  # built again, but from BuildKit's cache
    fresh = ids("--multiarch-no-cache")
    assert all(fresh[arch] != first[arch] for arch in first), (first, fresh)
    ids("--multiarch-pull")  # buildx --pull: this engine accepts it, the base image is resolved again
