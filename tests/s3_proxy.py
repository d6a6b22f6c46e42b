"""An HTTP proxy on loopback in front of the S3 server, recording every request it relays.

Clients reach it as their S3 endpoint (``endpoint_url``); each request is forwarded to
the real server unchanged and its method, path, query and headers recorded, so a test
can count what a job asked of S3 (PUTs per key, copies) on the wire.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # /<bucket>/<key>, unquoted
    query: str
    headers: dict[str, str]
    body: bytes = b""  # kept for POSTs only (e.g. the key list of a DeleteObjects)

    @property
    def is_copy(self) -> bool:
        return "x-amz-copy-source" in self.headers


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    log: list[Request]
    lock: threading.Lock

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.lock:
            kept = (body or b"") if self.command == "POST" else b""
            self.log.append(Request(self.command, unquote(url.path), url.query, headers, kept))
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(self.command, self.path, body=body, headers=dict(self.headers))
            reply = conn.getresponse()
            data = reply.read()
            self.send_response(reply.status, reply.reason)
            for key, value in reply.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            # a HEAD's length is the object's, not its (empty) body's
            length = reply.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    def log_message(self, *args: object) -> None:  # quiet
        pass


@contextmanager
def recording_proxy(upstream: str) -> Iterator[tuple[str, list[Request]]]:
    """Yield ``(endpoint URL, request log)`` of a proxy to ``upstream`` (``http://h:p``)."""
    target = urlsplit(upstream)
    log: list[Request] = []
    handler = type(
        "Relay",
        (_Relay,),
        {"upstream": (target.hostname, target.port), "log": log, "lock": threading.Lock()},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
