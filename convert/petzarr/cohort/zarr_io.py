"""Writing format-v1 arrays into a Zarr v3 group: the image, label maps, coordinates.

Every array: C order, chunks of whole axial slabs ``(64, ny, nx)`` (``(1, 64, ny, nx)`` for
4D), Blosc zstd level 2 with byte shuffle, no sharding, ``dimension_names`` so xarray
sees the dims.

Chunks are encoded here (:func:`put_chunk`, in threads: Blosc releases the GIL), not by
zarr's write path, so that every chunk is checked as it is stored: its encoded bytes are
decoded once, in memory, and must give back the voxels; and the CRC32 of the encoded
bytes is kept, so that reading the store back (:func:`stored_crcs`) proves every voxel
without decoding a chunk again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
import zarr
from isal import isal_zlib
from numcodecs import Blosc
from zarr.codecs import BloscCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from petzarr.cohort.errors import VerificationError
from petzarr.cohort.layout import BLOSC_CLEVEL, BLOSC_CNAME, BLOSC_SHUFFLE, CHUNK_SLABS

__all__ = [
    "blosc",
    "copy_array_bytes",
    "create_array",
    "put_chunk",
    "slab_chunks",
    "stored_crcs",
    "write_array",
]

#: CRC32 of each stored object of an array, by key below the array (``c/0/0/0``)
Stored = dict[str, int]


def blosc() -> BloscCodec:
    return BloscCodec(cname=BLOSC_CNAME, clevel=BLOSC_CLEVEL, shuffle=BLOSC_SHUFFLE)


@cache
def _codec(typesize: int) -> Blosc:
    # the numcodecs codec zarr's BloscCodec uses for this array (zarr sets typesize too)
    shuffle = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE}[BLOSC_SHUFFLE]
    return Blosc(cname=BLOSC_CNAME, clevel=BLOSC_CLEVEL, shuffle=shuffle, typesize=typesize)


def slab_chunks(shape: tuple[int, ...], slabs: int = CHUNK_SLABS) -> tuple[int, ...]:
    """Chunk shape: ``slabs`` axial slices of the whole plane; one frame for 4D.

    >>> slab_chunks((531, 440, 440)), slab_chunks((69, 645, 440, 440))
    ((64, 440, 440), (1, 64, 440, 440))
    """
    z = min(slabs, shape[-3])
    return (*(1,) * (len(shape) - 3), z, *shape[-2:])


def _slab_bounds(n: int, step: int) -> Iterable[tuple[int, int]]:
    return ((z, min(z + step, n)) for z in range(0, n, step))


def create_array(
    group: zarr.Group,
    name: str,
    *,
    shape: tuple[int, ...],
    dtype: Any,
    dims: tuple[str, ...],
    attrs: dict[str, Any] | None = None,
    slabs: int = CHUNK_SLABS,
) -> zarr.Array:
    """An empty array of the format (slab chunks of 3-D and 4-D arrays)."""
    return group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=slab_chunks(shape, slabs) if len(shape) >= 3 else shape,
        compressors=[blosc()],
        fill_value=0,
        dimension_names=dims,
        attributes=attrs or {},
        # zarr would compare every chunk with the fill value to skip empty ones: that scan
        # costs more than compressing an empty chunk (a few bytes), so write them all
        config={"write_empty_chunks": True},
    )


_scratch = threading.local()  # a decode buffer per thread, reused chunk after chunk


def _decode_buffer(nbytes: int) -> np.ndarray:
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _scratch.buf = np.empty(nbytes, np.uint8)
    return buf[:nbytes]


def put_chunk(arr: zarr.Array, index: tuple[int, ...], data: np.ndarray) -> tuple[str, int]:
    """Store ``data`` as chunk ``index`` of ``arr``; return its key and its bytes' CRC32.

    ``data`` may be smaller than a chunk at the array's edge (zarr stores edge chunks
    whole, the rest fill value 0), have any strides, and lack the chunk's leading unit
    axes (a ``(z, y, x)`` piece of one frame). The encoded bytes are decoded before they
    are stored and must give back the voxels.
    """
    data = data.reshape((1,) * (arr.ndim - data.ndim) + data.shape)
    dtype = np.dtype(arr.dtype).newbyteorder("<")  # zarr's bytes codec: little-endian
    if data.shape == arr.chunks:
        chunk = np.ascontiguousarray(data, dtype=dtype)
    else:
        chunk = np.zeros(arr.chunks, dtype)
        chunk[tuple(slice(0, n) for n in data.shape)] = data
    codec = _codec(dtype.itemsize)
    encoded = codec.encode(chunk)
    key = arr.metadata.encode_chunk_key(index)
    decoded = codec.decode(encoded, out=_decode_buffer(chunk.nbytes))
    if isal_zlib.crc32(decoded) != isal_zlib.crc32(chunk):
        raise VerificationError(f"{arr.path}/{key}: its Blosc encoding does not decode back")
    value = default_buffer_prototype().buffer.from_bytes(encoded)
    sync((arr.store_path / key).set(value))
    return key, isal_zlib.crc32(encoded)


def stored_crcs(group: zarr.Group, path: str) -> Stored:
    """CRC32 of every stored chunk of array ``path`` (relative to ``group``), read back."""
    return sync(_crcs(group.store, _key(group, path)))


def copy_array_bytes(group: zarr.Group, src: str, dst: str) -> None:
    """Copy array ``src`` of ``group`` to ``dst`` (relative paths), as stored: its
    ``zarr.json`` and its encoded chunks, nothing decoded or encoded again."""
    sync(_copy(group.store, _key(group, src), _key(group, dst)))


def _key(group: zarr.Group, relative: str) -> str:
    return f"{group.path}/{relative}".strip("/")


async def _copy(store: Any, src: str, dst: str) -> None:
    keys = [k async for k in store.list_prefix(f"{src}/")]

    async def one(key: str) -> None:
        value = await store.get(key, prototype=default_buffer_prototype())
        await store.set(dst + key[len(src) :], value)

    await asyncio.gather(*(one(k) for k in keys))


async def _crcs(store: Any, path: str) -> Stored:
    keys = sorted([k async for k in store.list_prefix(f"{path}/")])
    keys = [k for k in keys if not k.endswith("zarr.json")]
    values = await asyncio.gather(
        *(store.get(k, prototype=default_buffer_prototype()) for k in keys)
    )
    return {
        k[len(path) + 1 :]: isal_zlib.crc32(v.to_bytes()) for k, v in zip(keys, values, strict=True)
    }


def write_array(
    group: zarr.Group,
    name: str,
    data: np.ndarray,
    *,
    dims: tuple[str, ...],
    attrs: dict[str, Any] | None = None,
    slabs: int = CHUNK_SLABS,
    threads: int = 2,
) -> Stored:
    """Create ``group[name]`` and write ``data`` (any strides) into it, slab by slab;
    return the CRC32 of each chunk stored (see :func:`put_chunk`)."""
    if data.ndim > 3:
        raise ValueError(f"write_array takes arrays of up to 3 dimensions, not {data.shape}")
    arr = create_array(
        group, name, shape=data.shape, dtype=data.dtype, dims=dims, attrs=attrs, slabs=slabs
    )
    if data.ndim < 3:
        return dict([put_chunk(arr, (0,) * data.ndim, data)])
    step = arr.chunks[0]

    def write(bounds: tuple[int, int]) -> tuple[str, int]:
        z0, z1 = bounds
        return put_chunk(arr, (z0 // step, 0, 0), data[z0:z1])

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(write, _slab_bounds(data.shape[-3], step)))
