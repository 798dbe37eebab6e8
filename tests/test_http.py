"""HTTP to containers on 127.0.0.1: the readiness probe and multiarch_http, against a real local
server, with a proxy configured the way CI machines often have it (no NO_PROXY for loopback)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pytest_multiarch.http import ContainerHTTP, probe


class _Redirecting(BaseHTTPRequestHandler):
    """An app that sends / to its public https address, as many do behind a load balancer."""

    def do_GET(self) -> None:
        if self.path == "/":
            self.send_response(302)
            self.send_header("Location", "https://app.example.invalid/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_the_probe_takes_a_redirect_as_the_apps_answer_and_ignores_the_proxy(app_url):
    answer = probe(app_url, timeout=5)
    assert answer.status_code == 302  # ready (< 500): not followed to the unreachable https host


class _Container:
    """What ContainerHTTP needs of a MultiarchContainer: its URL and its default request timeout."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.command_timeout = 5.0

    def url(self, path: str = "/") -> str:
        return self.base_url + path.lstrip("/")


def test_multiarch_http_reaches_the_container_despite_the_proxy(app_url):
    with ContainerHTTP(_Container(app_url)) as http:  # type: ignore[arg-type]
        assert http.get("/health").text == "ok"
