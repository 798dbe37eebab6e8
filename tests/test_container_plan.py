"""What a container is created with, decided without an engine (start.plan_container)."""

from __future__ import annotations

from pathlib import Path

from pytest_multiarch.build import BuiltImage
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.platforms import Platform
from pytest_multiarch.start import plan_container

ARM64 = Platform.parse("linux/arm64")


def image(*exposed: int) -> BuiltImage:
    return BuiltImage("t:1", "sha256:" + "0" * 64, ARM64, "k", False, 0.0, exposed_ports=exposed)


def spec(**fields: object) -> ImageSpec:
    return ImageSpec(name="", context=Path("."), dockerfile=Path("Dockerfile"), **fields)  # type: ignore[arg-type]


def test_the_lowest_exposed_port_is_the_apps_and_goes_to_the_loopback_of_a_local_engine():
    # BuiltImage.exposed_ports is lowest first (build.exposed_ports sorts them).
    plan = plan_container(image(8080, 9090), spec(), publish_ip="127.0.0.1", labels={"l": "v"}, environment=None)
    assert (plan.port, plan.published) == (8080, (8080,))
    assert plan.ports == {"8080/tcp": ("127.0.0.1", None)}
    assert plan.ready_path == "/" and plan.labels == {"l": "v"} and plan.options == {"environment": {}}


def test_a_remote_engine_publishes_on_every_address_and_more_ports_come_after_the_apps():
    plan = plan_container(
        image(), spec(port=8000, ports=(9000, 8000)), publish_ip="", labels={}, environment={"A": "1"}
    )
    assert plan.published == (8000, 9000)
    assert plan.ports == {"8000/tcp": None, "9000/tcp": None}
    assert plan.options["environment"] == {"A": "1"}


def test_a_command_entrypoint_and_log_readiness_are_planned_without_an_http_probe():
    plan = plan_container(
        image(8080),
        spec(command=("serve",), entrypoint=("/bin/app",), ready_log="listening"),
        publish_ip="127.0.0.1",
        labels={},
        environment=None,
    )
    assert plan.options["command"] == ["serve"] and plan.options["entrypoint"] == ["/bin/app"]
    assert plan.ready_path is None and plan.ready_log == "listening" and "'listening'" in plan.where


def test_no_port_and_no_probe_when_the_image_exposes_none():
    plan = plan_container(image(), spec(), publish_ip="127.0.0.1", labels={}, environment=None)
    assert plan.port is None and plan.published == () and plan.ports == {} and plan.ready_path is None
    plain = plan_container(image(8080), spec(ready_path=None), publish_ip="127.0.0.1", labels={}, environment=None)
    assert plain.ready_path is None and plain.published == (8080,)
