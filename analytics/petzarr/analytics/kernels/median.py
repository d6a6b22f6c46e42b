"""Exact per-label medians for every label of many maps at once, in O(N).

Gathering every labelled voxel (a counting sort by label) and selecting within each label is
O(N) too, but writes the whole foreground once per map and needs that much memory. This
module writes only a few percent of it, in three steps:

1. **Bracket** from a sample: every 4th voxel along each axis (or all of a small volume) gives,
   per label, an interval ``[lo, hi]`` of sample order statistics around the sample median,
   ``+-5`` binomial standard deviations wide, so it holds the true median unless the sample is
   very unrepresentative; typically a few percent of the label's voxels fall inside.
2. **One pass** over the volume (each map's row runs, see
   :mod:`~petzarr.analytics.kernels.label_rows`) counts, per label, the voxels below ``lo``
   and copies the voxels inside ``[lo, hi]`` into the label's slot of one buffer
   (branch-free compaction). The cost is about 2 ns per
   labelled voxel and map.
3. **Select**: when the middle rank(s) lie among the copied values, the median is found by a
   selection inside them. Otherwise (a bad sample, a full slot) the label is redone with an
   unbounded bracket, i.e. all its voxels: the result is exact either way.

The median of an even count is the mean of the two middle values, as in ``np.median``,
computed in float64. Values are expected finite (NaN is not ordered). Runs on whole in-memory
arrays (a per-subject call).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from petzarr.analytics.kernels.label_rows import (
    check_label_maps,
    row_runs,
    segment_buffers,
)
from petzarr.cohort.errors import InvalidInputError

__all__ = ["count_labels", "label_medians"]

_SAMPLE_STRIDE = 4
_SAMPLE_SIGMAS = 5.0
_SMALL_SAMPLE = 64  # fewer sampled voxels than this: take the whole label


@numba.njit(nogil=True, cache=True)
def _count_runs(maps, n_labels, counts):  # pragma: no cover - compiled
    nz, ny, nx = maps[0].shape
    words, change, starts = segment_buffers(nx)
    bad = -1
    for z in range(nz):
        for y in range(ny):
            for m in range(len(maps)):
                row = maps[m][z, y]
                ns = row_runs(row, words, change, starts)
                for s in range(ns):
                    k = np.intp(row[starts[s]])
                    if k < 0 or k >= n_labels:
                        bad = k
                    else:
                        counts[m, k] += starts[s + 1] - starts[s]
    return bad


@numba.njit(nogil=True, cache=True)
def _bracket_pass(values, maps, lo, hi, base, cap, buf, fill, below):  # pragma: no cover
    """Count values below ``lo[m, k]`` and copy those in ``[lo, hi]`` to ``buf``.

    Label ``k`` of map ``m`` owns ``buf[base[m, k]:base[m, k] + cap[m, k]]``; ``fill`` holds
    how much of it is used. Labels with ``fill == -1`` are skipped; a label whose slot could
    overflow gets ``fill = -1`` (its caller redoes it). ``lo``/``hi`` have the dtype of
    ``values`` when that is a float type, so compares need no conversion.
    """
    nz, ny, nx = values.shape
    words, change, starts = segment_buffers(nx)
    for z in range(nz):
        for y in range(ny):
            vrow = values[z, y]
            for m in range(len(maps)):
                # each map's own runs: a union of all maps' boundaries would cut them short
                row = maps[m][z, y]
                ns = row_runs(row, words, change, starts)
                for s in range(ns):
                    a = starts[s]
                    e = starts[s + 1]
                    k = np.intp(row[a])
                    if k == 0:
                        continue
                    f = fill[m, k]
                    if f < 0:
                        continue
                    if f + (e - a) > cap[m, k]:
                        fill[m, k] = -1
                        continue
                    low = lo[m, k]
                    high = hi[m, k]
                    # views indexed from 0: numba drops its negative-index check (a 3x
                    # slower loop otherwise)
                    run = vrow[a:e]
                    slot = buf[base[m, k] : base[m, k] + cap[m, k]]
                    nb = 0
                    for x in range(e - a):
                        v = run[x]
                        # write always, keep only when inside: no branch to mispredict
                        slot[f] = v
                        f += np.intp(v >= low) & np.intp(v <= high)
                        nb += np.intp(v < low)
                    fill[m, k] = f
                    below[m, k] += nb


@numba.njit(nogil=True, cache=True)
def _group_by_label(labels, values, n_labels):  # pragma: no cover - compiled
    """Counting sort of ``values`` by ``labels``: grouped values and the group bounds."""
    bounds = np.zeros(n_labels + 1, np.int64)
    for k in labels:
        if 0 <= k < n_labels:
            bounds[k + 1] += 1
    for k in range(n_labels):
        bounds[k + 1] += bounds[k]
    fill = bounds[:-1].copy()
    grouped = np.empty(bounds[n_labels], values.dtype)
    for i in range(labels.shape[0]):
        k = labels[i]
        if 0 <= k < n_labels:
            grouped[fill[k]] = values[i]
            fill[k] += 1
    return grouped, bounds


def count_labels(label_maps: Sequence[NDArray[Any]], *, n_labels: int) -> NDArray[np.int64]:
    """Voxel count of every label of every map, ``(n_maps, n_labels)`` int64.

    Examples
    --------
    >>> count_labels([np.array([[[0, 2, 2]]], np.uint8)], n_labels=3)
    array([[1, 0, 2]])
    """
    maps = tuple(np.ascontiguousarray(m) for m in label_maps)
    counts = np.zeros((len(maps), n_labels), np.int64)
    bad = _count_runs(maps, n_labels, counts)
    if bad != -1:
        raise InvalidInputError(
            f"a label map holds label {bad}, outside [0, {n_labels}); pass a larger n_labels"
        )
    return counts


def label_medians(
    values: NDArray[Any],
    label_maps: Sequence[NDArray[Any]],
    *,
    n_labels: int | None = None,
    counts: NDArray[np.int64] | None = None,
) -> NDArray[np.float64]:
    """Exact median of ``values`` for every non-zero label of every map.

    Parameters
    ----------
    values : ndarray, shape (z, y, x)
        Finite values of any real dtype.
    label_maps : sequence of ndarray, shape (z, y, x)
        Integer label maps on the grid of ``values``.
    n_labels : int, optional
        Label slots (max label + 1); default from the data.
    counts : ndarray of int64, shape (n_maps, n_labels), optional
        Voxel counts per label when already known (``label_moments(...).count``); saves a
        pass. They must be right: wrong counts give wrong medians.

    Returns
    -------
    ndarray of float64, shape (n_maps, n_labels)
        ``np.median`` of each label's values; NaN for label 0 and for absent labels.

    Examples
    --------
    >>> v = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    >>> lab = np.array([0, 1, 1, 1, 2, 2, 2, 2], np.uint8).reshape(2, 2, 2)
    >>> label_medians(v, [lab])
    array([[nan, 2. , 5.5]])
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
    if n_labels is None:
        n_labels = max(int(m.max(initial=0)) for m in maps) + 1
    if counts is None:
        counts = count_labels(maps, n_labels=n_labels)
    counts = np.array(counts, np.int64)
    if counts.shape != (len(maps), n_labels):
        raise InvalidInputError(
            f"counts have shape {counts.shape}; expected {(len(maps), n_labels)}"
        )
    counts[:, 0] = 0  # background is neither gathered nor reported
    lo, hi, expected = _brackets(values, maps, counts)
    # a slot holds the expected number of values inside the bracket and one more row: the
    # kernel gives up on a label (which is then redone) only when a whole run might not fit
    slack = values.shape[-1] + 1024
    cap = np.minimum(counts, np.ceil(expected * 1.25).astype(np.int64) + slack)
    result, redo = _select(values, maps, counts, lo, hi, cap)
    if redo.any():
        # exact fallback: take every voxel of these labels
        everything = np.where(redo, counts, 0)
        again, _ = _select(
            values,
            maps,
            everything,
            np.full_like(lo, -np.inf),
            np.full_like(hi, np.inf),
            everything,
        )
        result = np.where(redo, again, result)
    return result


