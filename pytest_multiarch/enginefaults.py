"""What a failed call to an engine means: the one module that knows the exception types of
docker-py, requests (and urllib3 under it) and python-on-whales.

Every other module asks here instead of naming those types (tests/test_layout.py checks it):
whether an error means the engine went away (``lost_connection``, ``timed_out``), answered with
an error (``refusal``), or said that something does not exist (``unless_missing``); and, to catch
them, the exception types of each library as a tuple (``docker_errors``, ``cli_errors``,
``request_errors``, ``connection_errors``, ``broken_connection_errors``, ``timeout_errors``). engine.py turns the first
kinds into EngineGone and EngineRefused.

The libraries (and http.client) are imported when an error is classified, never when this
module is: a project that does not use the plugin loads none of them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TypeVar

# Each API call's timeout, docker-py's default kept: a call to a local engine takes milliseconds,
# but pulling or exporting a large image through one call may take long.
API_TIMEOUT_SECONDS = 60

T = TypeVar("T")
Errors = tuple[type[BaseException], ...]


# -- the types, for ``except`` clauses ------------------------------------------------------------


@functools.cache
def docker_errors(*also: type[BaseException]) -> Errors:
    """What docker-py raises of its own: the engine's error answers (an APIError) and its own
    failures; and the types ``also`` given. A broken connection is not among them (requests
    raises that)."""
    from docker.errors import DockerException

    return (DockerException, *also)


@functools.cache
def cli_errors(*also: type[BaseException]) -> Errors:
    """What python-on-whales raises when a docker CLI command fails (exits non-zero); and the
    types ``also`` given."""
    from python_on_whales.exceptions import DockerException

    return (DockerException, *also)


@functools.cache
def request_errors(*also: type[BaseException]) -> Errors:
    """Whatever requests raises for a request that got no usable answer; and the types ``also``
    given."""
    import requests

    return (requests.RequestException, *also)


@functools.cache
def connection_errors() -> Errors:
    """requests' errors for a connection that could not be made (nothing listens, say)."""
    import requests

    return (requests.ConnectionError,)


@functools.cache
def broken_connection_errors() -> Errors:
    """requests' errors for a connection that could not be made or broke in an answer."""
    import requests

    return (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@functools.cache
def timeout_errors() -> Errors:
    """requests' errors for a request that got no answer in time (connecting or reading)."""
    import requests

    return (requests.Timeout,)


def is_connect_timeout(exc: BaseException) -> bool:
    """Whether a requests timeout happened while connecting, before anything was sent."""
    import requests

    return isinstance(exc, requests.exceptions.ConnectTimeout)


def from_cli(exc: BaseException) -> bool:
    """Whether python-on-whales raised ``exc``: its text holds the whole command line (build
    args included), so it is never shown as it is."""
    return type(exc).__module__.startswith("python_on_whales")


# -- what an error means -------------------------------------------------------------------------


def lost_connection(exc: BaseException) -> str | None:
    """Why ``exc`` means the engine went away, in a few words; None when it does not. Libraries
    wrap each other (docker-py, requests, urllib3, http.client, the socket), so the whole chain
    counts: causes, contexts, and errors carried as arguments or as a ``reason``."""
    import http.client

    import requests
    import urllib3.exceptions

    if timed_out(exc):
        return f"no answer within {API_TIMEOUT_SECONDS} s"
    chain = list(_chain(exc))
    broke = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)
    if not any(isinstance(found, (*broke, http.client.IncompleteRead, ConnectionError)) for found in chain):
        return None
    # The innermost error says it best (the chain is outermost first); the last match of a kind
    # below is its most specific name.
    reasons = [why for found in chain for kind, why in _lost_reasons() if isinstance(found, kind)]
    return reasons[-1] if reasons else "the connection broke"


def timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is, or carries, a timeout (requests wraps a read timeout after retries
    in a ConnectionError): no answer in time, not a connection that broke."""
    import requests
    import urllib3.exceptions

    kinds = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    return any(isinstance(found, kinds) for found in _chain(exc))


@functools.cache
def _lost_reasons() -> list[tuple[type[BaseException], str]]:
    """Each kind of broken connection, in a few words: the more specific kinds last."""
    import http.client

    return [
        (ConnectionError, "the connection broke"),
        (ConnectionRefusedError, "connection refused"),
        (ConnectionResetError, "connection reset"),
        (ConnectionAbortedError, "connection aborted"),
        (BrokenPipeError, "connection closed"),
        (http.client.RemoteDisconnected, "connection closed without an answer"),
        (http.client.IncompleteRead, "the connection broke in the middle of an answer"),
        (FileNotFoundError, "its socket is gone"),
    ]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it carries (cause, context, arguments, ``reason``), outermost first."""
    seen: set[int] = set()
    queue = [exc]
    while queue:
        found = queue.pop(0)
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        carried = [found.__cause__, found.__context__, getattr(found, "reason", None), *found.args]
        queue.extend(item for item in carried if isinstance(item, BaseException))


def refusal(exc: BaseException) -> str | None:
    """What the engine answered, for an error docker-py raised from its answer; None otherwise."""
    from docker.errors import APIError, DockerException

    if isinstance(exc, APIError):
        return str(exc.explanation or exc).strip()
    if isinstance(exc, DockerException):
        return str(exc).strip() or type(exc).__name__
    return None


def unless_missing(call: Callable[[], T]) -> T | None:
    """``call()``'s result; None when the engine answers that what it asks for does not exist
    (404: no such image, container or path). Every other error is raised as it is."""
    from docker.errors import NotFound

    try:
        return call()
    except NotFound:
        return None


def already_removed(exc: BaseException) -> bool:
    """Whether a docker-py error of a forced removal says the container is gone already, or
    being removed (by another thread of this session: a start giving up)."""
    return isinstance(exc, docker_errors()) and (
        "No such container" in str(exc) or "is already in progress" in str(exc)
    )


@contextlib.contextmanager
def ignoring_docker_errors() -> Iterator[None]:
    """Best-effort housekeeping: an error answer of the engine (or docker-py's own failure) is
    ignored; a broken connection is not."""
    try:
        yield
    except docker_errors():
        pass
