"""Any image, not only a ready HTTP server: one-shot runs of a CLI image, images without a port
or a shell, environment from every source, images and services talking on the session's
network, files and metadata; on linux/amd64 and linux/arm64, real builds and containers."""

from __future__ import annotations

import os
import subprocess

import pytest

from pytest_multiarch.names import OWNER_LABEL
from tests.integration.helpers import run

CLI_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENTRYPOINT ["echo"]
CMD ["hello from", "the image"]
"""

NO_SHELL_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS base
RUN mkdir -p /out/etc && echo "built on $(uname -m)" > /out/etc/greeting && chmod 640 /out/etc/greeting \\
    && ln -s greeting /out/etc/link
FROM scratch
COPY --from=base /bin/busybox /busybox
COPY --from=base /out/ /
USER 1000:1000
LABEL org.opencontainers.image.title=no-shell
ENTRYPOINT ["/busybox", "sleep", "600"]
"""


def networks_left() -> list[str]:
    """The plugin's networks whose pytest session has ended: its process is gone, or it is this
    process, whose in-process sessions are over when this is asked (another session's may be in use)."""
    listed = ["docker", "network", "ls", "--filter", f"label={OWNER_LABEL}"]
    listed += ["--format", "{{.ID}} {{.Label " + f'"{OWNER_LABEL}"' + "}}"]
    left = []
    for line in subprocess.run(listed, capture_output=True, text=True, check=True).stdout.splitlines():
        network, _, owner = line.partition(" ")
        pid = owner.rpartition(":")[2]
        if pid == str(os.getpid()) or not (pid.isdigit() and os.path.exists(f"/proc/{pid}")):
            left.append(network)
    return left


@pytest.mark.usefixtures("docker_engine")
def test_a_cli_image_is_tested_by_one_shot_runs(busybox_project):
    busybox_project.makefile("", Dockerfile=CLI_DOCKERFILE)
    busybox_project.makepyfile(
        test_cli="""
        import time
        import pytest
        from pytest_multiarch import RunTimeout

        def test_default_command(multiarch_run):
            result = multiarch_run()
            assert (result.exit_code, result.stdout, result.stderr) == (0, "hello from the image\\n", "")

        def test_arguments_replace_cmd(multiarch_run, multiarch_platform):
            assert multiarch_run("on", multiarch_platform.arch).stdout == f"on {multiarch_platform.arch}\\n"

        def test_a_failing_command_is_a_result(multiarch_run, multiarch_platform):
            result = multiarch_run("-c", "uname -m; echo broken >&2; exit 3", entrypoint=["sh"])
            expected = (3, multiarch_platform.machine + "\\n", "broken\\n")
            assert (result.exit_code, result.stdout, result.stderr) == expected

        def test_stdin_and_environment(multiarch_run):
            result = multiarch_run("-c", 'cat; echo " $WHO"', entrypoint=["sh"], stdin="piped", env={"WHO": "me"})
            assert result.stdout == "piped me\\n"

        def test_a_run_that_hangs_is_a_timeout_naming_platform_and_command(multiarch_run, multiarch_platform):
            started = time.monotonic()
            with pytest.raises(RunTimeout, match=f"`sleep 60` on {multiarch_platform} did not exit within 1 s"):
                multiarch_run("60", entrypoint=["sleep"], timeout=1)
            assert time.monotonic() - started < 30

        def test_no_session_container_was_started(request):
            assert "multiarch_container" not in request.fixturenames
        """
    )
    result = run(busybox_project, "-v")
    result.assert_outcomes(passed=11)
    assert "starting the linux/" not in result.stdout.str()  # one-shot runs only, never the session container
    assert networks_left() == []


@pytest.mark.usefixtures("docker_engine")
def test_an_image_without_a_shell_or_port_kept_up_for_files_and_metadata(busybox_project):
    (busybox_project.path / "Dockerfile.noshell").write_text(NO_SHELL_DOCKERFILE)
    busybox_project.makeconftest(
        """
        from pytest_multiarch import multiarch_fixtures

        tool_image, tool_container, _ = multiarch_fixtures("tool", dockerfile="Dockerfile.noshell")
        """
    )
    busybox_project.makepyfile(
        test_files="""
        import pytest
        from pytest_multiarch import ContainerError

        def test_files(tool_container, multiarch_platform):
            assert tool_container.read_file("/etc/greeting") == f"built on {multiarch_platform.machine}\\n".encode()
            info = tool_container.file_info("/etc/greeting")
            assert (info.exists, info.is_file, info.mode & 0o777, info.uid) == (True, True, 0o640, 0)
            assert tool_container.file_info("/etc/link").link_target == "greeting"
            assert tool_container.file_info("/etc").is_dir
            assert tool_container.file_info("/nowhere").exists is False
            with pytest.raises(ContainerError, match="/nowhere in the linux/.* container is missing"):
                tool_container.read_file("/nowhere")

        def test_metadata(tool_image, multiarch_platform):
            config = tool_image.config
            assert config.user == "1000:1000"  # a release gate's "runs as non-root on every platform"
            assert config.entrypoint == ("/busybox", "sleep", "600")
            assert config.labels["org.opencontainers.image.title"] == "no-shell"
            assert tool_image.platform == multiarch_platform
        """
    )
    result = run(busybox_project, "-v")
    result.assert_outcomes(passed=4)


