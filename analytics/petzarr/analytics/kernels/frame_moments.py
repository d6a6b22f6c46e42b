"""Per-label moments of every frame of a dynamic series, streamed from its store slab by slab.

A cohort stores dynamic PET as one chunk per frame and axial slab, ``(1, 64, ny, nx)``.
:func:`frame_moments` makes one Dask task per slab: the task holds that slab of every label
map (eroded maps included) and reads the slab's frames a block of frames at a time from the
array it was given (a ``zarr.Array`` reads only those chunks), so a task holds one slab of the
maps plus one block of frames, whatever the length of the series. Each block goes through
:func:`~petzarr.analytics.kernels.moments.accumulate_block`, which cuts every image row into label
segments once and sums all frames of the block over them: the labels are read once per block,
not once per frame. Slab partials ``(t, maps, labels, 5)`` then combine in a tree reduction
with :func:`~petzarr.analytics.kernels.moments.combine_packed` (Chan et al.; exact and associative).

The result equals :func:`~petzarr.analytics.kernels.moments.label_moments` on the whole 4-D array
in memory; only the memory differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petzarr.analytics.kernels.label_rows import check_label_maps
from petzarr.analytics.kernels.moments import (
    LabelMoments,
    accumulate_block,
    combine_packed,
    default_n_labels,
)
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.layout import CHUNK_SLABS

__all__ = ["BLOCK_BYTES", "frame_moments"]

#: Default bytes of values one task reads at once (a block of frames of one slab). Larger
#: blocks cut the label rows into segments less often, but that pass is cheap: on a
#: 69 x 320 x 220 x 220 series 1, 2 and 5 frames a block ran within 10 % of each other,
#: while the peak memory grew with the block.
BLOCK_BYTES = 64 * 2**20


def frame_moments(
    values: Any,
    label_maps: Sequence[Any],
    *,
    n_labels: int | None = None,
    frames_per_block: int | None = None,
    block_bytes: int = BLOCK_BYTES,
    split_every: int | None = None,
) -> LabelMoments:
    """Count, mean, std, min and max per frame and label, for many label maps, lazily.

    Parameters
    ----------
    values : zarr.Array or ndarray, shape (t, z, y, x)
        The dynamic series; anything whose ``values[t0:t1, z0:z1]`` gives a numpy array.
        A Dask array is refused: use :func:`~petzarr.analytics.kernels.moments.label_moments`.
    label_maps : sequence of ndarray or dask.array.Array, shape (z, y, x)
        Integer label maps on the grid of ``values`` (e.g. eroded ones from
        :func:`~petzarr.analytics.kernels.erosion.erode_labels`, lazily).
    n_labels : int, optional
        Label slots (max label + 1); default 256 for uint8 maps (see
        :func:`~petzarr.analytics.kernels.moments.default_n_labels`).
    frames_per_block : int, optional
        Frames read at once per slab; default as many as fit in ``block_bytes``.
    block_bytes : int
        Bound on the bytes of values a task reads at once (when ``frames_per_block`` is None).
    split_every : int, optional
        Fan-in of the tree reduction over slabs.

    Returns
    -------
    LabelMoments
        Lazy (Dask) fields of shape ``(t, n_maps, n_labels)``; call ``.compute()`` (on the
        scheduler of your choice: a cluster task wants ``scheduler="threads"``).

    Notes
    -----
    Slabs are the z chunks of ``values`` when it has ``chunks`` (a zarr array), else 64
    slices; the maps are rechunked to them (a no-op for a cohort store, whose maps are
    chunked like the PET).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pet = rng.normal(100, 10, (3, 5, 4, 4)).astype(np.float32)
    >>> seg = np.zeros((5, 4, 4), np.uint8)
    >>> seg[1:4, 1:3, 1:3] = 7
    >>> mom = frame_moments(pet, [seg], n_labels=8, frames_per_block=2).compute()
    >>> mom.count[:, 0, 7].tolist()
    [12, 12, 12]
    >>> bool(np.allclose(mom.mean[:, 0, 7], pet[:, seg == 7].mean(axis=1)))
    True
    """
    shape = tuple(getattr(values, "shape", ()))
    if len(shape) != 4:
        raise InvalidInputError(f"values have shape {shape}; expected a (t, z, y, x) series")
    if _is_dask(values):
        raise InvalidInputError("values is a Dask array: use labelstats.label_moments for it")
    if np.dtype(values.dtype).kind not in "iuf":
        raise InvalidInputError(f"values have dtype {values.dtype}; expected integers or floats")
    maps = check_label_maps(label_maps, shape[1:])
    if n_labels is None:
        n_labels = default_n_labels(maps)
    if n_labels < 1:
        raise InvalidInputError(f"n_labels must be >= 1, not {n_labels}")
    slab = _slab_size(values)
    if frames_per_block is None:
        slab_bytes = slab * shape[2] * shape[3] * np.dtype(values.dtype).itemsize
        frames_per_block = max(1, int(block_bytes) // max(slab_bytes, 1))
    if frames_per_block < 1:
        raise InvalidInputError(f"frames_per_block must be >= 1, not {frames_per_block}")
    return LabelMoments.from_packed(
        _packed(values, maps, slab, n_labels, int(frames_per_block), split_every)
    )


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask")


def _slab_size(values: Any) -> int:
    chunks = getattr(values, "chunks", None)
    if isinstance(chunks, tuple) and len(chunks) == 4 and isinstance(chunks[1], int | np.integer):
        return max(1, int(chunks[1]))
    return min(CHUNK_SLABS, max(1, values.shape[1]))


def _slab_partial(
    *maps: NDArray[Any],
    values: Any,
    n_labels: int,
    frames_per_block: int,
    block_info: dict[Any, Any] | None = None,
) -> NDArray[np.float64]:
    """Packed moments ``(1, 1, 1, t, n_maps, n_labels, 5)`` of one slab, frames in blocks."""
    assert block_info is not None  # dask passes it
    z0, z1 = block_info[0]["array-location"][0]
    nt = values.shape[0]
    out = np.empty((nt, len(maps), n_labels, 5))
    for t0 in range(0, nt, frames_per_block):
        t1 = min(nt, t0 + frames_per_block)
        block = np.asarray(values[t0:t1, z0:z1])
        out[t0:t1] = accumulate_block(block, maps, n_labels=n_labels)
    return out[None, None, None]


def _packed(
    values: Any,
    maps: Sequence[Any],
    slab: int,
    n_labels: int,
    frames_per_block: int,
    split_every: int | None,
) -> Any:
    import dask.array as da

    nt, nz, ny, nx = values.shape
    zchunks = tuple(min(slab, nz - z) for z in range(0, nz, slab))
    spatial = (zchunks, (ny,), (nx,))
    lazy = [
        (da.asarray(m) if _is_dask(m) else da.from_array(m, chunks=spatial, name=False)).rechunk(
            spatial
        )
        for m in maps
    ]
    token = uuid.uuid4().hex
    partials = da.map_blocks(
        partial(_slab_partial, values=values, n_labels=n_labels, frames_per_block=frames_per_block),
        *lazy,
        chunks=((1,) * len(zchunks), (1,), (1,), (nt,), (len(maps),), (n_labels,), (5,)),
        new_axis=[3, 4, 5, 6],
        dtype=np.float64,
        meta=np.empty((0,) * 7),
        name=f"frame-moments-{token}",  # a name: dask would otherwise hash the whole series
    )
    return da.reduction(
        partials,
        chunk=_identity,
        combine=combine_packed,
        aggregate=combine_packed,
        axis=(0, 1, 2),
        dtype=np.float64,
        split_every=split_every,
        concatenate=True,
        meta=np.empty((0,) * 4),
        name=f"frame-moments-sum-{token}",
    )


def _identity(x: NDArray[Any], axis: Any = None, keepdims: bool = True) -> NDArray[Any]:
    return x
