"""--multiarch-runtime podman as pure logic, no podman needed: choosing the runtime, the socket,
podman build's command line (no build arg or secret value on it), its failure message, the
reference split of the gate's digest lookup, and the usage errors of options podman cannot
honour."""

from __future__ import annotations

import itertools
import socket
import threading
from pathlib import Path

import pytest

from pytest_multiarch import Platform, UsageError
from pytest_multiarch.config import ImageSpec
from pytest_multiarch.errors import EngineError
from pytest_multiarch.podman import answers, given_socket, locate, parse_runtime, podman_command, standard_socket
from pytest_multiarch.podmanbuild import cache_problem, describe_podman_failure, podman_build_command
from pytest_multiarch.podmangate import split_reference
from pytest_multiarch.secrets import BuildSecret

ARM64 = Platform.parse("linux/arm64")


@pytest.mark.parametrize(
    ("option", "env", "chosen"),
    [
        (None, {}, "docker"),
        ("", {"CONTAINER_RUNTIME": "podman"}, "podman"),  # as pytest_container reads it
        (None, {"CONTAINER_RUNTIME": "docker"}, "docker"),
        ("docker", {"CONTAINER_RUNTIME": "podman"}, "docker"),  # the option wins
        (" Podman ", {}, "podman"),
    ],
)
def test_the_runtime_is_the_option_else_container_runtime_else_docker(option, env, chosen):
    assert parse_runtime(option, env) == chosen


def test_an_unknown_runtime_is_one_line_naming_it():
    with pytest.raises(UsageError) as raised:
        parse_runtime("containerd", {})
    assert str(raised.value) == "--multiarch-runtime (ini multiarch_runtime) 'containerd': use docker or podman."


def test_container_host_is_used_and_an_ssh_one_is_refused_with_what_to_do():
    assert given_socket({"CONTAINER_HOST": "unix:///run/user/1000/podman/podman.sock"}).startswith("unix://")
    assert given_socket({}) is None
    with pytest.raises(EngineError, match=r"unix:// or tcp:// URL only.*ssh -L"):
        given_socket({"CONTAINER_HOST": "ssh://core@host/run/podman/podman.sock"})


def test_the_standard_socket_is_podmans_own(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert standard_socket({"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path("/run/user/1000/podman/podman.sock")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert standard_socket({"XDG_RUNTIME_DIR": "/run/user/0"}) == Path("/run/podman/podman.sock")


def test_a_socket_that_answers_the_ping_is_used_else_a_service_of_the_sessions_own(tmp_path):
    path = tmp_path / "api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert answers(path)
    finally:
        thread.join(5)
        server.close()
    assert not answers(path)  # nobody listens any more
    url, service = locate({"XDG_RUNTIME_DIR": str(tmp_path / "none")})
    assert service is not None and url == service.url and "pytest-multiarch-podman-" in url
    assert not service.directory.exists()  # made when it starts, not before


def test_a_tcp_container_host_is_reached_by_the_remote_cli():
    assert podman_command("tcp://host:8888") == ["podman", "--remote", "--url", "tcp://host:8888"]
    assert podman_command("unix:///run/podman/podman.sock") == ["podman"]


def spec(tmp_path: Path, **fields: object) -> ImageSpec:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return ImageSpec(name="", context=tmp_path, dockerfile=tmp_path / "Dockerfile", **fields)  # type: ignore[arg-type]


def pairs(command: list[str], flag: str) -> list[str]:
    """The values that follow ``flag`` on ``command``."""
    return [value for option, value in itertools.pairwise(command) if option == flag]


def test_podman_build_gets_build_args_by_name_and_secrets_by_source(tmp_path):
    secret = BuildSecret(id="npm", env="NPM_TOKEN")
    image = spec(
        tmp_path,
        build_args={"GREETING": "hello world", "API_TOKEN": "s3cr3t-value", "XDG_CONFIG_HOME": "/cfg"},
        target="prod",
        secrets=(secret,),
        ssh=("default",),
    )
    labels = {"io.github.pytest-multiarch.key": "k"}
    command, env = podman_build_command(["podman"], image, ARM64, "t:arm64", labels, ("127.0.0.1:5000/c", None))
    assert command[:4] == ["podman", "build", "--platform", "linux/arm64"]
    assert "s3cr3t-value" not in " ".join(command) and "hello world" not in " ".join(command)
    assert env == {"GREETING": "hello world", "API_TOKEN": "s3cr3t-value"}
    assert "GREETING" in pairs(command, "--build-arg") and "API_TOKEN" in pairs(command, "--build-arg")
    assert "XDG_CONFIG_HOME=/cfg" in pairs(command, "--build-arg")  # podman's own variables stay podman's
    assert pairs(command, "--secret") == ["id=npm,env=NPM_TOKEN"]
    assert pairs(command, "--target") == ["prod"]
    assert pairs(command, "--cache-from") == ["127.0.0.1:5000/c"]
    assert "--cache-to" not in command and command[-1] == str(tmp_path)


def test_cache_in_buildx_form_is_named_as_not_podmans():
    assert cache_problem("127.0.0.1:5000/app-cache") is None
    assert "registry repository" in (cache_problem("type=local,src=.cache") or "")


def test_a_failed_podman_build_names_its_step_first(tmp_path):
    log = [
        "STEP 1/3: FROM 127.0.0.1:5000/multiarch/busybox:1",
        "STEP 3/3: RUN make && exit 3",
        "make: not found",
        'Error: building at STEP "RUN make && exit 3": while running runtime: exit status 3',
    ]
    message = describe_podman_failure(spec(tmp_path), ARM64, log)
    first, step = message.splitlines()[:2]
    assert first.endswith("for linux/arm64 failed at step: RUN make && exit 3")
    assert step == "  while running runtime: exit status 3"
    assert "  | make: not found" in message


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("127.0.0.1:5000/multiarch/busybox:1", ("127.0.0.1:5000", "multiarch/busybox", "1")),
        ("ghcr.io/acme/app@sha256:" + "a" * 64, ("ghcr.io", "acme/app", "latest")),
        ("alpine", ("registry-1.docker.io", "library/alpine", "latest")),
        ("acme/app:2", ("registry-1.docker.io", "acme/app", "2")),
        ("localhost/app:3", ("localhost", "app", "3")),
    ],
)
def test_split_reference(ref, parts):
    assert split_reference(ref) == parts


def test_options_podman_cannot_honour_are_usage_errors(pytester):
    pytester.makeini("[pytest]\nmultiarch_platforms = linux/amd64\nmultiarch_runtime = podman\n")
    pytester.makepyfile(test_a="def test_x(multiarch_platform):\n    pass\n")
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--multiarch-engine=linux/amd64=tcp://h:2375", "--multiarch-cache-to=type=gha"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "--multiarch-cache-to (ini multiarch_cache_to) 'type=gha': podman takes a registry repository" in text
    assert "--multiarch-runtime podman builds and runs every platform on this machine's podman" in text
    assert "Traceback" not in text
