"""What README and docs/how-it-works.md promise, on real builds: the loaded image's platform is
checked, progress while a build runs, the ready path and its status rule, the default port,
build caches and the number of builds at once, and how a platform's error is shown."""

from __future__ import annotations

import itertools
import os
import pty
import re
import subprocess
import sys
import time

import pytest

from conftest import REGISTRY
from tests.integration.helpers import docker_cli_wrapper, run, shim_calls


def fresh() -> str:
    """A build arg value no earlier build had: its RUN steps really run (no layer cache)."""
    return f"FRESH={os.getpid()}-{time.time_ns()}"


SLOW_BUILD = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG FRESH
RUN echo "$FRESH" && sleep {seconds}
"""


@pytest.mark.usefixtures("docker_engine")
class TestBuilds:
    def test_an_image_loaded_for_another_platform_is_an_error_naming_both(self, busybox_project, tmp_path, monkeypatch):
        """how-it-works: "The loaded image's os/architecture/variant must match the platform." A
        builder that builds arm64 as amd64 (a shim in front of the docker CLI) loads an amd64 image
        under the arm64 tag; only the image's config can tell (no container runs here)."""
        monkeypatch.setenv("PATH", docker_cli_wrapper(tmp_path, build_as=("linux/arm64", "linux/amd64")))
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        result = busybox_project.runpytest_subprocess()
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [
                "*[[]linux/arm64[]] ImageMismatch: image pytest-multiarch/*:linux-arm64-* was requested for "
                "linux/arm64 but its config says linux/amd64*"
            ]
        )
        assert any(call.startswith("buildx build") for call in shim_calls(tmp_path))  # the shim built it

    def test_a_waiting_test_says_what_it_waits_for_every_15_s_in_a_log_and_v_streams_the_build(self, busybox_project):
        """README: -v streams buildx's log with a platform prefix; how-it-works: "still building"
        is printed every 15 s in a CI log (not a terminal), and each build ends with a line. The
        project's conftest sets the interval to 2 s, so a 5 s build shows it twice (the 15 s
        itself: test_progress.py)."""
        busybox_project.makeconftest("import pytest_multiarch.progress as p\np.PLAIN_EVERY_SECONDS = 2.0")
        busybox_project.makefile("", Dockerfile=SLOW_BUILD.replace("{seconds}", "5"))
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        result = run(busybox_project, "-v", "--multiarch-platforms=linux/amd64", f"--multiarch-build-arg={fresh()}")
        result.assert_outcomes(passed=1)
        status = [line for line in result.stdout.lines if "still building" in line]
        shown = [int(re.fullmatch(r"multiarch: still building linux/amd64 \((\d+) s\)…", line)[1]) for line in status]
        # Once per 2 s of build, give or take a late tick of a loaded machine.
        assert len(shown) >= 2 and 2 <= shown[0] <= 4, status
        assert all(1 <= later - earlier <= 3 for earlier, later in itertools.pairwise(shown)), status
        result.stdout.re_match_lines(
            [
                r"multiarch: \[linux/amd64\] #\d+ .*RUN echo .*sleep 5",
                r"multiarch: build linux/amd64: done in \d+\.\d s",
            ]
        )

    def test_on_a_terminal_the_status_is_rewritten_in_place_every_second(self, busybox_project):
        """how-it-works: "rewritten in place every second on a terminal" (pytest on a pty, -v: in
        the default verbosity the status would break pytest's line of results)."""
        busybox_project.makefile("", Dockerfile=SLOW_BUILD.replace("{seconds}", "5"))
        busybox_project.makepyfile(test_app="def test_x(multiarch_image): pass")
        args = [
            "-v",
            "-p",
            "no:cacheprovider",
            "--color=no",
            "--multiarch-platforms=linux/amd64",
            f"--multiarch-build-arg={fresh()}",
        ]
        output = _on_a_terminal([sys.executable, "-m", "pytest", *args], cwd=busybox_project.path)
        assert re.search(r"(?<![0-9])1 passed", output), output
        shown = list(re.finditer(r"([\r\n])multiarch: still building linux/amd64 \((\d+) s\)…", output))
        seconds = [int(found[2]) for found in shown]
        assert len(seconds) >= 3 and seconds == sorted(set(seconds)), output  # counting up, each once
        # One line, rewritten in place: a status starts a line of its own only as the first, or
        # after a line of the build's log took its place (when buildx prints it is up to buildx).
        for before, status in itertools.pairwise(shown):
            logged = "multiarch: [linux/amd64]" in output[before.end() : status.start()]
            assert status[1] == ("\n" if logged else "\r"), output
        assert shown[0][1] == "\n" and any(status[1] == "\r" for status in shown), output
        # ... and a line of the build's (-v: its log) takes its place, on a line of its own
        assert re.search(r"still building linux/amd64 \(\d+ s\)…[ ]*\r\s*multiarch: (\[linux/amd64\] |build )", output)
        assert re.search(r"[\r\n]multiarch: build linux/amd64: done", output), output

    def test_build_jobs_limits_the_builds_running_at_once(self, busybox_project):
        """--multiarch-build-jobs 1: the two platforms' builds, each a 3 s step, one after the
        other (each build notes its step's start and end, by the host's clock: /proc/uptime)."""
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            ARG FRESH
            RUN echo "$FRESH"; cut -d' ' -f1 /proc/uptime > /started && sleep 3 && cut -d' ' -f1 /proc/uptime > /ended
            CMD ["sleep", "600"]
            """,
        )
        busybox_project.makepyfile(
            test_app="""
            from pathlib import Path

            def test_x(multiarch_container, multiarch_platform):
                times = multiarch_container.exec(["cat", "/started", "/ended"]).split()
                Path(f"images-times-{multiarch_platform.slug}").write_text(" ".join(times))
            """
        )
        run(busybox_project, "--multiarch-build-jobs=1", f"--multiarch-build-arg={fresh()}").assert_outcomes(passed=2)
        (a_start, a_end), (b_start, b_end) = (
            map(float, (busybox_project.path / f"images-times-linux-{arch}").read_text().split())
            for arch in ("amd64", "arm64")
        )
        assert a_end <= b_start or b_end <= a_start, ((a_start, a_end), (b_start, b_end))  # never both at once

    def test_cache_to_and_cache_from_reach_buildx_a_registry_round_trip(self, busybox_project):
        """--multiarch-cache-to type=inline (what the docker driver exports) writes the cache into
        the image; pushed to the local registry, --multiarch-cache-from reads it back."""
        busybox_project.makefile("", Dockerfile=SLOW_BUILD.replace("{seconds}", "0"))
        busybox_project.makepyfile(
            test_app="""
            from pathlib import Path

            def test_x(multiarch_image):
                Path("images-tag").write_text(multiarch_image.tag)
            """
        )
        args = ("-v", "--multiarch-platforms=linux/amd64", f"--multiarch-build-arg={fresh()}")
        first = run(busybox_project, *args, "--multiarch-cache-to=type=inline")
        first.assert_outcomes(passed=1)
        first.stdout.re_match_lines([r"multiarch: \[linux/amd64\] #\d+ preparing layers for inline cache"])
        cache = f"{REGISTRY}/pytest-multiarch-test/cache:{os.getpid()}-{time.time_ns()}"
        subprocess.run(["docker", "tag", (busybox_project.path / "images-tag").read_text(), cache], check=True)
        try:
            subprocess.run(["docker", "push", "-q", cache], check=True, capture_output=True)
            # Built again (the image is unchanged, so only --multiarch-rebuild builds), with the cache.
            second = run(
                busybox_project, *args, "--multiarch-rebuild", f"--multiarch-cache-from=type=registry,ref={cache}"
            )
            second.assert_outcomes(passed=1)
            second.stdout.re_match_lines([rf"multiarch: \[linux/amd64\] #\d+ importing cache manifest from {cache}"])
            assert "failed to" not in second.stdout.str().lower(), second.stdout.str()
        finally:
            subprocess.run(["docker", "image", "rm", cache], capture_output=True)


def _on_a_terminal(command: list[str], cwd) -> str:
    """Run ``command`` with a pseudo-terminal as its stdout and stderr; all it wrote."""
    primary, secondary = pty.openpty()
    with subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary) as process:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=300)
    os.close(primary)
    return b"".join(chunks).decode(errors="replace")


READY_SCRIPT = r"""#!/bin/sh
# 503 twice, then a redirect to a path that always answers 500; counts the requests.
asked=$(cat /tmp/asked 2>/dev/null || echo 0)
asked=$((asked + 1))
echo "$asked" > /tmp/asked
if [ "$asked" -ge 3 ]; then
  printf 'Status: 302 Found\r\nLocation: /cgi-bin/broken\r\n\r\n'
