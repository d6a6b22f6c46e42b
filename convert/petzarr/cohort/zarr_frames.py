"""4D ``(t, z, y, x)`` arrays written as their data arrive, and their CRC read back.

Conventions are those of :mod:`petzarr.cohort.zarr_io` — chunks ``(1, 64, ny, nx)``, Blosc
zstd-3 with byte shuffle, no sharding, every chunk written — for an array whose frames
arrive piecewise (a dynamic series streamed out of its gzip, in file order, which may run
backwards along z). Chunks are encoded in threads, in any order; the array's checksum is
therefore per chunk: the CRC32 of each chunk's C-order bytes, and the array's CRC32 is the
CRC32 of those chunk CRCs (uint32, little-endian) in C order of the chunk grid.
:class:`FrameWriter` computes it while writing and :func:`frames_crc` while reading back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import zarr
from isal import isal_zlib

from petzarr.cohort.layout import CHUNK_SLABS
from petzarr.cohort.zarr_io import blosc, slab_chunks

__all__ = ["FRAME_DIMS", "FrameWriter", "create_frames_array", "frames_crc"]

FRAME_DIMS = ("t", "z", "y", "x")


def create_frames_array(
    group: zarr.Group,
    name: str,
    *,
    shape: tuple[int, int, int, int],
    dtype: Any = np.float32,
    attrs: dict[str, Any] | None = None,
    slabs: int = CHUNK_SLABS,
) -> zarr.Array:
    """Create an empty 4D array ``group[name]`` with dims ``t, z, y, x``."""
    return group.create_array(
        name,
        shape=shape,
        dtype=dtype,
        chunks=slab_chunks(shape, slabs),
        compressors=[blosc()],
        fill_value=0,
        dimension_names=FRAME_DIMS,
        attributes=attrs or {},
        config={"write_empty_chunks": True},
    )


def _slabs(nz: int, step: int) -> list[tuple[int, int]]:
    return [(z, min(z + step, nz)) for z in range(0, nz, step)]


def _digest(chunk_crcs: list[int]) -> int:
    return isal_zlib.crc32(np.asarray(chunk_crcs, dtype="<u4").tobytes())


class FrameWriter:
    """Write a 4D array piecewise, chunks encoded in threads, and keep its checksum.

    :meth:`submit` hands over whole chunks of one frame and returns as soon as at most
    ``threads`` chunks are still being encoded, so the caller may reuse the buffer of any
    piece submitted ``threads + 1`` pieces ago. Use as a context manager; :attr:`crc` is
    complete once every chunk has been written.

    Examples
    --------
    >>> import zarr, numpy as np
    >>> g = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    >>> arr = create_frames_array(g, "pet", shape=(3, 5, 2, 2), slabs=2)
    >>> data = np.arange(60, dtype=np.float32).reshape(3, 5, 2, 2)
    >>> with FrameWriter(arr) as w:
    ...     for t, frame in enumerate(data):
    ...         w.submit(t, 4, frame[4:])  # the last (short) chunk first, as a flipped file
    ...         w.submit(t, 0, frame[:4])
    >>> w.crc == frames_crc(arr)
    True
    """

    def __init__(self, array: zarr.Array, *, threads: int = 2) -> None:
        if array.ndim != 4:
            raise ValueError(f"FrameWriter needs a (t, z, y, x) array, not {array.shape}")
        self.array = array
        self._step = int(array.chunks[1])
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads)
        self._pending: deque[tuple[tuple[int, int], Future[int]]] = deque()
        self._crcs: dict[tuple[int, int], int] = {}

    def submit(self, t: int, z0: int, data: np.ndarray) -> None:
        """Store ``data`` (``(k, ny, nx)``, any strides) as planes ``z0:z0+k`` of frame ``t``.

        ``z0`` must start a chunk and ``z0 + k`` end one (or the array).
        """
        nz = self.array.shape[1]
        z1 = z0 + data.shape[0]
        if data.shape[1:] != self.array.shape[2:] or z0 % self._step or z1 > nz:
            raise ValueError(f"planes {z0}:{z1} of shape {data.shape} do not fit {self.array}")
        if z1 % self._step and z1 != nz:
            raise ValueError(f"planes {z0}:{z1} end inside a chunk of {self._step} planes")
        for c0 in range(z0, z1, self._step):
            c1 = min(c0 + self._step, z1)
            piece = data[c0 - z0 : c1 - z0]
            future = self._pool.submit(self._put, t, c0, piece)
            self._pending.append(((t, c0 // self._step), future))
        while len(self._pending) > self._threads:
            self._collect()

    def write(self, t: int, frame: np.ndarray) -> None:
        """Store a whole frame ``(z, y, x)`` and wait until it is written."""
        self.submit(t, 0, frame)
        self.drain()

    def drain(self) -> None:
        """Wait until every submitted chunk is written."""
        while self._pending:
            self._collect()

    @property
    def crc(self) -> int:
        """The array's checksum (see the module doc); every chunk must have been written."""
        self.drain()
        nt, n_chunks = self.array.shape[0], len(_slabs(self.array.shape[1], self._step))
        missing = nt * n_chunks - len(self._crcs)
        if missing:
            raise ValueError(f"{missing} chunk(s) of {self.array} were never written")
        return _digest([self._crcs[t, c] for t in range(nt) for c in range(n_chunks)])

    def _put(self, t: int, z0: int, piece: np.ndarray) -> int:
        chunk = np.ascontiguousarray(piece, dtype=self.array.dtype)
        self.array[t, z0 : z0 + chunk.shape[0]] = chunk
        return isal_zlib.crc32(chunk)

    def _collect(self) -> None:
        key, future = self._pending.popleft()
        self._crcs[key] = future.result()

    def close(self) -> None:
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.drain()
        self.close()


def frames_crc(array: zarr.Array, *, threads: int = 2) -> int:
    """The checksum of a stored 4D array (see the module doc), read chunk by chunk.

    Chunks are decoded in threads, at most ``2 * threads`` ahead of the checksum, so memory
    stays bounded.
    """
    bounds = _slabs(array.shape[1], array.chunks[1])
    items = [(t, z0, z1) for t in range(array.shape[0]) for z0, z1 in bounds]

    def crc(item: tuple[int, int, int]) -> int:
        t, z0, z1 = item
        return isal_zlib.crc32(np.ascontiguousarray(array[t, z0:z1]))

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return _digest(list(_bounded_map(pool, crc, items, window=2 * max(1, threads))))


def _bounded_map[T, R](
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], *, window: int
) -> Iterator[R]:
    """``pool.map`` in order, with at most ``window`` results pending at once."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
