"""A subject's task as fast on a Dask worker as in-process, whatever glibc was told.

Dask's Nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed memory
goes back to the OS. Setting any of glibc's malloc thresholds also freezes its mmap
threshold at 128 KiB (it otherwise grows to the largest buffer freed, up to 32 MiB), so
every mid-sized temporary buffer inside the libraries a subject's work runs through — a
zstd workspace per Blosc block, ISA-L's gunzip blocks, a decoded chunk — is mapped,
faulted in page by page and unmapped again. Measured on one ``full`` subject: 4.9 million
page faults instead of 0.4 million, and a conversion at 0.6x its in-process speed.

These buffers are allocated inside C libraries (c-blosc, ISA-L, zarr's codec pipeline),
out of petzarr's reach, so :func:`large_buffers` sets the thresholds back to glibc's
in-process behaviour for the duration of a task (an mmap threshold of 32 MiB and a trim
threshold of 64 MiB) and, when the last concurrent task ends, restores the worker's own
values and hands the freed memory back with ``malloc_trim(0)``. It does nothing unless
the process was started with one of those variables set, and nothing outside glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

__all__ = ["large_buffers"]

# mallopt(3) parameters and glibc's defaults for them
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_THRESHOLD: 128 * 1024}
_ENV = {_M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_", _M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_"}
_TASK = {_M_TRIM_THRESHOLD: 64 * 2**20, _M_MMAP_THRESHOLD: 32 * 2**20}  # 32 MiB: glibc's max

_lock = threading.Lock()
_active = 0  # tasks inside large_buffers() in this process (a worker may run several)


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _frozen() -> dict[int, int]:
    """The thresholds this process was started with (empty: glibc's dynamic defaults)."""
    found = {}
    for param, var in _ENV.items():
        value = os.environ.get(var, "").strip()
        if value.isdigit():
            found[param] = int(value)
    return found


@contextmanager
def large_buffers() -> Iterator[None]:
    """Run the enclosed work with glibc's in-process thresholds; see the module doc."""
    global _active
    frozen = _frozen()
    libc = _libc() if frozen else None
    if libc is None:
        yield
        return
    with _lock:
        if _active == 0:
            for param, value in _TASK.items():
                libc.mallopt(param, value)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                for param, default in _DEFAULTS.items():
                    libc.mallopt(param, frozen.get(param, default))
                libc.malloc_trim(0)
