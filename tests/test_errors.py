"""What the plugin quotes from docker's errors (pure logic)."""

from python_on_whales.exceptions import DockerException

from pytest_multiarch.errors import docker_said


def test_docker_said_quotes_docker_not_the_command_line():
    cmd = ["docker", "buildx", "build", "--build-arg", "NPM_TOKEN=s3cr3t", "."]
    failed = DockerException(cmd, 1, stderr=b"\nERROR: failed to solve: no space left on device.\nmore\n")
    assert docker_said(failed) == "failed to solve: no space left on device"
    silent = DockerException(cmd, 1)
    assert docker_said(silent) == "no output"
    assert "s3cr3t" not in docker_said(silent)


def test_docker_said_uses_other_errors_text():
    assert docker_said(ConnectionError("Error response from daemon: conflict")) == "conflict"
    assert docker_said(OSError()) == "OSError"
