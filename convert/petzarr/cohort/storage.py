"""Storage: every local path and ``s3://`` URL goes through fsspec, configured in one place.

Storage options (``anon``, endpoint, credentials) are passed explicitly; ``AWS_ENDPOINT_URL``
and the usual AWS variables reach S3-compatible stores through botocore as usual. Every S3
filesystem and store made here retries as :mod:`petzarr.cohort.retries` says.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

import fsspec
import zarr
from fsspec.implementations.local import LocalFileSystem

from petzarr.cohort.retries import with_retries

__all__ = ["filesystem", "is_remote", "join", "storage_options", "zarr_store"]


def storage_options(url: str, *, anon: bool = False) -> dict[str, Any]:
    """Options for the filesystem behind ``url``.

    >>> storage_options("/data/cohort")
    {}
    >>> storage_options("s3://bucket/prefix", anon=True)["anon"]
    True
    """
    if not is_remote(url):
        return {}
    opts: dict[str, Any] = {"anon": anon}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["endpoint_url"] = endpoint
    return opts


def is_remote(url: str) -> bool:
    """True for URLs with a non-file protocol (``s3://``, ``gs://``, ``memory://``)."""
    protocol, _ = fsspec.core.split_protocol(str(url))
    return protocol not in (None, "file", "local")


def filesystem(
    url: str, options: Mapping[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the protocol-less path of ``url``."""
    fs, path = fsspec.core.url_to_fs(str(url), **_options(url, options))
    return fs, path


def _options(url: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    protocol, _ = fsspec.core.split_protocol(str(url))
    return with_retries(options) if protocol in ("s3", "s3a") else dict(options or {})


def join(url: str, *parts: str) -> str:
    """Join path parts onto a local path or URL with ``/``.

    >>> join("s3://bucket/cohort/", "subjects", "0001.zarr")
    's3://bucket/cohort/subjects/0001.zarr'
    """
    return posixpath.join(str(url).rstrip("/"), *parts)


def zarr_store(
    url: str, options: Mapping[str, Any] | None = None, *, read_only: bool = False
) -> Any:
    """A zarr v3 store for a local folder or a remote URL."""
    fs, path = filesystem(url, options)
    if isinstance(fs, LocalFileSystem):
        return zarr.storage.LocalStore(path, read_only=read_only)
    return zarr.storage.FsspecStore.from_url(
        str(url), storage_options=_options(url, options), read_only=read_only
    )
