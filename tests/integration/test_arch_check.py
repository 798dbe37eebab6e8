"""The architecture check on real builds: a platform whose image holds binaries for another CPU
fails, read from the image's files without running them (issue 23).

The slip every test here makes is the common one: a stage on ``$BUILDPLATFORM`` (or pinned to
one platform) whose binary is copied unchanged into every platform's image. On this machine the
foreign binary runs anyway (natively, or under QEMU), so only the check can catch it: each
scenario was also run with ``--multiarch-arch-check off``, where it passes.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_multiarch import Platform
from pytest_multiarch.elf import needs
from tests.conftest import BUSYBOX, PLATFORMS, REGISTRY
from tests.integration.helpers import FOREIGN, NATIVE

pytestmark = pytest.mark.usefixtures("docker_engine")

# The default image: busybox's httpd from the build platform's stage, as every platform's entrypoint.
SLIP = """\
ARG BASE_IMAGE
FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build
RUN cp /bin/busybox /httpd
FROM ${BASE_IMAGE}
COPY --from=build /httpd /usr/local/bin/httpd
RUN mkdir -p /www && echo hello > /www/index.html
EXPOSE 8080
ENTRYPOINT ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""

# No shell, no uname: the check reads it all the same.
SCRATCH = """\
ARG BASE_IMAGE
FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build
FROM scratch
COPY --from=build /bin/busybox /busybox
ENTRYPOINT ["/busybox", "true"]
"""

# Right for every platform: foreign files on PATH deleted by later layers (a whiteout, and an
# opaque directory), and prebuilt add-ons for both CPUs beside the right binaries.
RIGHT = """\
ARG BASE_IMAGE
FROM --platform=linux/amd64 ${BASE_IMAGE} AS x64
FROM --platform=linux/arm64 ${BASE_IMAGE} AS a64
FROM ${BASE_IMAGE}
COPY --from=x64 /bin/busybox /usr/local/bin/x64-tool
COPY --from=a64 /bin/busybox /usr/local/bin/a64-tool
COPY --from=x64 /bin/busybox /usr/local/sbin/x64-tool
COPY --from=a64 /bin/busybox /usr/local/sbin/a64-tool
RUN rm /usr/local/bin/x64-tool /usr/local/bin/a64-tool && rm -rf /usr/local/sbin && mkdir /usr/local/sbin
COPY --from=x64 /bin/busybox /app/node_modules/addon/prebuilds/linux-x64/addon.node
COPY --from=a64 /bin/busybox /app/node_modules/addon/prebuilds/linux-arm64/addon.node
CMD ["sleep", "3600"]
"""

# A script entrypoint whose "#!" interpreter comes from the build platform.
SCRIPT = """\
ARG BASE_IMAGE
FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS build
FROM ${BASE_IMAGE}
COPY --from=build /bin/busybox /opt/build-sh/sh
RUN mkdir -p /usr/local/bin && printf '#!/opt/build-sh/sh\\necho hi\\n' > /usr/local/bin/entry \\
    && chmod +x /usr/local/bin/entry
ENTRYPOINT ["entry"]
"""

CONFTEST = """
from pytest_multiarch import multiarch_fixtures

scratch_image, scratch_container, scratch_http = multiarch_fixtures("scratch", dockerfile="scratch.Dockerfile")
right_image, right_container, right_http = multiarch_fixtures("right", dockerfile="right.Dockerfile")
script_image, script_container, script_http = multiarch_fixtures("script", dockerfile="script.Dockerfile")
"""

TESTS = """
import pytest

def test_serves(multiarch_http):
    assert multiarch_http.get("/").text.strip() == "hello"

def test_uname(multiarch_container, multiarch_platform):
    assert multiarch_container.exec(["uname", "-m"]).strip() in multiarch_platform.machines

def test_scratch(scratch_run):
    assert scratch_run().exit_code == 0

def test_right(right_image, multiarch_platform):
    assert right_image.elf("/bin/busybox").matches(multiarch_platform)
    with pytest.raises(FileNotFoundError, match="x64-tool"):
        right_image.elf("/usr/local/bin/x64-tool")
    with pytest.raises(FileNotFoundError):
        right_image.elf("/usr/local/sbin/a64-tool")

def test_script(script_image):
    assert script_image.config.entrypoint == ("entry",)
"""