else
  printf 'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nwarming up\n'
fi
"""

BROKEN_SCRIPT = "#!/bin/sh\nprintf 'Status: 500 Internal Server Error\\r\\n\\r\\nbroken\\n'\n"


@pytest.mark.usefixtures("docker_engine")
class TestReadiness:
    def test_the_ready_path_is_polled_until_it_answers_below_500_and_a_redirect_is_not_followed(self, busybox_project):
        """README: --multiarch-ready-path is polled until it answers < 500; redirects count (and
        how-it-works: are not followed). The app's /cgi-bin/health answers 503, 503, then 302 to a
        path that answers 500: ready exactly at the third request."""
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            COPY health broken /www/cgi-bin/
            RUN chmod +x /www/cgi-bin/health /www/cgi-bin/broken
            EXPOSE 8080
            CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
            """,
        )
        (busybox_project.path / "health").write_text(READY_SCRIPT)
        (busybox_project.path / "broken").write_text(BROKEN_SCRIPT)
        busybox_project.makepyfile(
            test_app="""
            def test_ready(multiarch_container, multiarch_http):
                # 1 if a 503 had counted as ready; none if / had been polled; more if the redirect
                # to the 500 had been followed (then it never gets ready)
                assert multiarch_container.exec(["cat", "/tmp/asked"]).strip() == "3"
                assert multiarch_http.get("/cgi-bin/health", allow_redirects=False).status_code == 302
            """
        )
        result = run(busybox_project, "--multiarch-platforms=linux/amd64", "--multiarch-ready-path=/cgi-bin/health")
        result.assert_outcomes(passed=1)

    def test_the_default_port_is_the_lowest_exposed_one_and_the_option_picks_another(
        self, busybox_project, monkeypatch
    ):
        """README: the container port is the image's lowest EXPOSEd port (by number: 9000 before
        10000, which sorts first as text), or --multiarch-port."""
        busybox_project.makefile(
            "",
            Dockerfile="""\
            ARG BASE_IMAGE
            FROM ${BASE_IMAGE}
            RUN mkdir -p /nine /ten && echo nine-thousand > /nine/index.html && echo ten-thousand > /ten/index.html
            EXPOSE 10000 9000
            CMD ["sh", "-c", "httpd -p 10000 -h /ten && exec httpd -f -p 9000 -h /nine"]
            """,
        )
        busybox_project.makepyfile(
            test_app="""
            import os

            def test_port(multiarch_http, multiarch_container):
                port, text = os.environ["EXPECTED"].split()
                assert multiarch_container.port == int(port)
                assert multiarch_http.get("/").text.strip() == text
            """
        )
        monkeypatch.setenv("EXPECTED", "9000 nine-thousand")
        run(busybox_project, "--multiarch-platforms=linux/amd64").assert_outcomes(passed=1)
        monkeypatch.setenv("EXPECTED", "10000 ten-thousand")
        run(busybox_project, "--multiarch-platforms=linux/amd64", "--multiarch-port=10000").assert_outcomes(passed=1)


