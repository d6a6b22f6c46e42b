"""Lower-resolution levels of an image group and OME-Zarr image-labels of its label maps.

Each level halves y and x, and z too once the in-plane spacing has grown past it (a 3 mm CT
keeps its slices until 3.9 mm in-plane), until the plane is at most ``pyramid.min_size``
voxels across. Images are averaged over each block (CT rounded back to int16). Label maps
take, at each level, the level-0 voxel nearest each block's centre (at most half a level-0
voxel off): never an interpolated value, so every value of a coarse level is one of level 0.
Nearest rather than the block's mode: a strided read costs tens of milliseconds per map
where a mode costs a second, and it keeps a thin structure where the sample falls on it.

Layout inside an image group ``ct/`` (``docs/format.md``)::

    ct/ct                      level 0, as without a pyramid
    ct/levels/<k>/ct           level k >= 1, with its own z, y, x coordinates
    ct/labels/                 OME-Zarr "labels": ["seg_organs", ...]
    ct/labels/seg_organs/<k>   the map at level k; 0 is a byte copy of ct/seg_organs

OME-Zarr 0.5 puts a label image's levels inside its own group, so level 0 of every label
map is stored twice: ``ct/seg_organs`` is what ``xarray.open_zarr(group="ct")`` shows beside
the image, ``ct/labels/seg_organs/0`` what viewers read. The copy is of the encoded chunk
bytes (a few MB a map), not a second encoding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numba
import numpy as np
import zarr

from petzarr.cohort import layout
from petzarr.cohort.format import image_label_attrs, labels_attrs, level_path
from petzarr.cohort.grid import Grid
from petzarr.cohort.zarr_io import Stored, copy_array_bytes, write_array
from petzarr.convert.resample import gather, in_threads

__all__ = [
    "level_grids",
    "mean_down",
    "nearest_level",
    "write_image_levels",
    "write_label_image",
]


def level_grids(grid: Grid, min_size: int) -> list[tuple[Grid, tuple[int, int, int]]]:
    """The grids of levels 1, 2, ... and each one's factor over level 0, ``(fz, fy, fx)``.

    A coarser voxel is centred on its block of level-0 voxels.

    >>> g = Grid((531, 512, 512), (3.0, 0.9765625, 0.9765625), (0.0, 0.0, 0.0))
    >>> [(lv.shape, f) for lv, f in level_grids(g, 64)]
    [((531, 256, 256), (1, 2, 2)), ((266, 128, 128), (2, 4, 4)), ((133, 64, 64), (4, 8, 8))]
    >>> level_grids(g, 512)
    []
    """
    out: list[tuple[Grid, tuple[int, int, int]]] = []
    fz = fy = fx = 1
    nz, ny, nx = grid.shape
    sz, sy, sx = grid.spacing
    while max(ny, nx) > min_size:
        fy, fx, ny, nx = 2 * fy, 2 * fx, math.ceil(ny / 2), math.ceil(nx / 2)
        if sz * fz < min(sy * fy, sx * fx) and nz > 1:  # slices now thinner than the plane
            fz, nz = 2 * fz, math.ceil(nz / 2)
        factors = (fz, fy, fx)
        spacing = tuple(s * f for s, f in zip(grid.spacing, factors, strict=True))
        origin = tuple(
            o + (f - 1) / 2 * s for o, s, f in zip(grid.origin, grid.spacing, factors, strict=True)
        )
        out.append((Grid((nz, ny, nx), spacing, origin), factors))  # type: ignore[arg-type]
    return out


@numba.njit(nogil=True, cache=True)
def _mean_blocks(src, fz, fy, fx, means, stored, rint, z0, z1):  # pragma: no cover - compiled
    # output planes z0..z1: each block's rows are summed into one float64 row (contiguous
    # reads), then each run of fx sums of that row is averaged; float32 means for the next level
    nz, ny, nx = src.shape
    acc = np.empty(nx, np.float64)
    for z in range(z0, z1):
        za, zb = z * fz, min(z * fz + fz, nz)
        for y in range(means.shape[1]):
            ya, yb = y * fy, min(y * fy + fy, ny)
            acc[:] = 0.0
            for zz in range(za, zb):
                for yy in range(ya, yb):
                    row = src[zz, yy]
                    for xx in range(nx):
                        acc[xx] += row[xx]
            rows = (zb - za) * (yb - ya)
            for x in range(means.shape[2]):
                xa, xb = x * fx, min(x * fx + fx, nx)
                total = 0.0
                for xx in range(xa, xb):
                    total += acc[xx]
                v = total / (rows * (xb - xa))
                means[z, y, x] = v
                stored[z, y, x] = np.rint(v) if rint else v


def mean_down(
    data: np.ndarray,
    factors: tuple[int, int, int],
    dtype: np.dtype | None = None,
    *,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Block means of a 3-D image: float32, and in ``dtype`` (default the image's; integers
    rounded to nearest). A partial block at an edge averages the voxels it holds.

    >>> means, stored = mean_down(np.arange(0, 16, 2, dtype=np.int16).reshape(1, 2, 4), (1, 2, 2))
    >>> stored
    array([[[5, 9]]], dtype=int16)
    """
    dtype = np.dtype(dtype or data.dtype)
    shape = tuple(math.ceil(n / f) for n, f in zip(data.shape, factors, strict=True))
    means = np.empty(shape, np.float32)
    stored = means if dtype == np.float32 else np.empty(shape, dtype)
    in_threads(_mean_blocks, shape[0], threads, data, *factors, means, stored, dtype.kind in "iu")
    return means, stored