def _brackets(values, maps, counts):
    """Per (map, label): ``lo``, ``hi`` and the expected number of voxels inside."""
    nm, nl = counts.shape
    lo = np.full((nm, nl), -np.inf)
    hi = np.full((nm, nl), np.inf)
    expected = counts.astype(np.float64)
    step = _SAMPLE_STRIDE if values.size >= 64**3 else 1
    sample = values[::step, ::step, ::step].ravel()
    for m, lab in enumerate(maps):
        grouped, bounds = _group_by_label(lab[::step, ::step, ::step].ravel(), sample, nl)
        for k in np.flatnonzero(counts[m]):
            n = int(bounds[k + 1] - bounds[k])
            if n < _SMALL_SAMPLE:
                continue
            sv = np.sort(grouped[bounds[k] : bounds[k + 1]])
            half = _SAMPLE_SIGMAS * 0.5 * np.sqrt(n)
            i_lo = int(np.floor(n / 2 - half)) - 1
            i_hi = int(np.ceil(n / 2 + half))
            if i_lo < 0 or i_hi >= n:
                continue
            lo[m, k] = sv[i_lo]
            hi[m, k] = sv[i_hi]
            inside = np.searchsorted(sv, sv[i_hi], "right") - np.searchsorted(sv, sv[i_lo])
            expected[m, k] = counts[m, k] * inside / n
    return lo, hi, expected


def _select(values, maps, counts, lo, hi, cap):
    """One bracket pass and the selections; returns medians and the labels to redo."""
    active = counts > 0
    if values.dtype.kind == "f":
        lo, hi = lo.astype(values.dtype), hi.astype(values.dtype)  # sample values: exact
    base = np.zeros_like(cap)
    base.ravel()[1:] = np.cumsum(np.where(active, cap, 0).ravel())[:-1]
    fill = np.where(active, 0, -1)
    below = np.zeros_like(counts)
    buf = np.empty(int(np.where(active, cap, 0).sum()), values.dtype)
    _bracket_pass(values, maps, lo, hi, base, cap, buf, fill, below)
    result = np.full(counts.shape, np.nan)
    redo = np.zeros(counts.shape, bool)
    for m, k in zip(*np.nonzero(active)):
        n, f, b = counts[m, k], fill[m, k], below[m, k]
        upper = n // 2 - b  # rank of the upper middle value among the copied ones
        lower = (n - 1) // 2 - b
        if f < 0 or lower < 0 or upper >= f:
            redo[m, k] = True
            continue
        result[m, k] = _median_of_ranks(buf[base[m, k] : base[m, k] + f], lower, upper)
    return result, redo


def _median_of_ranks(x: NDArray[Any], lower: int, upper: int) -> float:
    """Mean of the ``lower``-th and ``upper``-th smallest of ``x`` (reorders ``x``)."""
    # one kth keeps numpy on its vectorised selection path (several kth values take a much
    # slower generic one); the lower middle is then the largest value left of it
    x.partition(upper)
    top = float(x[upper])
    if lower == upper:
        return top
    return (float(x[:upper].max()) + top) / 2.0
