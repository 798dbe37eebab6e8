"""The code blocks of README.md and docs/ as written (issue 27), taken from the Markdown
(tests/snippets.py) so that docs and tests cannot drift; tests/test_doc_snippets.py checks that
every block is here. The test blocks run against one busybox image that plays each tool the
docs assume (docs/any-image.md's `mytool`, an app server with a metrics port, a config file)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUSYBOX, PLATFORMS
from tests.integration.helpers import run
from tests.snippets import snippet

TOOL = """\
#!/bin/sh
# mytool of docs/any-image.md, and the app server of the README's quick start and api declaration
case "$1" in
  --version) echo "mytool 1.0" ;;
  convert) cat >/dev/null; echo "unknown format: $3" >&2; exit 2 ;;
  serve) httpd -p 9090 -h /srv/metrics && exec httpd -f -p "$3" -h /srv/www ;;
  *) exec "$@" ;;
esac
"""

TOOL_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY tool /usr/local/bin/tool
RUN mkdir -p /srv/www /srv/metrics /etc/app && echo ok > /srv/www/index.html \\
    && echo "requests_total 1" > /srv/metrics/metrics && printf '[server]\\nport = 8080\\n' > /etc/app/config.toml \\
    && chown -R 1000:1000 /etc/app && chmod 640 /etc/app/config.toml
USER 1000
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tool"]
CMD ["serve", "--port", "8080"]
"""


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.mark.usefixtures("docker_engine")
def test_the_quick_start_and_any_image_blocks_run_as_written(busybox_project: pytest.Pytester) -> None:
    root = busybox_project.path
    (root / "Dockerfile").write_text(TOOL_DOCKERFILE)
    executable(root / "tool", TOOL)
    (root / "pytest.ini").write_text(snippet("README.md: # pytest.ini (next to your Dockerfile)"))  # wins over tox.ini
    (root / "tests").mkdir()
    (root / "tests" / "test_app.py").write_text(snippet("README.md: # tests/test_app.py"))
    (root / "conftest.py").write_text(snippet("docs/any-image.md: # conftest.py"))
    (root / "test_cli.py").write_text(snippet("docs/any-image.md: def test_version(multiarch_run):"))
    (root / "test_metrics.py").write_text(snippet("docs/any-image.md: import requests"))
    files = snippet(
        "docs/any-image.md: def test_runs_as_non_root_everywhere(multiarch_image):  # also as a release gate"
    )
    (root / "test_files.py").write_text(files)
    result = run(busybox_project, f"--multiarch-build-arg=BASE_IMAGE={BUSYBOX}")
    result.assert_outcomes(passed=14)


@pytest.mark.usefixtures("docker_engine")
def test_the_marker_declaration_and_emulation_blocks_collect_as_written(pytester: pytest.Pytester) -> None:
    """They name linux/s390x and linux/arm/v7, which the busybox base image lacks: collected,
    never built (--co builds nothing)."""
    pytester.makeini(snippet("docs/emulation.md: [pytest]"))
    pytester.makeconftest(snippet("README.md: # conftest.py"))
    for folder, dockerfile in (("api", "Dockerfile"), ("worker", "Dockerfile.worker")):
        pytester.mkdir(folder)
        (pytester.path / folder / dockerfile).write_text(f"FROM {BUSYBOX} AS runtime\n")
    pytester.makepyfile(
        test_marker=snippet("README.md: import pytest"),
        test_emulation=snippet("docs/emulation.md: import pytest"),
        test_declared="def test_declared(api_http, worker_image): pass",
    )
    platforms = ["linux/amd64", "linux/arm64", "linux/s390x", "linux/arm/v7", "linux/riscv64"]
    result = pytester.runpytest_subprocess("--co", "-q", "--multiarch-platforms", ",".join(platforms))
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    collected = {line for line in result.stdout.lines if "::" in line}
    assert {line.split("::")[1] for line in collected if line.startswith("test_marker.py")} == {
        "test_only_on_arm[linux/arm64]",
        *(f"test_fast_path[{p}]" for p in platforms),
    }
    assert len([line for line in collected if line.startswith(("test_emulation.py", "test_declared.py"))]) == 10


