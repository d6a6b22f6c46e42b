"""SUVpeak (PERCIST): per label, the highest mean over a 1 mL sphere centred in the label.

The sphere of volume 1 mL has radius ``r = (3 / (4 pi) * 1000 mm^3)^(1/3) = 6.2035 mm``; it
holds the voxels whose centres lie within ``r`` (``<=``) of the centre voxel's, measured with
the grid spacing ``(dz, dy, dx)`` in mm. Any voxel of the label may be the centre; the
sphere's other voxels may lie outside the label (PERCIST's definition). Voxels of the sphere
that fall outside the volume are left out of the mean: near the border the mean is over the
voxels that exist (nothing is padded).

How it stays exact and fast. A sphere on a grid is a stack of x-runs: for each offset
``(dz, dy)`` a run ``|dx| <= w(dz, dy)``. For a tile of rows and the slices around the
current one, the kernel keeps every run sum ``B_w(z, y, x) = sum_{|i| <= w} v(z, y, x + i)``
(a few vectorised adds per voxel); the sphere sum along a whole row is then
``sum_{(dz, dy)} B_w(z + dz, y + dy, .)`` — 33 vectorised row additions at 2 x 1.65 x 1.65 mm
instead of 171 scattered reads per centre. Rows without labelled voxels are skipped, and a
row is reduced to a maximum per label over row segments
(:mod:`~petzarr.analytics.kernels.label_rows`), so several maps cost little more than one.

These sums are float32 (half the memory traffic, twice the SIMD width) and serve as a
screen: their error is bounded (``|error| <= gamma_d * count * max|v|``, Higham's bound for
the ``d`` roundings a value goes through), and a centre is re-evaluated in float64 from the
values whenever its float32 mean comes within that bound of the best exact mean its label
has so far. So every centre that could reach the peak is confirmed exactly (in practice a
few thousand per volume), the result is the float64 sphere mean, and ties go to the first
centre in C (z, y, x) order. Values must be finite.

This evaluates the sphere at every labelled centre; a bound-and-prune search with a max
filter as upper bound does not help on PET: noise makes the local maximum exceed the peak
almost everywhere in uniform organs such as the liver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from petzarr.analytics.kernels.label_rows import (
    check_label_maps,
    parse_spacing,
    row_runs,
    segment_buffers,
)
from petzarr.cohort.errors import InvalidInputError

__all__ = ["PEAK_RADIUS_MM", "LabelPeaks", "label_peaks", "sphere_offsets"]

_TILE_ROWS = 32  # y-rows per tile: the float32 ring of run sums stays within L2

#: Radius [mm] of the 1 mL sphere: (3 / (4 pi) * 1000 mm^3)^(1/3).
PEAK_RADIUS_MM: float = float((3.0 * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0))


def sphere_offsets(
    spacing_mm: Sequence[float], radius_mm: float = PEAK_RADIUS_MM
) -> NDArray[np.int64]:
    """The sphere as x-runs: rows ``(dz, dy, w)`` with the run ``|dx| <= w`` at ``(dz, dy)``.

    A voxel offset belongs to the sphere when
    ``(dz*sz)**2 + (dy*sy)**2 + (dx*sx)**2 <= radius**2``.

    Examples
    --------
    >>> runs = sphere_offsets((2.0, 1.65, 1.65))
    >>> len(runs), int((2 * runs[:, 2] + 1).sum())  # runs and voxels of the 1 mL sphere
    (33, 171)
    """
    sz, sy, sx = parse_spacing(spacing_mm)
    r2 = float(radius_mm) ** 2
    rows = []
    for dz in range(-int(radius_mm // sz), int(radius_mm // sz) + 1):
        for dy in range(-int(radius_mm // sy), int(radius_mm // sy) + 1):
            base = (dz * sz) ** 2 + (dy * sy) ** 2
            if base > r2:
                continue
            w = 0
            while base + ((w + 1) * sx) ** 2 <= r2:
                w += 1
            rows.append((dz, dy, w))
    return np.array(rows, np.int64).reshape(-1, 3)


@numba.njit(nogil=True, cache=True)
def _run_sums(rows, out):  # pragma: no cover - compiled
    """``out[w, r, x] = sum(rows[r, x - w : x + w + 1])`` (clipped at the row ends).

    Sums in float32 (``out``); returns ``max |rows|`` (for the rounding bound). Every loop
    indexes views from 0: numba cannot drop its negative-index wraparound check on ``x - w``,
    and that check stops LLVM from vectorising (4x slower).
    """
    nr, nx = rows.shape
    wmax = out.shape[0] - 1
    big = np.zeros(1, np.uint32)
    for r in range(nr):
        row = rows[r]
        first = out[0, r]
        for x in range(nx):
            first[x] = row[x]
        big[0] = max(big[0], _abs_max_bits(first))
        for w in range(1, wmax + 1):
            prev = out[w - 1, r]
            cur = out[w, r]
            # interior: the run widens by one voxel on each side
            inner = max(nx - 2 * w, 0)
            cur_in = cur[w : w + inner]
            prev_in = prev[w : w + inner]
            left = first[:inner]
            right = first[2 * w : 2 * w + inner]
            for x in range(inner):
                cur_in[x] = prev_in[x] + left[x] + right[x]
            # the ends, clipped at the volume border
            for x in range(min(w, nx)):
                for xx in (x, nx - 1 - x):
                    total = prev[xx]
                    if xx >= w:
                        total += first[xx - w]
                    if xx + w < nx:
                        total += first[xx + w]
                    cur[xx] = total
    return np.float64(big.view(np.float32)[0])


@numba.njit(nogil=True, cache=True)
def _max_of(seg, scratch):  # pragma: no cover - compiled
    """Maximum of a float32 array (finite values), as an integer reduction that vectorises.

    Flipping the bits of negative floats and the sign bit of positive ones gives unsigned
    keys that order like the floats. ``scratch`` is a 1-element uint32 array (allocating it
    here, once per segment, would cost more than the reduction).
    """
    bits = seg.view(np.int32)
    top = np.uint32(0)
    for x in range(bits.shape[0]):
        b = bits[x]
        key = np.uint32(b) ^ (np.uint32(b >> 31) | np.uint32(0x80000000))
        top = max(top, key)
    flip = (np.uint32(0) - ((top >> np.uint32(31)) ^ np.uint32(1))) | np.uint32(0x80000000)
    scratch[0] = top ^ flip
    return scratch.view(np.float32)[0]


@numba.njit(nogil=True, cache=True)
def _abs_max_bits(row):  # pragma: no cover - compiled
    # the bits of |v| order like |v| for float32: an integer maximum, which vectorises
    # (float min/max reductions do not, here)
    bits = row.view(np.uint32)
    top = np.uint32(0)
    for x in range(bits.shape[0]):
        top = max(top, bits[x] & np.uint32(0x7FFFFFFF))
    return top


@numba.njit(nogil=True, cache=True)
def _label_extent(maps, z, y, anyrow):  # pragma: no cover - compiled
    """``(first, last + 1)`` of the voxels of row ``(z, y)`` labelled in any map."""
    nx = anyrow.shape[0]
    anyrow[:] = 0
    for m in range(len(maps)):
        row = maps[m][z, y]
        for x in range(nx):  # vectorised OR over the maps
            anyrow[x] |= np.uint8(row[x] != 0)
    first = 0
    while first < nx and anyrow[first] == 0:
        first += 1
    last = nx
    while last > first and anyrow[last - 1] == 0:
        last -= 1
    return first, last


@numba.njit(nogil=True, cache=True)
def _exact_mean(values, z, y, x, offsets):  # pragma: no cover - compiled
    """The sphere mean at ``(z, y, x)`` in float64, from the values themselves."""
    nz, ny, nx = values.shape
    total = 0.0
    count = 0
    for o in range(offsets.shape[0]):
        z2 = z + offsets[o, 0]
        y2 = y + offsets[o, 1]
        if z2 < 0 or z2 >= nz or y2 < 0 or y2 >= ny:
            continue
        lo = max(x - offsets[o, 2], 0)
        hi = min(x + offsets[o, 2] + 1, nx)
        run = values[z2, y2, lo:hi]
        for i in range(hi - lo):
            total += np.float64(run[i])
        count += hi - lo
    return total / count


@numba.njit(nogil=True, cache=True)
def _improve(values, offsets, z, y, x, k, m, best, where):  # pragma: no cover - compiled
    """Evaluate centre ``(z, y, x)`` exactly for label ``k`` of map ``m``."""
    mean = _exact_mean(values, z, y, x, offsets)
    # ties keep the first centre in (z, y, x) order, whatever order the scan takes
    if mean > best[m, k] or (
        mean == best[m, k] and (z, y, x) < (where[m, k, 0], where[m, k, 1], where[m, k, 2])
    ):
        best[m, k] = mean
        where[m, k, 0] = z
        where[m, k, 1] = y
        where[m, k, 2] = x


@numba.njit(nogil=True, cache=True)
def _peak_pass(values, maps, n_labels, offsets, tile, best, where):  # pragma: no cover
    """Screen every labelled centre with float32 sphere sums, confirm in float64.

    The float32 mean of a sphere is within ``tol`` of the exact one (a rounding-error bound,
    see below); a centre is evaluated exactly only when its float32 mean is within ``tol``
    of the best exact mean its label has so far. Every centre that could beat or tie the
    final peak is thus evaluated exactly, and the result is the float64 sphere mean.
    """
    nz, ny, nx = values.shape
    nm = len(maps)
    n_off = offsets.shape[0]
    rz = 0
    ry = 0
    nw = 1
    for o in range(n_off):
        rz = max(rz, abs(offsets[o, 0]))
        ry = max(ry, abs(offsets[o, 1]))
        nw = max(nw, offsets[o, 2] + 1)
    wx = nw - 1
    slots = 2 * rz + 1
    # |float32 sum - exact sum| <= gamma_d * sum|v| (Higham's bound) with d the longest
    # chain of roundings a value goes through: conversion, run sums (2 per width step),
    # the grouped row additions; sum|v| <= count * max|v| bounds it in the mean domain
    d = 1 + 2 * wx + 3 + (n_off + 3) // 4
    unit = 2.0**-24
    gamma = 1.01 * d * unit / (1.0 - d * unit)
    # float32 run sums of the slices around the current one, for the rows of one y-tile
    # and its halo: small enough to stay in L2
    rows = tile + 2 * ry
    ring = np.empty((slots, nw, rows, nx), np.float32)
    flat = ring.reshape((slots * nw * rows, nx))
    held = np.empty(slots, np.int64)  # the slice each ring slot holds
    absmax = np.zeros(slots)  # max |v| of the rows a slot holds
    # voxels of a clipped x-run: the sphere's count where it leaves the volume
    runlen = np.empty((nw, nx))
    for w in range(nw):
        for x in range(nx):
            runlen[w, x] = min(x + w, nx - 1) - max(x - w, 0) + 1
    full = 0.0  # voxels of a sphere inside the volume
    for o in range(n_off):
        full += 2 * offsets[o, 2] + 1
    zero = np.zeros(nx, np.float32)
    acc = np.empty(nx, np.float32)
    cnt = np.empty(nx)
    srcs = np.empty(n_off, np.int64)
    scratch = np.empty(1, np.uint32)
    words, change, runs = segment_buffers(nx)
    anyrow = np.empty(nx, np.uint8)
    xa = np.empty(tile, np.intp)  # the labelled x-range of each row of the tile
    xe = np.empty(tile, np.intp)
    bad = -1
    for y0 in range(0, ny, tile):
        y1 = min(y0 + tile, ny)
        h0 = max(y0 - ry, 0)  # rows h0.. of each slice are in the ring, at index y - h0
        h1 = min(y1 + ry, ny)
        held[:] = -1
        for z in range(nz):
            busy = False
            for y in range(y0, y1):
                r = y - y0
                xa[r], xe[r] = _label_extent(maps, z, y, anyrow)
                busy = busy or xa[r] < xe[r]
            if not busy:
                continue
            big = 0.0
            for z2 in range(max(z - rz, 0), min(z + rz + 1, nz)):
                if held[z2 % slots] != z2:
                    absmax[z2 % slots] = _run_sums(values[z2, h0:h1], ring[z2 % slots])
                    held[z2 % slots] = z2
                big = max(big, absmax[z2 % slots])
            tol = gamma * big
            for y in range(y0, y1):
                r = y - y0
                a0 = xa[r]
                n = xe[r] - a0
                if n <= 0:
                    continue
                # sphere sums along the row: one row of run sums per (dz, dy), four per
                # sweep (a quarter of the loads and stores of acc); views from 0 vectorise
                part = acc[a0 : a0 + n]
                part[:] = 0.0
                n_src = 0
                for o in range(n_off):
                    z2 = z + offsets[o, 0]
                    y2 = y + offsets[o, 1]
                    if 0 <= z2 < nz and 0 <= y2 < ny:
                        srcs[n_src] = ((z2 % slots) * nw + offsets[o, 2]) * rows + (y2 - h0)
                        n_src += 1
                for g in range(0, n_src, 4):
                    s0 = flat[srcs[g], a0 : a0 + n]
                    s1 = flat[srcs[g + 1], a0 : a0 + n] if g + 1 < n_src else zero[:n]
                    s2 = flat[srcs[g + 2], a0 : a0 + n] if g + 2 < n_src else zero[:n]
                    s3 = flat[srcs[g + 3], a0 : a0 + n] if g + 3 < n_src else zero[:n]
                    for x in range(n):
                        part[x] += (s0[x] + s1[x]) + (s2[x] + s3[x])
                whole = rz <= z < nz - rz and ry <= y < ny - ry and wx <= a0
                whole = whole and a0 + n <= nx - wx
                if not whole:
                    # near the border the sphere is clipped: count its voxels per centre
                    den = cnt[a0 : a0 + n]
                    den[:] = 0.0
                    for o in range(n_off):
                        z2 = z + offsets[o, 0]
                        y2 = y + offsets[o, 1]
                        if 0 <= z2 < nz and 0 <= y2 < ny:
                            lens = runlen[offsets[o, 2], a0 : a0 + n]
                            for x in range(n):
                                den[x] += lens[x]
                for m in range(nm):
                    # each map's own runs: a union of all maps' boundaries would cut them
                    row = maps[m][z, y]
                    ns = row_runs(row, words, change, runs)
                    for s in range(ns):
                        a = runs[s]
                        e = runs[s + 1]
                        k = np.intp(row[a])
                        if k == 0:
                            continue
                        if k < 0 or k >= n_labels:
                            bad = k
                            continue
                        seg = acc[a:e]
                        if whole:
                            top = np.float64(_max_of(seg, scratch)) / full
                        else:
                            top = -np.inf
                            for x in range(e - a):
                                top = max(top, np.float64(seg[x]) / cnt[a + x])
                        if top < best[m, k] - tol:
                            continue  # no centre of this segment can reach the peak
                        # the most promising centre first: it usually settles the rest
                        first = 0
                        for x in range(e - a):
                            approx = np.float64(seg[x]) / (full if whole else cnt[a + x])
                            if approx == top:
                                first = x
                                _improve(values, offsets, z, y, a + x, k, m, best, where)
                                break
                        for x in range(e - a):
                            approx = np.float64(seg[x]) / (full if whole else cnt[a + x])
                            if approx >= best[m, k] - tol and x != first:
                                _improve(values, offsets, z, y, a + x, k, m, best, where)
    return bad


@dataclass(frozen=True)
class LabelPeaks:
    """Peak (highest 1 mL sphere mean) per label, arrays indexed ``[map, label]``.

    ``value`` is float64, NaN for label 0 and absent labels; ``index`` is int64
    ``(n_maps, n_labels, 3)``, the (z, y, x) voxel of the sphere's centre, -1 when absent.
    """

    value: NDArray[np.float64]
    index: NDArray[np.int64]


def label_peaks(
    values: NDArray[Any],
    label_maps: Sequence[NDArray[Any]],
    *,
    spacing_mm: Sequence[float],
    n_labels: int | None = None,
    radius_mm: float = PEAK_RADIUS_MM,
) -> LabelPeaks:
    """SUVpeak-style maximum sphere mean of ``values`` for every label of every map.

    Parameters
    ----------
    values : ndarray, shape (z, y, x)
        Values in any unit (the peak is in the same unit; scale it to SUV afterwards).
    label_maps : sequence of ndarray, shape (z, y, x)
        Integer label maps on the grid of ``values``.
    spacing_mm : (dz, dy, dx)
        Voxel spacing in mm, in array axis order.
    n_labels : int, optional
        Label slots (max label + 1); default from the data.
    radius_mm : float
        Sphere radius; default :data:`PEAK_RADIUS_MM` (1 mL).

    Returns
    -------
    LabelPeaks
        ``value`` and centre ``index`` per ``[map, label]``.

    Examples
    --------
    One hot voxel; every whole sphere that holds it (171 voxels at this spacing) has mean 1:

    >>> v = np.zeros((15, 15, 15), np.float32)
    >>> v[7, 7, 7] = 171.0
    >>> lab = np.zeros(v.shape, np.uint8)
    >>> lab[5:10, 5:10, 5:10] = 1
    >>> peaks = label_peaks(v, [lab], spacing_mm=(2.0, 1.65, 1.65))
    >>> float(peaks.value[0, 1]), peaks.index[0, 1].tolist()  # the first such centre
    (1.0, [5, 5, 5])
    """
    values = np.asarray(values)
    if values.ndim != 3 or np.dtype(values.dtype).kind not in "iuf":
        raise InvalidInputError(
            f"values have shape {values.shape} and dtype {values.dtype}; "
            "expected a real (z, y, x) volume"
        )
    maps = check_label_maps([np.asarray(m) for m in label_maps], values.shape)
    maps = tuple(np.ascontiguousarray(m) for m in maps)
    values = np.ascontiguousarray(values)
    if not radius_mm > 0:
        raise InvalidInputError(f"radius_mm must be > 0, not {radius_mm}")
    if n_labels is None:
        n_labels = max(int(m.max(initial=0)) for m in maps) + 1
    offsets = sphere_offsets(spacing_mm, radius_mm)
    best = np.full((len(maps), n_labels), -np.inf)
    where = np.full((len(maps), n_labels, 3), -1, np.int64)
    bad = _peak_pass(values, maps, n_labels, offsets, _TILE_ROWS, best, where)
    if bad != -1:
        raise InvalidInputError(
            f"a label map holds label {bad}, outside [0, {n_labels}); pass a larger n_labels"
        )
    best[np.isneginf(best)] = np.nan
    return LabelPeaks(value=best, index=where)
