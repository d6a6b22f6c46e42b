"""Nearest-neighbour resampling of label maps between canonical grids.

Both grids are axis-aligned in one world frame, so the map from a target voxel to the
nearest source voxel separates into one index vector per axis; resampling is one gather
(:func:`gather`, also what a label map's pyramid levels are), no interpolation and no
per-voxel affine arithmetic.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np

from petzarr.convert.nifti import Grid

__all__ = ["gather", "in_threads", "nearest_indices", "resample_nearest"]


def nearest_indices(src: Grid, dst: Grid) -> list[np.ndarray]:
    """Per axis (z, y, x): the index of the source voxel nearest each target voxel, -1 outside.

    Ties (a target centre exactly halfway between two source centres) go to the higher
    index, i.e. ``floor(u + 0.5)``.

    >>> src = Grid((1, 1, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> dst = Grid((1, 1, 3), (1.0, 1.0, 2.0), (0.0, 0.0, -0.4))
    >>> nearest_indices(src, dst)[2]
    array([ 0,  2, -1])
    """
    out = []
    for n_src, s_src, o_src, n_dst, s_dst, o_dst in zip(
        src.shape, src.spacing, src.origin, dst.shape, dst.spacing, dst.origin, strict=True
    ):
        centres = o_dst + s_dst * np.arange(n_dst, dtype=np.float64)
        idx = np.floor((centres - o_src) / s_src + 0.5).astype(np.int64)
        idx[(idx < 0) | (idx >= n_src)] = -1
        out.append(idx)
    return out


def resample_nearest(labels: np.ndarray, src: Grid, dst: Grid, *, threads: int = 1) -> np.ndarray:
    """Resample a ``(z, y, x)`` label map from grid ``src`` onto grid ``dst``.

    Target voxels whose nearest source centre lies outside the source volume get label 0.
    ``labels`` may be any strided view (e.g. a flipped canonical view of the file's array).
    """
    if labels.shape != src.shape:
        raise ValueError(f"label map shape {labels.shape} is not the source grid's {src.shape}")
    return gather(labels, nearest_indices(src, dst), threads=threads)


def gather(src: np.ndarray, indices: list[np.ndarray], *, threads: int = 1) -> np.ndarray:
    """``src[iz[k], iy[j], ix[i]]`` at every ``(k, j, i)`` of the index vectors ``(iz, iy,
    ix)``; 0 where an index is -1. One pass, the output written in order.

    >>> gather(np.arange(8).reshape(2, 2, 2), [np.array([1]), np.array([0, -1]), np.array([1, 0])])
    array([[[5, 4],
            [0, 0]]])
    """
    out = np.zeros(tuple(len(i) for i in indices), src.dtype)
    in_threads(_gather, out.shape[0], threads, src, *indices, out)
    return out


@numba.njit(nogil=True, cache=True)
def _gather(src, iz, iy, ix, out, z0, z1):  # pragma: no cover - compiled
    for z in range(z0, z1):
        if iz[z] < 0:
            continue
        plane = src[iz[z]]
        for y in range(out.shape[1]):
            if iy[y] < 0:
                continue
            row, dst = plane[iy[y]], out[z, y]
            for x in range(out.shape[2]):
                i = ix[x]
                if i >= 0:
                    dst[x] = row[i]


def in_threads(kernel: Any, nz: int, threads: int, *args: Any) -> None:
    """``kernel(*args, z0, z1)`` over ``threads`` ranges of output planes ``0..nz`` at once
    (a numba kernel compiled ``nogil``)."""
    bounds = np.linspace(0, nz, min(threads, nz) + 1).astype(int)
    if len(bounds) == 2:
        kernel(*args, 0, nz)
        return
    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(lambda z: kernel(*args, *z), itertools.pairwise(bounds)))
