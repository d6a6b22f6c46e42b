"""Which label values a segmentation holds: one pass, no temporaries, the GIL released.

``np.unique`` sorts and ``np.bincount`` first casts every voxel to ``intp`` (8x the map's
bytes); a whole-body map has 139 M voxels, so both take seconds. This loop takes tens of
milliseconds and runs in the reader thread while the previous volume is encoded.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["label_values", "unnamed_labels"]


@numba.njit(nogil=True, cache=True)
def _mark(data: np.ndarray, seen: np.ndarray) -> None:  # pragma: no cover - compiled
    nz, ny, nx = data.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                seen[data[z, y, x]] = True


def _memory_order(a: np.ndarray) -> np.ndarray:
    """The same voxels as a view walked in memory order (which values, not where)."""
    for axis in range(a.ndim):
        if a.strides[axis] < 0:
            a = np.flip(a, axis)
    return a.transpose(np.argsort(a.strides)[::-1])


def label_values(data: np.ndarray) -> np.ndarray:
    """The non-zero values of an unsigned-integer 3-D map, sorted.

    >>> label_values(np.array([[[0, 3], [3, 1]]], dtype=np.uint8))
    array([1, 3])
    """
    if data.dtype.kind != "u" or data.ndim != 3:
        raise TypeError(f"label_values needs a 3-D unsigned integer map, not {data.dtype}")
    seen = np.zeros(np.iinfo(data.dtype).max + 1, dtype=np.bool_)
    _mark(_memory_order(data), seen)
    seen[0] = False
    return np.flatnonzero(seen)


def unnamed_labels(values: np.ndarray, table: dict[int, str]) -> list[int]:
    """The values of a map its label table does not name.

    >>> unnamed_labels(np.array([1, 2, 7]), {1: "liver", 2: "spleen"})
    [7]
    """
    return [int(v) for v in values if int(v) not in table]