STRUCTURE_YAML = """\
schemaVersion: 2.0.0
commandTests:
  - name: shell
    command: sh
    args: ["-c", "echo hi"]
    expectedOutput: ["hi"]
"""


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("key", ["docs/structure-tests.md: # pytest.ini", "README.md: multiarch_structure_tests ="])
def test_the_structure_tests_settings_collect_as_written(pytester: pytest.Pytester, key: str) -> None:
    """The ini blocks that point at structure-test YAML: each test of the YAML becomes an item per
    platform (--co: nothing is built)."""
    block = snippet(key)
    ini = block if "[pytest]" in block else "[pytest]\nmultiarch_platforms = linux/amd64, linux/arm64\n" + block
    pytester.makeini(ini)
    pytester.makefile("", Dockerfile=f"FROM {BUSYBOX}\n")
    pytester.mkdir("structure")
    (pytester.path / "structure" / "app.yaml").write_text(STRUCTURE_YAML)
    result = pytester.runpytest_subprocess("--co", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    collected = {line for line in result.stdout.lines if "::" in line}
    assert collected == {f"structure/app.yaml::commandTests::shell[{p}]" for p in ("linux/amd64", "linux/arm64")}


MARKED_YAML = """\
schemaVersion: "2.0.0"
commandTests:
  - name: uname
    command: uname
    args: ["-m"]
    expectedOutput: ["^x86_64\\n$"]
  - name: echo
    command: echo
    args: ["hi"]
    expectedOutput: ["hi"]
fileExistenceTests:
  - name: x86 loader
    path: /www/built-on
licenseTests:
  - files: ["/www/built-on"]
"""


def test_the_structure_marks_block_applies_the_platform_rules_everywhere(busybox_project: pytest.Pytester) -> None:
    """docs/structure-tests.md's conftest.py marks structure items by node id: xfail on arm64,
    amd64 only, and a mark -m deselects by. As written, with -k and -m; under pytest-xdist with
    --multiarch-report; and with --multiarch-platforms leaving platforms= nothing to keep."""
    import json

    project = busybox_project
    project.makeconftest(snippet("docs/structure-tests.md: # conftest.py"))
    project.mkdir("structure")
    (project.path / "structure" / "app.yaml").write_text(MARKED_YAML)
    project.makeini(
        f"[pytest]\nmultiarch_platforms = {PLATFORMS}\nmultiarch_build_args = BASE_IMAGE={BUSYBOX}\n"
        "multiarch_structure_tests = structure/app.yaml\nmarkers = slow: the project's slow tests\n"
    )
    with (project.path / ".dockerignore").open("a") as ignore:
        ignore.write("structure\nreport.json\n")

    result = run(project, "-m", "not slow", "-k", "not echo", "-rA")
    result.assert_outcomes(passed=2, xfailed=1, deselected=5)
    result.stdout.fnmatch_lines(["XFAIL structure/app.yaml::commandTests::uname[[]linux/arm64[]] - linux/arm64: *"])
    result.stdout.fnmatch_lines(["PASSED structure/app.yaml::fileExistenceTests::x86 loader[[]linux/amd64[]]"])

    result = project.runpytest_subprocess("-p", "xdist", "-n", "2", "-m", "not slow", "--multiarch-report=report.json")
    result.assert_outcomes(passed=4, xfailed=1)
    report = json.loads((project.path / "report.json").read_text())
    tested = {entry["platform"]: entry for entry in report["platforms"]}
    ids = "structure/app.yaml::commandTests::{}[{}]"
    assert tested["linux/amd64"]["passed"] == sorted(
        [ids.format("echo", "linux/amd64"), ids.format("uname", "linux/amd64"),
         "structure/app.yaml::fileExistenceTests::x86 loader[linux/amd64]"]
    )  # fmt: skip
    assert tested["linux/arm64"]["passed"] == [ids.format("echo", "linux/arm64")]
    assert tested["linux/arm64"]["skipped"] == [ids.format("uname", "linux/arm64")]  # xfailed
    assert all(entry["image_id"].startswith("sha256:") for entry in tested.values()), tested

    result = run(project, "--multiarch-platforms", "linux/arm64", "-rA")
    result.assert_outcomes(passed=2, xfailed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * none of the configured platforms (linux/arm64) is in platforms=*"])

    # A wrong rule is one usage error naming the item.
    (project.path / "typo.py").write_text(
        "import pytest\n\n\ndef pytest_collection_modifyitems(items):\n"
        "    items[0].add_marker(pytest.mark.multiarch(xfail={'linux/s390x': 'typo'}))\n"
    )
    result = project.runpytest_subprocess("--co", "-p", "typo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*@pytest.mark.multiarch on structure/app.yaml::*: xfail= names linux/s390x, *"])


SECRET_STUBS = {
    "npm": '#!/bin/sh\n[ "$1" = ci ] && [ -n "$NPM_TOKEN" ] || exit 1\n'
    'echo "token of ${#NPM_TOKEN} characters" > /npm-ran\n',
    "git": '#!/bin/sh\n[ -S "$SSH_AUTH_SOCK" ] || { echo "no ssh agent" >&2; exit 1; }\necho "git $*" > /git-ran\n',
}


@pytest.mark.usefixtures("docker_engine")
def test_the_secrets_block_builds_on_this_engine_with_the_flags_it_names(
    busybox_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """README's secrets block after a FROM of the busybox image, with npm and git stand-ins that
    check what they get; built by the plugin with its own flags: the token from NPM_TOKEN, an ssh
    agent of this test's."""
    block = snippet(
        'README.md: RUN --mount=type=secret,id=npm NPM_TOKEN="$(cat /run/secrets/npm)" npm ci   '
        "# --multiarch-secret id=npm,env=NPM_TOKEN"
    )
    busybox_project.makefile(
        "", Dockerfile=f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nCOPY npm git /usr/local/bin/\n{block}"
    )
    for name, text in SECRET_STUBS.items():
        executable(busybox_project.path / name, text)
    busybox_project.makepyfile(
        test_built="""
        def test_built(multiarch_run):
            assert multiarch_run("cat", "/npm-ran", "/git-ran").stdout == (
                "token of 16 characters\\ngit clone git@github.com:acme/private.git\\n"
            )
        """
    )
    socket = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert agent.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket))
        monkeypatch.setenv("NPM_TOKEN", "s3cr3t-npm-token")
        result = run(busybox_project, "--multiarch-secret", "id=npm,env=NPM_TOKEN", "--multiarch-ssh", "default")
    finally:
        agent.terminate()
        agent.wait(timeout=30)
    result.assert_outcomes(passed=2)
    assert "s3cr3t-npm-token" not in result.stdout.str() + result.stderr.str()
