"""``multiarch_http``: a requests session pointed at one platform's container."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from pytest_multiarch.enginefaults import broken_connection_errors, is_connect_timeout, timeout_errors
from pytest_multiarch.errors import MultiarchError

if TYPE_CHECKING:
    from pytest_multiarch.run import MultiarchContainer


def join_url(base_url: str, path: str) -> str:
    """``path`` on the container's published port. Not ``urljoin``: it would read the
    ``items:`` of ``/items:search`` as a URL scheme. A full http(s) URL is left as it is."""
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def probe(url: str, timeout: float) -> requests.Response:
    """One readiness request to a container on 127.0.0.1: its own answer counts, so a redirect
    (to https, to the app's public host) is not followed, and HTTP_PROXY is not used (a proxy
    would answer for the app, or not reach loopback at all)."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=timeout, allow_redirects=False)


class RequestTimeout(MultiarchError, requests.Timeout):
    """A ``multiarch_http`` request got no answer within its timeout (still a requests Timeout)."""


class ContainerHTTP(requests.Session):
    """A ``requests.Session`` whose relative URLs resolve against the container, with a default
    timeout per request (``request_timeout``; a ``timeout=`` of the call wins).

    Proxy variables are ignored (``trust_env``): the container is on 127.0.0.1, which a CI
    machine's HTTP_PROXY without a matching NO_PROXY would otherwise send through the proxy."""

    def __init__(self, container: MultiarchContainer, request_timeout: float | None = None) -> None:
        super().__init__()
        self.trust_env = False
        self.container = container
        self.base_url = container.url("/")
        self.request_timeout = request_timeout if request_timeout is not None else container.command_timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        __tracebackhide__ = True  # a test's failure shows its own line, not this one
        if isinstance(url, bytes):
            url = url.decode()
        if isinstance(method, bytes):
            method = method.decode()
        kwargs.setdefault("timeout", self.request_timeout)
        try:
            return super().request(method, join_url(self.base_url, url), *args, **kwargs)
        except timeout_errors() as exc:
            if is_connect_timeout(exc) or kwargs["timeout"] is None:
                raise
            raise RequestTimeout(
                f"{method} {url} to the {self.container.platform} container got no answer within "
                f"{kwargs['timeout']} s. Give timeout=SECONDS to the call, or raise --multiarch-request-timeout."
            ) from None
        except broken_connection_errors():
            # The app's connection broke: the engine's fault when it no longer answers.
            engine = self.container.engine
            if engine is not None and not self.container.engine_answers():
                doing = f"{method} {url} went to the {self.container.platform} container"
                raise engine.gone(doing, "it does not answer a ping") from None
            raise
