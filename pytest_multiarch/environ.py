"""Reading ``os.environ`` from the plugin's own threads.

pytest sets and deletes ``PYTEST_CURRENT_TEST`` in ``os.environ`` around every phase of every
test, in its own thread. Copying or iterating ``os.environ`` meanwhile (``dict(os.environ)``;
requests does it on every request of a session that trusts the environment, looking for proxy
variables) lists the keys first and reads them after, and so raises ``KeyError`` for a variable
removed in between. Builds, container starts and their API calls run in the plugin's threads
while tests run: they copy the environment here, and their HTTP sessions read it once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import requests

_TRIES = 10
T = TypeVar("T")


def snapshot(environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``os.environ`` (or ``environment``), copied again when a variable went away
    while it was read."""
    source = os.environ if environment is None else environment
    for _ in range(_TRIES - 1):
        try:
            return dict(source)
        except KeyError:
            continue
    return dict(source)


def proxies_for(url: str) -> dict[str, str]:
    """The proxies requests would take from the environment for ``url`` (NO_PROXY applied)."""
    import requests.utils

    return retrying(lambda: dict(requests.utils.get_environ_proxies(url, no_proxy=None)))


def read_environment_once(session: requests.Session, url: str) -> None:
    """Give ``session`` what requests would read from the environment for each request to
    ``url`` (its proxies, a CA bundle), read now, and keep it from reading the environment again."""
    session.proxies.update(proxies_for(url))
    if session.verify is True:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    session.trust_env = False


def retrying(call: Callable[[], T]) -> T:
    """``call()``, called again when it failed on a variable that went away while it read
    ``os.environ`` (python-on-whales copies it before each CLI call, before running anything;
    docker-py's client asks the engine's API version while making itself, and wraps the error);
    any other error as it is."""
    for _ in range(_TRIES - 1):
        try:
            return call()
        except Exception as exc:
            if not vanished_variable(exc):
                raise
    return call()


def vanished_variable(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, is ``os.environ``'s own KeyError for a
    variable that was gone."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, KeyError):
            traceback = error.__traceback__
            while traceback is not None and traceback.tb_next is not None:
                traceback = traceback.tb_next
            if traceback is not None and traceback.tb_frame.f_code is type(os.environ).__getitem__.__code__:
                return True
        error = error.__cause__ or error.__context__
    return False
