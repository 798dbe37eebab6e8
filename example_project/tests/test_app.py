"""The example app, tested on every platform in pytest.ini."""

import subprocess

import pytest

from pytest_multiarch import Platform


def test_root_reports_the_platforms_cpu(multiarch_http, multiarch_platform):
    response = multiarch_http.get("/")
    assert response.status_code == 200
    assert response.text.strip() == f"CPU Architecture: {multiarch_platform.machine}"


def test_info_endpoint(multiarch_http, multiarch_platform):
    info = multiarch_http.get("/info").json()
    assert info["machine"] == multiarch_platform.machine
    assert info["pointer_bits"] == (32 if multiarch_platform.arch in ("arm", "386") else 64)
    assert info["byteorder"] == "little"


def test_python_inside_sees_the_same_cpu(multiarch_container, multiarch_platform):
    out = multiarch_container.exec(["python3", "-c", "import platform; print(platform.machine())"])
    assert out.strip() == multiarch_platform.machine


def test_image_is_built_for_the_platform(multiarch_image, multiarch_platform):
    assert multiarch_image.platform == multiarch_platform
    # What the engine says the loaded image is, not only what the plugin asked for.
    inspect = ["docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}/{{.Variant}}", multiarch_image.id]
    loaded = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip().rstrip("/")
    assert Platform.parse(loaded) == multiarch_platform


@pytest.mark.multiarch(platforms=["linux/arm64"])
def test_arm64_only(multiarch_container):
    assert multiarch_container.exec(["uname", "-m"]).strip() == "aarch64"
