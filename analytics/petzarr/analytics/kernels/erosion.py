"""Erode every label of a label map at once, as ``scipy.ndimage.binary_erosion`` does per label.

One iteration keeps a voxel's label when the voxel and its six face neighbours all carry that
label, and sets it to 0 otherwise; neighbours outside the volume count as different, so the
volume border erodes. Because the masks of different labels are disjoint, this equals, for
every label ``k`` and any ``n >= 1``,
``binary_erosion(seg == k, iterations=n)`` with scipy's default cross structure and
``border_value=0``. ``n = 0`` means no erosion (the map itself) — unlike scipy, where
``iterations=0`` erodes until nothing changes.

Each iteration is one branch-free pass of byte compares that LLVM vectorises, so eroding all
labels costs about as much as eroding one.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from petzarr.cohort.errors import InvalidInputError

__all__ = ["erode_labels"]


@numba.njit(nogil=True, cache=True)
def _erode_once(src, dst):  # pragma: no cover - compiled
    nz, ny, nx = src.shape
    zero = src.dtype.type(0)
    n = nx - 2
    for z in range(nz):
        for y in range(ny):
            out = dst[z, y]
            if z == 0 or z == nz - 1 or y == 0 or y == ny - 1 or nx < 3:
                out[:] = zero  # a neighbour is outside the volume
                continue
            out[0] = zero
            out[nx - 1] = zero
            # every view starts at index 0 of its loop: numba then drops its negative-index
            # check, and LLVM vectorises the loop (10x faster than indexing x - 1)
            mid = src[z, y, 1 : nx - 1]
            left = src[z, y, : nx - 2]
            right = src[z, y, 2:]
            below = src[z - 1, y, 1 : nx - 1]
            above = src[z + 1, y, 1 : nx - 1]
            front = src[z, y - 1, 1 : nx - 1]
            back = src[z, y + 1, 1 : nx - 1]
            kept = out[1 : nx - 1]
            for x in range(n):
                k = mid[x]
                same = (
                    (k == left[x])
                    & (k == right[x])
                    & (k == below[x])
                    & (k == above[x])
                    & (k == front[x])
                    & (k == back[x])
                )
                kept[x] = k if same else zero


def _erode_numpy(labels: NDArray[Any], iterations: int) -> NDArray[Any]:
    cur = np.ascontiguousarray(labels)
    if iterations == 0:
        return cur.copy()
    # ping-pong between two buffers; the input is never written
    buffers = [np.empty_like(cur) for _ in range(min(iterations, 2))]
    for i in range(iterations):
        dst = buffers[i % 2]
        _erode_once(cur, dst)
        cur = dst
    return cur


def erode_labels(labels: Any, iterations: int) -> Any:
    """Erode every label of ``labels`` by ``iterations`` steps of the 6-connected cross.

    Parameters
    ----------
    labels : ndarray or dask.array.Array, shape (z, y, x)
        Integer label map; 0 is background.
    iterations : int
        Number of erosion steps, ``>= 0``; 0 returns a copy of the map.

    Returns
    -------
    ndarray or dask.array.Array
        A label map of the same shape and dtype: eroded voxels are 0. For Dask input the
        result is lazy: ``map_overlap`` with a halo of ``iterations`` voxels along every
        chunked axis (only z for whole-slab chunks), padded with 0 at the volume edge so the
        edge erodes exactly as in the numpy path.

    Examples
    --------
    >>> seg = np.zeros((5, 5, 5), np.uint8)
    >>> seg[1:4, 1:4, 1:4] = 3
    >>> erode_labels(seg, 1)[2]
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 0, 3, 0, 0],
           [0, 0, 0, 0, 0],
           [0, 0, 0, 0, 0]], dtype=uint8)
    >>> int(erode_labels(seg, 2).max())
    0
    """
    iterations = _parse_iterations(iterations)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidInputError(
            f"labels have shape {tuple(labels.shape)} and dtype {labels.dtype}; "
            "expected an integer (z, y, x) label map"
        )
    if isinstance(labels, np.ndarray):
        return _erode_numpy(labels, iterations)
    import dask.array as da

    labels = da.asarray(labels)
    if iterations == 0:
        return labels
    # an axis no longer than the halo is taken whole (dask cannot overlap deeper than it)
    short = {ax: -1 for ax, size in enumerate(labels.shape) if size <= iterations}
    if short:
        labels = labels.rechunk(short)
    depth = {ax: (iterations if len(c) > 1 else 0) for ax, c in enumerate(labels.chunks)}
    # padding the volume edge with 0 (a non-label) erodes it like the numpy kernel does,
    # and the block kernel's own edge effects stay inside the halo that is trimmed away
    return labels.map_overlap(
        _erode_numpy,
        depth=depth,
        boundary=0,
        trim=True,
        iterations=iterations,
        dtype=labels.dtype,
        meta=np.empty((0, 0, 0), labels.dtype),
    )


def _parse_iterations(iterations: Any) -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
        raise InvalidInputError(f"erosion iterations must be an int >= 0, not {iterations!r}")
    if iterations < 0:
        raise InvalidInputError(f"erosion iterations must be >= 0, not {iterations}")
    return int(iterations)
