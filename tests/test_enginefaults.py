"""enginefaults.py, the one module that knows the libraries' exception types: what each kind of
error means (pure logic, no engine)."""

from __future__ import annotations

import docker.errors
import pytest
import requests
from python_on_whales.exceptions import DockerException as CLIError

from pytest_multiarch import enginefaults


def _raises(exc: BaseException) -> object:
    raise exc


def test_unless_missing_is_none_for_the_engines_404_only():
    assert enginefaults.unless_missing(lambda: "image") == "image"
    assert enginefaults.unless_missing(lambda: _raises(docker.errors.ImageNotFound("no such image"))) is None
    assert enginefaults.unless_missing(lambda: _raises(docker.errors.NotFound("no such path"))) is None
    with pytest.raises(docker.errors.APIError):
        enginefaults.unless_missing(lambda: _raises(docker.errors.APIError("conflict")))
    with pytest.raises(requests.ConnectionError):
        enginefaults.unless_missing(lambda: _raises(requests.ConnectionError("refused")))


def test_a_removal_that_finds_the_container_gone_or_going_is_told_apart():
    assert enginefaults.already_removed(docker.errors.NotFound("No such container: abc"))
    assert enginefaults.already_removed(docker.errors.APIError("removal of container abc is already in progress"))
    assert not enginefaults.already_removed(docker.errors.APIError("driver failed"))
    assert not enginefaults.already_removed(ValueError("No such container"))  # not docker-py's


def test_housekeeping_ignores_the_engines_errors_but_not_a_broken_connection():
    with enginefaults.ignoring_docker_errors():
        raise docker.errors.APIError("in use")
    with pytest.raises(requests.ConnectionError), enginefaults.ignoring_docker_errors():
        raise requests.ConnectionError("gone")


def test_each_librarys_errors_are_caught_by_their_tuple_with_the_extra_types_given():
    assert issubclass(docker.errors.ImageNotFound, enginefaults.docker_errors())
    assert issubclass(KeyError, enginefaults.docker_errors(KeyError))
    assert issubclass(CLIError, enginefaults.cli_errors(OSError))
    assert issubclass(FileNotFoundError, enginefaults.cli_errors(OSError))
    assert issubclass(requests.exceptions.ChunkedEncodingError, enginefaults.broken_connection_errors())
    assert not issubclass(requests.exceptions.ChunkedEncodingError, enginefaults.connection_errors())
    assert issubclass(requests.exceptions.ReadTimeout, enginefaults.timeout_errors())
    assert issubclass(ValueError, enginefaults.request_errors(ValueError))
    assert enginefaults.is_connect_timeout(requests.exceptions.ConnectTimeout())
    assert not enginefaults.is_connect_timeout(requests.exceptions.ReadTimeout())


def test_only_the_cli_wrappers_errors_count_as_from_the_cli():
    assert enginefaults.from_cli(CLIError(["docker", "info"], 1, b"", b"boom"))
    assert not enginefaults.from_cli(docker.errors.APIError("x"))
