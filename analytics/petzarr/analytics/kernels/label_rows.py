"""Row segments shared by the labelled kernels (moments, SUVpeak).

Segmentations are piecewise constant: along one image row (fixed z, y) every label map changes
value only a few times. The kernels therefore cut each row once into *segments* on which every
map is constant and do per-label work once per segment, not once per voxel and map. With seven
maps that turns seven scattered accumulator updates per voxel into one contiguous scan of the
values plus a handful of updates per segment.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "check_label_maps",
    "parse_spacing",
    "row_runs",
    "row_segments",
    "segment_buffers",
    "segment_sums",
]


@numba.njit(nogil=True, cache=True)
def segment_buffers(nx):  # pragma: no cover - compiled
    """Scratch for :func:`row_segments`: ``(words, change, starts)`` for rows of ``nx``.

    ``change`` is a byte view of ``words``; both are returned so the hot loop does not
    build the view once per row.
    """
    words = np.zeros((nx + 7) // 8 + 1, np.uint64)
    return words, words.view(np.uint8), np.empty(nx + 1, np.intp)


@numba.njit(nogil=True, cache=True, inline="always")
def _mark_changes(row, change):  # pragma: no cover - compiled
    # views from index 0 (no negative-index checks): LLVM vectorises this byte loop. The
    # compare, not a XOR, marks the change: a XOR of uint16 labels truncated to a byte
    # would miss labels that differ in their high byte only
    n = row.shape[0] - 1
    if n <= 0:
        return
    after = row[1:]
    before = row[:n]
    out = change[1 : n + 1]
    for x in range(n):
        out[x] |= np.uint8(after[x] != before[x])


@numba.njit(nogil=True, cache=True, inline="always")
def _collect(words, change, starts):  # pragma: no cover - compiled
    nx = starts.shape[0] - 1
    if nx > 0:
        change[0] = 1
    # boundaries are sparse (tens per row): skip 8 bytes at a time and find the set bytes
    # of a word by counting trailing zero bits (byte x of a word is bits 8x..8x+7 on the
    # little-endian machines numba targets)
    ns = 0
    for w in range(words.shape[0]):
        word = words[w]
        while word != 0:
            tz = trailing_zeros(word)
            starts[ns] = w * 8 + (tz >> 3)
            ns += 1
            word &= ~(np.uint64(0xFF) << np.uint64(tz & ~7))
    starts[ns] = nx
    return ns


@numba.njit(nogil=True, cache=True, inline="always")
def row_segments(maps, z, y, words, change, starts):  # pragma: no cover - compiled
    """Cut row ``(z, y)`` into segments on which every map in ``maps`` is constant.

    ``words``, ``change`` and ``starts`` come from :func:`segment_buffers`. On return
    ``starts[:ns + 1]`` holds the segment starts followed by ``nx``; the return value is
    ``ns``. Each map's row is read once.
    """
    words[:] = 0
    for m in range(len(maps)):
        _mark_changes(maps[m][z, y], change)
    return _collect(words, change, starts)


@numba.njit(nogil=True, cache=True, inline="always")
def row_runs(row, words, change, starts):  # pragma: no cover - compiled
    """Like :func:`row_segments` for one map's row: its runs of equal labels."""
    words[:] = 0
    _mark_changes(row, change)
    return _collect(words, change, starts)


@numba.njit(nogil=True, cache=True, inline="always", fastmath={"reassoc", "contract", "nsz"})
def segment_sums(vrow, a, e):  # pragma: no cover - compiled
    """``(v0, sum(v - v0), sum((v - v0)**2), min, max)`` of ``vrow[a:e]``, in float64.

    Four independent accumulators break the add-latency chain (1 voxel per ~4 cycles
    otherwise); segments are too short and irregular for LLVM to vectorise on its own.
    """
    seg = vrow[a:e]  # index from 0: numba then skips its negative-index check
    n = e - a
    v0 = np.float64(seg[0])
    s1a = 0.0
    s1b = 0.0
    s1c = 0.0
    s1d = 0.0
    s2a = 0.0
    s2b = 0.0
    s2c = 0.0
    s2d = 0.0
    loa = v0
    lob = v0
    hia = v0
    hib = v0
    x = 1
    while x + 4 <= n:
        w0 = np.float64(seg[x])
        w1 = np.float64(seg[x + 1])
        w2 = np.float64(seg[x + 2])
        w3 = np.float64(seg[x + 3])
        d0 = w0 - v0
        d1 = w1 - v0
        d2 = w2 - v0
        d3 = w3 - v0
        s1a += d0
        s1b += d1
        s1c += d2
        s1d += d3
        s2a += d0 * d0
        s2b += d1 * d1
        s2c += d2 * d2
        s2d += d3 * d3
        loa = min(loa, min(w0, w1))
        lob = min(lob, min(w2, w3))
        hia = max(hia, max(w0, w1))
        hib = max(hib, max(w2, w3))
        x += 4
    while x < n:
        w0 = np.float64(seg[x])
        d0 = w0 - v0
        s1a += d0
        s2a += d0 * d0
        loa = min(loa, w0)
        hia = max(hia, w0)
        x += 1
    return v0, (s1a + s1b) + (s1c + s1d), (s2a + s2b) + (s2c + s2d), min(loa, lob), max(hia, hib)


def check_label_maps(maps, shape):
    """Validate label maps against a spatial ``shape``; return them as a tuple of one dtype.

    Numba wants a homogeneous tuple, so maps of mixed integer dtypes are cast to the common
    one (rare in practice: every map of a cohort is usually uint8).
    """
    maps = tuple(maps)
    if not maps:
        raise InvalidInputError("at least one label map is needed")
    for i, m in enumerate(maps):
        if m.ndim != 3 or tuple(m.shape) != tuple(shape):
            raise InvalidInputError(
                f"label map {i} has shape {tuple(m.shape)}; expected {tuple(shape)} "
                "(the spatial shape of the values)"
            )
        if not np.issubdtype(m.dtype, np.integer):
            raise InvalidInputError(
                f"label map {i} has dtype {m.dtype}; label maps must hold integers (uint8/uint16)"
            )
    common = np.result_type(*(m.dtype for m in maps))
    return tuple(m if m.dtype == common else m.astype(common) for m in maps)


def parse_spacing(spacing_mm):
    """``(dz, dy, dx)`` in mm as three positive finite floats, or InvalidInputError."""
    try:
        sz, sy, sx = (float(s) for s in spacing_mm)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"spacing_mm must be three numbers (dz, dy, dx) in mm, not {spacing_mm!r}"
        ) from None
    if not (sz > 0 and sy > 0 and sx > 0 and np.isfinite([sz, sy, sx]).all()):
        raise InvalidInputError(f"spacing_mm must be positive and finite, not {spacing_mm!r}")
    return sz, sy, sx
