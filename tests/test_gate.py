"""Release gate: --multiarch-image tests a published image from the local registry."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BUSYBOX, BUSYBOX_DOCKERFILE, PLATFORMS, REGISTRY
from pytest_multiarch import Platform
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.gate import GateError, parse_index, repository_of
from pytest_multiarch.names import image_repository
from tests.integration.helpers import docker_cli_wrapper, mode, shim_calls

GATE_TESTS = """
def test_root(multiarch_http, multiarch_platform):
    assert multiarch_http.get("/").text.strip() == f"CPU Architecture: {multiarch_platform.machine}"

def test_built_on(multiarch_container, multiarch_platform, multiarch_index):
    assert multiarch_container.exec("cat /www/built-on").strip() == multiarch_platform.machine
    assert multiarch_container.image.key == multiarch_index.manifests[str(multiarch_platform)]
"""

INDEX_TESTS = """
def test_index_has_exactly_the_release_platforms(multiarch_index):
    assert sorted(multiarch_index.platforms) == ["linux/amd64", "linux/arm64"]
    assert multiarch_index.digest.startswith("sha256:")
    assert multiarch_index.media_type.endswith("manifest.list.v2+json")
"""


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def published(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Build the busybox app per arch, push it, and publish a complete and an incomplete index."""
    context = tmp_path_factory.mktemp("gate-app")
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    # A repository per xdist worker: workers pushing the same index into one repository made the
    # registry answer 500 to a read of it while another rewrote it.
    repo = f"{REGISTRY}/pytest-multiarch-test/gate-app-{os.getpid()}"
    refs = {}
    for platform in PLATFORMS.split(","):
        tag = f"{repo}:{Platform.parse(platform).slug}-{os.getpid()}"
        _run(
            "docker",
            "buildx",
            "build",
            "--platform",
            platform,
            "--load",
            "-t",
            tag,
            "--build-arg",
            f"BASE_IMAGE={BUSYBOX}",
            str(context),
        )
        _run("docker", "push", "-q", tag)
        refs[platform] = tag
    refs["complete"] = f"{repo}:complete-{os.getpid()}"
    refs["amd64-only"] = f"{repo}:amd64-only-{os.getpid()}"
    _run("docker", "buildx", "imagetools", "create", "-t", refs["complete"], refs["linux/amd64"], refs["linux/arm64"])
    _run("docker", "buildx", "imagetools", "create", "-t", refs["amd64-only"], refs["linux/amd64"])
    manifest = json.loads(
        _run("docker", "buildx", "imagetools", "inspect", refs["complete"], "--format", "{{json .Manifest}}")
    )
    refs["by-digest"] = f"{repo}@{manifest['digest']}"
    refs["attested"] = _publish_with_attestation(repo, manifest, context)
    return refs


def _publish_with_attestation(repo: str, index: dict, context: Path) -> str:
    """The complete index plus an entry shaped like buildx's provenance attestation (platform
    unknown/unknown). The docker driver cannot attest, so a distinct manifest stands in for it."""
    (context / "Dockerfile.att").write_text(f"FROM {BUSYBOX}\nLABEL role=attestation-stand-in\n")
    stand_in = f"{repo}:attestation-{os.getpid()}"
    _run(
        "docker",
        "buildx",
        "build",
        "--platform",
        "linux/amd64",
        "--load",
        "-t",
        stand_in,
        "-f",
        str(context / "Dockerfile.att"),
        str(context),
    )
    _run("docker", "push", "-q", stand_in)
    single = json.loads(_run("docker", "buildx", "imagetools", "inspect", stand_in, "--format", "{{json .Manifest}}"))
    attestation = {
        "mediaType": single["mediaType"],
        "digest": single["digest"],
        "size": single["size"],
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": index["manifests"][0]["digest"],
        },
    }
    files = []
    for number, descriptor in enumerate([*index["manifests"], attestation]):
        path = context / f"descriptor-{number}.json"
        path.write_text(json.dumps(descriptor))
        files += ["-f", str(path)]
    ref = f"{repo}:attested-{os.getpid()}"
    _run("docker", "buildx", "imagetools", "create", "-t", ref, *files)
    return ref


@pytest.fixture
def gate_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(f"[pytest]\nmultiarch_platforms = {PLATFORMS}\n")
    return pytester


