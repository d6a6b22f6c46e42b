"""S3 retries: how every request of a job rides out throttling and dropped connections.

Both layers are the libraries' own; petzarr only sets them (:func:`with_retries`):

- botocore retries each request in its ``standard`` mode: 5xx answers (``SlowDown``,
  ``ServiceUnavailable``, ``InternalError``), throttling codes, dropped connections and
  timeouts, up to ``s3.max_attempts`` attempts with exponential backoff and full jitter
  (at most 20 s apart). Its retry quota stops retrying only while most requests keep
  failing (a retried request that succeeds refunds what it took), so an outage fails fast
  instead of multiplying traffic.
- s3fs retries the whole call 5 times (its own ``S3FileSystem.retries``; 0.1 s backoff
  growing 1.7x) on timeouts, dropped connections and ``SlowDown`` that outlast
  botocore's attempts.

A dead endpoint (connection refused) is retried by botocore alone and fails in about half
a minute, naming the endpoint; ``s3.connect_timeout`` and ``s3.read_timeout`` bound a
silent one. Each process counts the retries it made (:func:`retries_seen`), read from
botocore's and s3fs's own loggers, so a run report can say what the network cost. The
count is a lower bound: aiohttp itself repeats a request once, unlogged, when a reused
keep-alive connection is dropped (measured through the test proxy: of 4 dropped
connections, 2 were counted).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from petzarr.cohort.config import get_float, get_int

__all__ = ["retries_seen", "with_retries"]


def with_retries(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """S3 storage options with petzarr's retry settings where the caller set none.

    >>> opts = with_retries({"anon": True})
    >>> opts["config_kwargs"]["retries"]
    {'mode': 'standard', 'max_attempts': 8}
    >>> mine = with_retries({"config_kwargs": {"retries": {"max_attempts": 3}}})
    >>> mine["config_kwargs"]["retries"]
    {'max_attempts': 3}
    """
    _count_retries()
    opts = dict(options or {})
    config = dict(opts.get("config_kwargs") or {})
    config.setdefault("retries", {"mode": "standard", "max_attempts": get_int("s3.max_attempts")})
    config.setdefault("connect_timeout", get_float("s3.connect_timeout"))
    config.setdefault("read_timeout", get_float("s3.read_timeout"))
    opts["config_kwargs"] = config
    return opts


def retries_seen() -> int:
    """S3 requests retried by this process so far (botocore's and s3fs's retries)."""
    return _counter.count


class _RetryCounter(logging.Filter):
    """Counts the retry decisions the libraries log at DEBUG; passes records on only if
    the user asked for DEBUG from those loggers before petzarr raised their level."""

    def __init__(self, markers: tuple[str, ...]) -> None:
        super().__init__()
        self.markers = markers
        self.passthrough: dict[str, bool] = {}
        self.count = 0
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(self.markers) or (
            message.startswith("Client error (maybe retryable)") and "SlowDown" in str(record.args)
        ):
            with self.lock:
                self.count += 1
        return self.passthrough.get(record.name, False)


# botocore: "Retry needed, retrying request after delay of: %s"; s3fs: "Retryable error: %s"
_counter = _RetryCounter(("Retry needed, retrying", "Retryable error"))
_LOGGERS = ("botocore.retries.standard", "s3fs")


def _count_retries() -> None:
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _counter in logger.filters:
            continue
        _counter.passthrough[name] = logger.isEnabledFor(logging.DEBUG)
        logger.setLevel(logging.DEBUG)
        logger.addFilter(_counter)
