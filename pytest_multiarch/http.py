"""``multiarch_http``: a requests session pointed at one platform's container."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests

if TYPE_CHECKING:
    from pytest_multiarch.run import MultiarchContainer


class ContainerHTTP(requests.Session):
    """A ``requests.Session`` whose relative URLs resolve against the container."""

    def __init__(self, container: MultiarchContainer) -> None:
        super().__init__()
        self.container = container
        self.base_url = container.url("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, bytes):
            url = url.decode()
        return super().request(method, urljoin(self.base_url, url.lstrip("/")), *args, **kwargs)
