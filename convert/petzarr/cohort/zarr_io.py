"""Writing format-v1 arrays into a Zarr v3 group: the image, label maps, coordinates.

Every array: C order, chunks of whole axial slabs ``(64, ny, nx)`` (``(1, 64, ny, nx)`` for
4D), Blosc zstd level 3 with byte shuffle, no sharding, ``dimension_names`` so xarray
sees the dims. Chunks are encoded in a thread pool (Blosc releases the GIL) and each
slab's CRC32 is returned, so the store can be read back and checked without holding the
volume in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import zarr
from isal import isal_zlib
from zarr.codecs import BloscCodec

from petzarr.cohort.layout import BLOSC_CLEVEL, BLOSC_CNAME, BLOSC_SHUFFLE, CHUNK_SLABS

__all__ = ["array_crc", "blosc", "slab_chunks", "write_array"]


def blosc() -> BloscCodec:
    return BloscCodec(cname=BLOSC_CNAME, clevel=BLOSC_CLEVEL, shuffle=BLOSC_SHUFFLE)


def slab_chunks(shape: tuple[int, ...], slabs: int = CHUNK_SLABS) -> tuple[int, ...]:
    """Chunk shape: ``slabs`` axial slices of the whole plane; one frame for 4D.

    >>> slab_chunks((531, 440, 440)), slab_chunks((69, 645, 440, 440))
    ((64, 440, 440), (1, 64, 440, 440))
    """
    z = min(slabs, shape[-3])
    return (*(1,) * (len(shape) - 3), z, *shape[-2:])


def _slab_bounds(n: int, step: int) -> Iterable[tuple[int, int]]:
    return ((z, min(z + step, n)) for z in range(0, n, step))


def write_array(
    group: zarr.Group,
    name: str,
    data: np.ndarray,
    *,
    dims: tuple[str, ...],
    attrs: dict[str, Any] | None = None,
    slabs: int = CHUNK_SLABS,
    threads: int = 2,
) -> int:
    """Create ``group[name]`` and write ``data`` (any strides) into it; return its CRC32.

    The CRC is over the C-ordered bytes, slab by slab, so :func:`array_crc` on the stored
    array reproduces it.
    """
    chunks = slab_chunks(data.shape, slabs) if data.ndim >= 3 else data.shape
    arr = group.create_array(
        name,
        shape=data.shape,
        dtype=data.dtype,
        chunks=chunks,
        compressors=[blosc()],
        fill_value=0,
        dimension_names=dims,
        attributes=attrs or {},
        # zarr would compare every chunk with the fill value to skip empty ones: that scan
        # costs more than compressing an empty chunk (a few bytes), so write them all
        config={"write_empty_chunks": True},
    )
    if data.ndim < 3:
        arr[...] = data
        return isal_zlib.crc32(np.ascontiguousarray(data))
    step = chunks[-3]

    def write(bounds: tuple[int, int]) -> np.ndarray:
        z0, z1 = bounds
        slab = np.ascontiguousarray(data[..., z0:z1, :, :])
        arr[..., z0:z1, :, :] = slab
        return slab

    crc = 0
    with ThreadPoolExecutor(threads) as pool:
        for slab in pool.map(write, _slab_bounds(data.shape[-3], step)):
            crc = _crc_slab(slab, crc)
    return crc


def _crc_slab(slab: np.ndarray, crc: int) -> int:
    # frame-major order so 4D arrays hash the same whether written or read by slab
    for frame in slab.reshape(-1, *slab.shape[-3:]):
        crc = isal_zlib.crc32(frame, crc)
    return crc


def array_crc(arr: zarr.Array, *, threads: int = 2) -> int:
    """CRC32 of a stored array, read slab by slab (decoded in threads) as written."""
    if arr.ndim < 3:
        return isal_zlib.crc32(np.ascontiguousarray(arr[...]))

    def read(bounds: tuple[int, int]) -> np.ndarray:
        return np.ascontiguousarray(arr[..., bounds[0] : bounds[1], :, :])

    crc = 0
    with ThreadPoolExecutor(threads) as pool:
        for slab in pool.map(read, _slab_bounds(arr.shape[-3], arr.chunks[-3])):
            crc = _crc_slab(slab, crc)
    return crc