@pytest.mark.parametrize("which", ["complete", "by-digest", "attested"])
def test_complete_index_passes_on_every_platform(gate_project, published, which):
    # A Dockerfile whose build fails: had the gate built instead of pulling, its tests would error.
    gate_project.makefile("", Dockerfile=f"FROM {BUSYBOX}\nRUN echo the gate built this image; exit 9\n")
    gate_project.makepyfile(test_release=GATE_TESTS, test_index=INDEX_TESTS)
    result = gate_project.runpytest_inprocess("-v", f"--multiarch-image={published[which]}")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines_random(
        [
            "*test_root?linux/arm64? PASSED*",
            "*test_built_on?linux/amd64? PASSED*",
            "multiarch: linux/arm64: testing manifest sha256:* of *gate-app*",
            f"linux/arm64*{mode('linux/arm64')}*sha256:*",
        ]
    )
    spec = ImageSpec(name="", context=gate_project.path, dockerfile=gate_project.path / "Dockerfile")
    built = ["docker", "image", "ls", "-q", image_repository(spec)]
    assert _run(*built).split() == []  # nothing was built
    assert "the gate built this image" not in result.stdout.str()


def test_images_declared_in_a_conftest_are_still_built_by_a_release_gate(gate_project, published):
    """README: "Only the default image is replaced (declared images are still built)"."""
    (gate_project.path / "api").mkdir()
    (gate_project.path / "api" / "Dockerfile").write_text(
        BUSYBOX_DOCKERFILE.replace("uname -m > /www/built-on", "echo api > /www/name")
    )
    gate_project.makeconftest(
        f"""
        from pytest_multiarch import multiarch_fixtures

        base = {{"BASE_IMAGE": "{BUSYBOX}"}}
        api_image, api_container, api_http = multiarch_fixtures("api", context="api", build_args=base)
        """
    )
    gate_project.makepyfile(
        test_release="""
        def test_both(multiarch_container, api_container, api_image, multiarch_platform, multiarch_index):
            assert multiarch_container.image.key == multiarch_index.manifests[str(multiarch_platform)]  # pulled
            assert multiarch_container.exec("cat /www/built-on").strip() == multiarch_platform.machine
            assert not api_image.key.startswith("sha256:")  # a build key: built, not a manifest pulled
            assert api_image.tag.startswith("pytest-multiarch/api-")
            assert api_container.exec("cat /www/name").strip() == "api"
            assert api_container.exec(["uname", "-m"]).strip() == multiarch_platform.machine
        """
    )
    result = gate_project.runpytest_inprocess("-v", f"--multiarch-image={published['complete']}")
    result.assert_outcomes(passed=2)
    arm = mode("linux/arm64")
    result.stdout.fnmatch_lines_random([f"*pulling linux/arm64 ({arm}*", f"*building linux/arm64 (api) ({arm}*"])


def test_incomplete_index_fails_the_missing_platform_and_passes_the_other(gate_project, published):
    gate_project.makepyfile(test_release=GATE_TESTS)
    result = gate_project.runpytest_inprocess("-v", f"--multiarch-image={published['amd64-only']}")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*test_root?linux/amd64? PASSED*",
            "*GateError: *amd64-only* has no linux/arm64 image: its index (sha256:*) holds linux/amd64.*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_single_manifest_tests_its_platform_and_fails_the_others(gate_project, published):
    gate_project.makepyfile(test_release=GATE_TESTS.split("def test_built_on")[0])  # no multiarch_index
    result = gate_project.runpytest_inprocess("-v", f"--multiarch-image={published['linux/arm64']}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "*test_root?linux/arm64? PASSED*",
            "*has no linux/amd64 image: its single-platform manifest*holds linux/arm64*",
        ]
    )