def described(platform: str) -> str:
    """How the check describes a busybox built for ``platform``: ``ELF 64-bit x86-64``."""
    return f"ELF 64-bit {needs(Platform.parse(platform))}"


@pytest.fixture
def slip_project(busybox_project: pytest.Pytester) -> pytest.Pytester:
    busybox_project.makefile("", Dockerfile=SLIP)
    for name, text in {"scratch": SCRATCH, "right": RIGHT, "script": SCRIPT}.items():
        (busybox_project.path / f"{name}.Dockerfile").write_text(text)
    busybox_project.makeconftest(CONFTEST)
    busybox_project.makepyfile(test_images=TESTS)
    return busybox_project


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Test id → PASSED / FAILED / ERROR, from -rA's short summary and -v's lines."""
    found: dict[str, str] = {}
    for line in result.outlines:
        for outcome in ("PASSED", "FAILED", "ERROR"):
            if line.startswith("test_images.py::") and f" {outcome}" in line:
                found[line.split()[0].removeprefix("test_images.py::")] = outcome
    return found


def test_a_build_platform_binary_fails_the_other_platform_and_names_the_file(slip_project):
    result = slip_project.runpytest_subprocess("-v", "-p", "no:randomly", "--junitxml=report.xml")
    outcomes = _outcomes(result)
    for test in ("test_serves", "test_uname", "test_scratch", "test_right", "test_script"):
        assert outcomes[f"{test}[{NATIVE}]"] == "PASSED", result.stdout.str()
    for test in ("test_serves", "test_uname", "test_scratch", "test_script"):
        assert outcomes[f"{test}[{FOREIGN}]"] == "ERROR", result.stdout.str()
    assert outcomes[f"test_right[{FOREIGN}]"] == "PASSED"  # its foreign files are deleted or add-ons
    out = result.stdout.str()
    wrong = f"{described(NATIVE)}, but {FOREIGN} needs {needs(Platform.parse(FOREIGN))}"
    assert f"/usr/local/bin/httpd: {wrong} (the entrypoint)" in out
    assert f"/busybox: {wrong} (the entrypoint)" in out
    assert f"/opt/build-sh/sh: {wrong} (the interpreter of /usr/local/bin/entry)" in out
    assert f"They are built for {NATIVE}, this engine's own CPU" in out
    # Each platform's add-on for the other CPU is a warning, not a failure; the deleted ones are gone.
    add_on = {"linux/amd64": "linux-x64", "linux/arm64": "linux-arm64"}
    for platform in add_on:
        other = next(v for k, v in add_on.items() if k != platform)
        heading = next(
            i for i, line in enumerate(result.outlines) if line.startswith(f"multiarch: {platform}: 1 file(")
        )
        warned = result.outlines[heading + 1].strip()
        assert warned.startswith(f"/app/node_modules/addon/prebuilds/{other}/addon.node: ELF 64-bit"), warned
        assert warned.endswith(f"but {platform} needs {needs(Platform.parse(platform))} (elsewhere)"), warned
    assert "x64-tool: ELF" not in out and "a64-tool: ELF" not in out
    # The summary's column: ELF files read / foreign, per platform (four images: 8 ELF files; the
    # foreign ones: the add-on, and on the other platform the entrypoints).
    result.stdout.fnmatch_lines([f"{NATIVE} *8/1*", f"{FOREIGN} *8/4*"])
    # JUnit: per test, what the check read of the image it used.
    cases = ET.parse(slip_project.path / "report.xml").getroot().iter("testcase")
    properties = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")} for c in cases}
    assert properties[f"test_right[{NATIVE}]"]["arch_check"] == "3 ELF files, 1 foreign"
    assert properties[f"test_serves[{NATIVE}]"]["arch_check"] == "2 ELF files, 0 foreign"


def test_all_fails_the_add_ons_and_ignore_silences_them(slip_project):
    result = slip_project.runpytest_subprocess("-v", "-p", "no:randomly", "--multiarch-arch-check=all", "-k", "right")
    outcomes = _outcomes(result)
    assert outcomes == {f"test_right[{NATIVE}]": "ERROR", f"test_right[{FOREIGN}]": "ERROR"}, result.stdout.str()
    assert "(elsewhere)" in result.stdout.str()

    ignored = "--multiarch-arch-ignore=/app/node_modules/*/prebuilds/*"
    result = slip_project.runpytest_subprocess(
        "-v", "-p", "no:randomly", "--multiarch-arch-check=all", ignored, "-k", "right"
    )
    result.assert_outcomes(passed=2)
    assert "built for another CPU" not in result.stdout.str()


def test_off_checks_nothing_and_the_slip_passes_unseen(slip_project):
    """What the check is for: without it every test of the broken platform passes."""
    result = slip_project.runpytest_subprocess(
        "-p", "no:randomly", "--multiarch-arch-check=off", "-k", "serves or uname"
    )
    result.assert_outcomes(passed=4)


def test_a_release_gate_checks_the_pulled_manifests(busybox_project, tmp_path):
    """The same slip pushed as an index and tested with --multiarch-image."""
    context = tmp_path / "slip"
    context.mkdir()
    (context / "Dockerfile").write_text(SLIP)
    repo = f"{REGISTRY}/pytest-multiarch-test/slip"
    tags = []
    for platform in PLATFORMS.split(","):
        tag = f"{repo}:{Platform.parse(platform).slug}-{os.getpid()}"
        build = ["docker", "buildx", "build", "--platform", platform, "--load", "-t", tag]
        _run(*build, "--build-arg", f"BASE_IMAGE={BUSYBOX}", str(context))
        _run("docker", "push", "-q", tag)
        tags.append(tag)
    index = f"{repo}:index-{os.getpid()}"
    _run("docker", "buildx", "imagetools", "create", "-t", index, *tags)
    busybox_project.makepyfile(test_images=TESTS.split("def test_scratch")[0])
    result = busybox_project.runpytest_subprocess("-v", "-p", "no:randomly", f"--multiarch-image={index}")
    outcomes = _outcomes(result)
    assert outcomes[f"test_serves[{NATIVE}]"] == "PASSED"
    assert outcomes[f"test_serves[{FOREIGN}]"] == "ERROR"
    assert f"/usr/local/bin/httpd: {described(NATIVE)}, but {FOREIGN}" in result.stdout.str()


def test_an_engine_elsewhere_is_read_through_its_export(slip_project, remote_engine):
    """The foreign platform built and read on the second engine (tcp://, its storage not this
    process's to read): the same verdict, from the engine's export of the image."""
    engine = f"--multiarch-engine={FOREIGN}={remote_engine['REMOTE_DOCKER_HOST']}"
    result = slip_project.runpytest_subprocess("-v", "-p", "no:randomly", engine, "-k", "serves or script")
    outcomes = _outcomes(result)
    assert outcomes[f"test_serves[{FOREIGN}]"] == "ERROR", result.stdout.str()
    assert outcomes[f"test_script[{FOREIGN}]"] == "ERROR"
    assert outcomes[f"test_serves[{NATIVE}]"] == "PASSED"
    assert f"/usr/local/bin/httpd: {described(NATIVE)}, but {FOREIGN}" in result.stdout.str()


def test_the_verdict_is_kept_by_image_id(slip_project):
    """A warm run reads the findings of the same image id from the cache, not the image: a
    finding planted there is what it reports."""
    slip_project.runpytest_subprocess("-k", "right")
    cached = sorted(
        (slip_project.path / ".cache" / "pytest-multiarch" / "arch").glob(f"*-{Platform.parse(NATIVE).slug}-*.json")
    )
    assert cached, "no verdict was cached"
    for path in cached:
        data = json.loads(path.read_text())
        data["findings"].append(
            {"path": "/planted", "problem": "planted finding", "role": "on PATH", "severe": True, "foreign": True}
        )
        path.write_text(json.dumps(data))
    result = slip_project.runpytest_subprocess("-v", "-k", "right")
    assert "/planted: planted finding (on PATH)" in result.stdout.str()
    assert _outcomes(result)[f"test_right[{NATIVE}]"] == "ERROR"


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_both_readers_give_the_same_files(busybox_project, tmp_path):
    """The engine's layer directories and its export agree, deletions included."""
    import docker

    from pytest_multiarch import imagefiles
    from pytest_multiarch.engine import Engine
    from pytest_multiarch.rootfs import from_layer_dirs

    (tmp_path / "Dockerfile").write_text(RIGHT)
    tag = f"pytest-multiarch-test/readers:{os.getpid()}"
    _run(
        "docker",
        "buildx",
        "build",
        "--platform",
        FOREIGN,
        "--load",
        "-t",
        tag,
        "--build-arg",
        f"BASE_IMAGE={BUSYBOX}",
        str(tmp_path),
    )
    try:
        engine = Engine.default(container_host=None, builder=None, cache_dir=None)
        image_id = docker.from_env().images.get(tag).id
        layers = imagefiles._local_layers(engine, image_id)
        assert layers is not None, "this machine's engine should be readable here"
        by_layers = from_layer_dirs(layers)
        exported = imagefiles._exported(engine, image_id)
        engine.close()
    finally:
        _run("docker", "image", "rm", tag)
    made_by_docker = {
        "/.dockerenv",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/etc/mtab",
        "/dev",
        "/proc",
        "/sys",
    }
    mine = {
        p: e for p, e in exported.entries.items() if not any(p == m or p.startswith(m + "/") for m in made_by_docker)
    }
    theirs = {
        p: e for p, e in by_layers.entries.items() if not any(p == m or p.startswith(m + "/") for m in made_by_docker)
    }
    differ = {p for p in set(mine) | set(theirs) if mine.get(p) != theirs.get(p)}
    assert not differ, {p: (mine.get(p), theirs.get(p)) for p in sorted(differ)}
    assert "/usr/local/bin/x64-tool" not in theirs and "/usr/local/sbin/a64-tool" not in theirs
    assert "/app/node_modules/addon/prebuilds/linux-x64/addon.node" in theirs


def test_a_dynamic_binary_whose_loader_is_missing_fails_naming_the_loader(busybox_project):
    """Each platform's own dynamically linked busybox (Debian's, headers kept: tests/fixtures/elf)
    in an image without a C library: right CPU, but the loader the kernel would start is not
    there ("no such file or directory" at start)."""
    fixtures = Path(__file__).parent.parent / "fixtures" / "elf"
    truth = json.loads((fixtures / "manifest.json").read_text())
    for arch in ("amd64", "arm64"):
        (busybox_project.path / f"tool-{arch}").write_bytes(
            gzip.decompress((fixtures / f"busybox-{arch}.gz").read_bytes())
        )
    busybox_project.makefile(
        "",
        Dockerfile="ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG TARGETARCH\nCOPY tool-${TARGETARCH} /usr/local/bin/tool\n"
        'ENTRYPOINT ["tool"]\n',
    )
    busybox_project.makepyfile(test_images="def test_tool(multiarch_image): pass\n")
    result = busybox_project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(errors=2)
    for platform in PLATFORMS.split(","):
        loader = truth[f"busybox-{Platform.parse(platform).arch}.gz"]["interp"]
        result.stdout.fnmatch_lines(
            [f"  {loader}: not in the image: /usr/local/bin/tool asks the kernel for this loader*"]
        )