@pytest.mark.usefixtures("docker_engine")
def test_environment_from_ini_cli_and_declaration_and_images_talking_by_name(busybox_project):
    ini = (busybox_project.path / "tox.ini").read_text()
    (busybox_project.path / "tox.ini").write_text(
        ini.rstrip() + "\nmultiarch_env =\n    MODE=from ini\n    API_TOKEN=t0ps3cr3t\n"
    )
    busybox_project.makeconftest(
        """
        from pytest_multiarch import multiarch_fixtures

        api_image, api_container, api_http = multiarch_fixtures("api", environment={"ROLE": "api"})
        client_image, client_container, _ = multiarch_fixtures("client", command=["sleep", "600"], ready_path=None)
        """
    )
    busybox_project.makepyfile(
        test_env="""
        def test_default_image_env(multiarch_container):
            assert multiarch_container.exec(["sh", "-c", "echo $MODE/$GREETING"]).strip() == "from ini/from cli"

        def test_declared_env(api_container):
            assert api_container.exec(["sh", "-c", "echo $ROLE$MODE"]).strip() == "api"

        def test_by_name(client_container, api_container, multiarch_container, multiarch_platform):
            for host in ("api", "app"):  # the declared name, and the default image as app
                page = client_container.exec(["wget", "-qO-", f"http://{host}:8080/"])
                assert page.strip() == f"CPU Architecture: {multiarch_platform.machine}"
        """
    )
    result = run(busybox_project, "-v", "--multiarch-env", "GREETING=from cli", "--junitxml=report.xml")
    result.assert_outcomes(passed=6)
    everything = result.stdout.str() + (busybox_project.path / "report.xml").read_text()
    assert "t0ps3cr3t" not in everything
    assert networks_left() == []


@pytest.mark.usefixtures("docker_engine")
def test_a_service_started_by_a_users_fixture_before_the_app_reaches_it_by_url(busybox_project):
    busybox_project.makeconftest(
        """
        import docker
        import pytest
        from pytest_multiarch import multiarch_fixtures

        web_image, web_container, _ = multiarch_fixtures(
            "web",
            command=["sleep", "600"],
            ready_path=None,
            depends_on=["service"],
            environment={"SERVICE_URL": lambda service: service["url"], "STATIC": "yes"},
        )

        @pytest.fixture(scope="session")
        def service(multiarch_network):
            client = docker.DockerClient(base_url=multiarch_network.docker_host)
            made = client.containers.run(
                "127.0.0.1:5000/multiarch/busybox:1-amd64",
                ["sh", "-c", "mkdir -p /www && echo db-ok > /www/index.html && exec httpd -f -p 8080 -h /www"],
                detach=True, platform="linux/amd64", network=multiarch_network.name,
                networking_config={multiarch_network.name: client.api.create_endpoint_config(aliases=["db"])},
                labels={"test": "users-service"},
            )
            yield {"url": "http://db:8080/", "id": made.id}
            made.remove(force=True)
        """
    )
    busybox_project.makepyfile(
        test_service="""
        def test_app_reaches_the_service(web_container, service):
            # The service's httpd may not listen yet: asked until it answers, at most 10 s.
            ask = "echo $STATIC; for i in $(seq 100); do wget -qO- $SERVICE_URL && break; sleep 0.1; done"
            assert web_container.exec(["sh", "-c", ask]).split() == ["yes", "db-ok"]
        """
    )
    subprocess.run(["docker", "pull", "-q", "127.0.0.1:5000/multiarch/busybox:1-amd64"], capture_output=True)
    result = run(busybox_project, "-v")
    result.assert_outcomes(passed=2)
    assert networks_left() == []


@pytest.mark.usefixtures("docker_engine")
def test_a_lone_container_is_on_no_network_until_a_test_asks_for_one_then_reachable_as_app(busybox_project):
    """A network costs about half a second per run; one container alone needs none. When a test
    then asks for multiarch_network, the running container joins it, as ``app``."""
    busybox_project.makepyfile(
        test_late="""
        import docker

        def networks_of(container):
            return set(docker.from_env().api.inspect_container(container.id)["NetworkSettings"]["Networks"])

        def test_alone(multiarch_container):
            assert networks_of(multiarch_container) == {"bridge"}

        def test_then_a_service_of_yours(multiarch_container, request, multiarch_platform):
            network = request.getfixturevalue("multiarch_network")
            assert networks_of(multiarch_container) == {"bridge", network.name}
            client = docker.DockerClient(base_url=network.docker_host)
            page = client.containers.run(
                "127.0.0.1:5000/multiarch/busybox:1-amd64", ["wget", "-qO-", "http://app:8080/"],
                platform="linux/amd64", network=network.name, remove=True,
            )
            assert page.decode().strip() == f"CPU Architecture: {multiarch_platform.machine}"
        """
    )
    subprocess.run(["docker", "pull", "-q", "127.0.0.1:5000/multiarch/busybox:1-amd64"], capture_output=True)
    result = run(busybox_project, "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    assert networks_left() == []


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("how", ["failure", "interrupt"])
def test_no_network_or_container_is_left_after_a_failing_or_interrupted_run(busybox_project, how):
    busybox_project.makepyfile(
        test_app=f"""
        def test_x(multiarch_container, multiarch_network):
            if {how!r} == "interrupt":
                raise KeyboardInterrupt
            assert False, "failing on purpose"
        """
    )
    result = busybox_project.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == (pytest.ExitCode.INTERRUPTED if how == "interrupt" else pytest.ExitCode.TESTS_FAILED)
    assert networks_left() == []