def test_a_platform_the_engine_cannot_run_fails_the_gate_instead_of_skipping(gate_project, published, monkeypatch):
    """A release gate must never pass by skipping a platform: arm64 without an emulator errors."""
    monkeypatch.setenv("PATH", docker_cli_wrapper(gate_project.path, hide_platform="linux/arm64"))
    monkeypatch.delenv("CI", raising=False)
    gate_project.makepyfile(test_release=GATE_TESTS.split("def test_built_on")[0])
    result = gate_project.runpytest_subprocess(f"--multiarch-image={published['complete']}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*[[]linux/arm64[]] PlatformUnavailable: linux/arm64 cannot run on this engine*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert any(call.startswith("buildx inspect") for call in shim_calls(gate_project.path))  # it met the shim


def test_nonexistent_tag_is_a_clear_error_naming_it(gate_project, docker_engine):
    gate_project.makepyfile(test_release=GATE_TESTS)
    ref = f"{REGISTRY}/pytest-multiarch-test/gate-app:does-not-exist"
    result = gate_project.runpytest_inprocess(f"--multiarch-image={ref}")
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines([f"*GateError: cannot read {ref} from its registry: *not found*"])
    assert "Traceback" not in result.stdout.str()


def test_unreachable_registry_is_a_clear_error(gate_project, docker_engine):
    gate_project.makepyfile(test_release="def test_x(multiarch_image): pass")
    result = gate_project.runpytest_inprocess("--multiarch-image=127.0.0.1:9/app:1")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*cannot read 127.0.0.1:9/app:1 from its registry: *connection refused*docker login*"])


# -- pure logic ---------------------------------------------------------------------------------

ATTESTED_INDEX = {
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "digest": "sha256:aaa",
    "manifests": [
        {"digest": "sha256:amd", "platform": {"architecture": "amd64", "os": "linux"}},
        {"digest": "sha256:arm", "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {
            "digest": "sha256:att",
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
        },
    ],
}


def test_attestation_entry_is_really_in_the_attested_index(published):
    raw = json.loads(
        _run("docker", "buildx", "imagetools", "inspect", published["attested"], "--format", "{{json .Manifest}}")
    )
    assert {"architecture": "unknown", "os": "unknown"} in [m["platform"] for m in raw["manifests"]]


def test_attestation_entries_are_ignored():
    index = parse_index("r", ATTESTED_INDEX)
    assert index.manifests == {"linux/amd64": "sha256:amd", "linux/arm64": "sha256:arm"}
    assert index.digest_for(Platform.parse("arm64")) == "sha256:arm"
    with pytest.raises(GateError, match=r"r has no linux/s390x image: its index .* holds linux/amd64, linux/arm64"):
        index.digest_for(Platform.parse("s390x"))


def test_single_manifest_takes_its_platform_from_the_config():
    index = parse_index("r", {"mediaType": "m", "digest": "sha256:one"}, {"os": "linux", "architecture": "arm64"})
    assert (index.is_index, index.manifests) == (False, {"linux/arm64": "sha256:one"})


@pytest.mark.parametrize(
    ("ref", "repo"),
    [
        ("127.0.0.1:5000/app:1.2", "127.0.0.1:5000/app"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app"),
        ("ghcr.io/o/app@sha256:abc", "ghcr.io/o/app"),
        ("ghcr.io/o/app:1@sha256:abc", "ghcr.io/o/app"),
        ("busybox", "busybox"),
    ],
)
def test_repository_of(ref, repo):
    assert repository_of(ref) == repo


def test_the_gate_pulls_and_runs_each_platform_on_its_own_engine(published, busybox_project, remote_engine):
    """arm64 routed to the second engine: its manifest is pulled by digest into that engine and
    its container runs there; amd64 stays on the local one."""
    busybox_project.makepyfile(
        test_app=GATE_TESTS
        + """
import subprocess

def test_engine(multiarch_container, multiarch_platform):
    remote = multiarch_platform.arch == "arm64"
    host = "tcp://127.0.0.2:2375" if remote else "unix:///var/run/docker.sock"
    found = subprocess.run(["docker", "-H", host, "inspect", multiarch_container.id], capture_output=True)
    assert found.returncode == 0
    assert multiarch_container.base_url.startswith("http://127.0.0.2:" if remote else "http://127.0.0.1:")
"""
    )
    result = busybox_project.runpytest_subprocess(
        "--multiarch-image", published["complete"], "--multiarch-engine", "linux/arm64=tcp://127.0.0.2:2375"
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines([f"*pulling linux/arm64 ({mode('linux/arm64')} on tcp://127.0.0.2:2375)*"])


def test_the_gate_reads_the_published_images_config(published, busybox_project):
    """A release gate's metadata checks ("runs as non-root everywhere") see the pulled image's
    own config, per platform."""
    busybox_project.makepyfile(
        test_app="""
        def test_config(multiarch_image):
            config = multiarch_image.config
            assert config.user == ""  # the gate app runs as root: a non-root check would catch it
            assert config.exposed_ports == ("8080/tcp",)
            assert config.cmd[0] == "sh"
        """
    )
    result = busybox_project.runpytest_subprocess("--multiarch-image", published["complete"])
    result.assert_outcomes(passed=2)
