"""An HTTP proxy on loopback in front of the S3 server: it records every request it relays
and, when asked, misbehaves as a throttled S3 and a flaky network do.

Clients reach it as their S3 endpoint (``endpoint_url``); each request is forwarded to
the real server unchanged and its method, path, query and headers recorded, so a test
can count what a job asked of S3 (PUTs per key, copies) on the wire. With
:class:`Faults` some requests are answered ``503 SlowDown`` (or ``503 ServiceUnavailable``)
without reaching the server, some connections are dropped without an answer (after the
request was read: the client cannot tell whether a PUT landed) and some answers are
delayed. Faults are drawn from a seeded generator and bounded: the same request never
fails more than ``max_in_a_row`` times in a row, so a client that retries gets through.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


@dataclass
class Faults:
    """How often the proxy misbehaves; what it did is counted in ``done``."""

    error_rate: float = 0.0  # answered 503 without reaching the server
    drop_rate: float = 0.0  # connection closed without an answer
    slow_rate: float = 0.0  # answered after ``slow_s``
    slow_s: float = 0.2
    max_in_a_row: int = 3  # faults of one request (method, path, query) in a row, at most
    seed: int = 0
    done: dict[str, int] = field(default_factory=lambda: {"503": 0, "drop": 0, "slow": 0})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._streak: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def draw(self, request: tuple[str, str]) -> str | None:
        """The fault for this request, if any: ``"503"``, ``"drop"``, ``"slow"`` or None."""
        with self._lock:
            x = self._rng.random()
            fault = None
            if x < self.error_rate:
                fault = "503"
            elif x < self.error_rate + self.drop_rate:
                fault = "drop"
            streak = self._streak.get(request, 0)
            if fault and streak >= self.max_in_a_row:
                fault = None
            self._streak[request] = streak + 1 if fault else 0
            if fault is None and self._rng.random() < self.slow_rate:
                fault = "slow"
            if fault:
                self.done[fault] += 1
            return fault


_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class _Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    log: list[Request]
    lock: threading.Lock
    faults: Faults | None

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        fault = self.faults.draw((self.command, self.path)) if self.faults else None
        if fault == "503":
            code = (
                b"SlowDown"
                if self.faults and self.faults.done["503"] % 2
                else b"ServiceUnavailable"
            )
            self._reply(503, _SLOW_DOWN.replace(b"{code}", code))
            return
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "slow":
            time.sleep(self.faults.slow_s if self.faults else 0)
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

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    def log_message(self, *args: object) -> None:  # quiet
        pass


@contextmanager
def recording_proxy(
    upstream: str, faults: Faults | None = None
) -> Iterator[tuple[str, list[Request]]]:
    """Yield ``(endpoint URL, request log)`` of a proxy to ``upstream`` (``http://h:p``);
    the log holds the requests that reached the server."""
    target = urlsplit(upstream)
    log: list[Request] = []
    attrs = {"log": log, "lock": threading.Lock(), "faults": faults}
    handler = type("Relay", (_Relay,), {"upstream": (target.hostname, target.port), **attrs})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
