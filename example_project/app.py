"""A tiny web service that reports the CPU architecture it runs on (standard library only)."""

from __future__ import annotations

import json
import os
import platform
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, "text/plain", f"CPU Architecture: {os.uname().machine}\n")
        elif self.path == "/info":
            info = {
                "machine": os.uname().machine,
                "python": platform.python_version(),
                "pointer_bits": 64 if sys.maxsize > 2**32 else 32,
                "byteorder": sys.byteorder,
            }
            self._send(200, "application/json", json.dumps(info))
        else:
            self._send(404, "text/plain", "not found\n")

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"serving on :{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