@pytest.mark.usefixtures("docker_engine")
def test_a_platforms_error_is_shown_whole_once_and_by_its_first_line_after(busybox_project):
    """README: each problem is shown "on the tests of its platform only (the first shows it
    whole, the others its first line)"."""
    busybox_project.makefile(
        "",
        Dockerfile="""\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE}
        RUN if [ "$(uname -m)" = aarch64 ]; then echo "no arm64 support in this step" >&2; exit 3; fi
        """,
    )
    busybox_project.makepyfile(test_app="".join(f"def test_{n}(multiarch_image): pass\n" for n in "abc"))
    result = run(busybox_project, "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=3)
    errors = result.stdout.str().split(" ERRORS ")[1].split(" short test summary info ")[0]
    sections = dict(re.findall(r"_+ ERROR at setup of (\S+) _+\n(.*?)(?=\n_+ ERROR at setup of |\n=+)", errors, re.S))
    assert sorted(sections) == ["test_a[linux/arm64]", "test_b[linux/arm64]", "test_c[linux/arm64]"], errors
    first = sections["test_a[linux/arm64]"]
    assert first.startswith("[linux/arm64] BuildError: build of ") and "no arm64 support in this step" in first
    assert "exit code: 3" in first and len(first.splitlines()) > 3, first
    headline = first.splitlines()[0]
    for later in ("test_b[linux/arm64]", "test_c[linux/arm64]"):
        assert sections[later].strip() == f"{headline} (in full above, at test_app.py::test_a[linux/arm64])", sections
