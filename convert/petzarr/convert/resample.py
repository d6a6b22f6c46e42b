"""Nearest-neighbour resampling of label maps between canonical grids.

Both grids are axis-aligned in one world frame, so the map from a target voxel to the
nearest source voxel separates into one index vector per axis; resampling is one
gather per slice, no interpolation and no per-voxel affine arithmetic.
"""

from __future__ import annotations

import numpy as np

from petzarr.convert.nifti import Grid

__all__ = ["nearest_indices", "resample_nearest"]


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


def resample_nearest(labels: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    """Resample a ``(z, y, x)`` label map from grid ``src`` onto grid ``dst``.

    Target voxels whose nearest source centre lies outside the source volume get label 0.
    ``labels`` may be any strided view (e.g. a flipped canonical view of the file's array).
    """
    if labels.shape != src.shape:
        raise ValueError(f"label map shape {labels.shape} is not the source grid's {src.shape}")
    iz, iy, ix = nearest_indices(src, dst)
    # one flat (y, x) index per target slice, one gather per slice; voxels outside the
    # source point at a sentinel 0 appended to the slice buffer, so no masking pass is needed
    ny, nx = src.shape[1:]
    plane = iy[:, None] * nx + ix[None, :]
    plane[(iy[:, None] < 0) | (ix[None, :] < 0)] = ny * nx
    plane = plane.ravel()
    buf = np.zeros(ny * nx + 1, dtype=labels.dtype)
    out = np.zeros(dst.shape, dtype=labels.dtype)
    for k, z in enumerate(iz):
        if z >= 0:
            buf[:-1].reshape(ny, nx)[...] = labels[z]
            np.take(buf, plane, out=out[k].reshape(-1))
    return out