def nearest_level(
    labels: np.ndarray, factors: tuple[int, int, int], *, threads: int = 1
) -> np.ndarray:
    """The level-0 voxel nearest the centre of each block of ``factors`` (index
    ``factor * i + factor // 2``, the last block's clamped to the volume).

    >>> nearest_level(np.arange(16, dtype=np.uint8).reshape(1, 4, 4), (1, 2, 2))
    array([[[ 5,  7],
            [13, 15]]], dtype=uint8)
    >>> nearest_level(np.arange(3, dtype=np.uint8).reshape(1, 1, 3), (1, 1, 2))
    array([[[1, 2]]], dtype=uint8)
    """
    picks = [
        np.minimum(np.arange(math.ceil(n / f)) * f + f // 2, n - 1)
        for n, f in zip(labels.shape, factors, strict=True)
    ]
    return gather(labels, picks, threads=threads)


def write_image_levels(
    group: zarr.Group,
    image: str,
    data: np.ndarray,
    levels: list[tuple[Grid, tuple[int, int, int]]],
    *,
    slabs: int,
    threads: int,
) -> dict[str, Stored]:
    """Write levels 1, 2, ... of ``data`` (level 0 of ``group[image]``); their chunks' CRC32
    by path.

    Each level is a group ``levels/<k>/`` holding the image and its z, y, x coordinates, so
    ``xarray.open_zarr(store, group="ct/levels/2")`` opens it as level 0 opens.
    """
    crcs: dict[str, Stored] = {}
    attrs = dict(group[image].attrs)  # the level-0 image's (units), read once
    previous, before = data, (1, 1, 1)
    for k, (grid, factors) in enumerate(levels, start=1):
        step = tuple(f // b for f, b in zip(factors, before, strict=True))
        # from the previous level's unrounded means: a quarter of the reading, no drift
        means, stored = mean_down(previous, step, data.dtype, threads=threads)  # type: ignore[arg-type]
        where = group.require_group(f"{layout.LEVELS_GROUP}/{k}")
        crcs[level_path(image, k)] = write_array(
            where, image, stored, dims=layout.SPATIAL_DIMS, attrs=attrs, slabs=slabs,
            threads=threads,
        )  # fmt: skip
        for dim, values in grid.coords().items():
            write_array(where, dim, values, dims=(dim,), attrs={"units": "mm", "axis": dim.upper()})
        previous, before = means, factors
    return crcs


def write_label_image(
    group: zarr.Group,
    name: str,
    data: np.ndarray,
    table: Mapping[int, str],
    grid: Grid,
    levels: list[tuple[Grid, tuple[int, int, int]]],
    level0: Stored,
    *,
    slabs: int,
    threads: int,
) -> dict[str, Stored]:
    """Declare label map ``group[name]`` (level 0 ``data``, stored as ``level0``) an
    OME-Zarr image-label.

    Writes ``labels/<name>/`` (its attributes, level 0 copied byte for byte from
    ``group[name]``, levels 1, 2, ... sampled from ``data``) and adds ``name`` to the
    ``labels/`` list. Returns the chunks' CRC32 of every level by path: level 0's are
    ``level0``, since its chunks are the same bytes.
    """
    labels = group.require_group(layout.LABELS_GROUP)
    ome: Any = labels.attrs.get("ome", {})
    names = list(ome.get("labels", []))
    labels.attrs.update(labels_attrs([*names, name] if name not in names else names))
    image = labels.create_group(
        name, attributes=image_label_attrs(name, table, [grid, *(g for g, _ in levels)]),
        overwrite=True,
    )  # fmt: skip
    copy_array_bytes(group, name, f"{layout.LABELS_GROUP}/{name}/0")
    crcs = {f"{layout.LABELS_GROUP}/{name}/0": level0}
    attrs = dict(group[name].attrs)  # the level-0 map's label table, read once
    for k, (_, factors) in enumerate(levels, start=1):
        crcs[f"{layout.LABELS_GROUP}/{name}/{k}"] = write_array(
            image, str(k), nearest_level(data, factors, threads=threads), dims=layout.SPATIAL_DIMS,
            attrs=attrs, slabs=slabs, threads=threads,
        )  # fmt: skip
    return crcs
