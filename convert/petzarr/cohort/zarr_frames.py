"""4D ``(t, z, y, x)`` arrays written as their data arrive.

Conventions are those of :mod:`petzarr.cohort.zarr_io` — chunks ``(1, 64, ny, nx)``, Blosc
zstd-2 with byte shuffle, no sharding, every chunk written and checked as it is stored
(:func:`~petzarr.cohort.zarr_io.put_chunk`) — for an array whose frames arrive piecewise
(a dynamic series streamed out of its gzip, in file order, which may run backwards along
z). Chunks are encoded in threads, in any order.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np
import zarr

from petzarr.cohort.layout import CHUNK_SLABS
from petzarr.cohort.zarr_io import Stored, create_array, put_chunk

__all__ = ["FRAME_DIMS", "FrameWriter", "create_frames_array"]

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
    return create_array(
        group, name, shape=shape, dtype=dtype, dims=FRAME_DIMS, attrs=attrs, slabs=slabs
    )


def _slabs(nz: int, step: int) -> list[tuple[int, int]]:
    return [(z, min(z + step, nz)) for z in range(0, nz, step)]


class FrameWriter:
    """Write a 4D array piecewise, chunks encoded in threads, and keep its checksum.

    :meth:`submit` hands over whole chunks of one frame and returns as soon as at most
    ``threads`` chunks are still being encoded, so the caller may reuse the buffer of any
    piece submitted ``threads + 1`` pieces ago. Use as a context manager; :attr:`stored`
    (each chunk's CRC32 as stored) is complete once every chunk has been written.

    Examples
    --------
    >>> import zarr, numpy as np
    >>> from petzarr.cohort.zarr_io import stored_crcs
    >>> g = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    >>> arr = create_frames_array(g, "pet", shape=(3, 5, 2, 2), slabs=2)
    >>> data = np.arange(60, dtype=np.float32).reshape(3, 5, 2, 2)
    >>> with FrameWriter(arr) as w:
    ...     for t, frame in enumerate(data):
    ...         w.submit(t, 4, frame[4:])  # the last (short) chunk first, as a flipped file
    ...         w.submit(t, 0, frame[:4])
    >>> w.stored == stored_crcs(g, "pet") and sorted(w.stored)[:2] == ["c/0/0/0/0", "c/0/1/0/0"]
    True
    """

    def __init__(self, array: zarr.Array, *, threads: int = 2) -> None:
        if array.ndim != 4:
            raise ValueError(f"FrameWriter needs a (t, z, y, x) array, not {array.shape}")
        self.array = array
        self._step = int(array.chunks[1])
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads)
        self._pending: deque[Future[tuple[str, int]]] = deque()
        self._stored: Stored = {}

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
            self._pending.append(
                self._pool.submit(put_chunk, self.array, (t, c0 // self._step, 0, 0), piece)
            )
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
    def stored(self) -> Stored:
        """Each chunk's CRC32 as stored, by key; every chunk must have been written."""
        self.drain()
        nt, n_chunks = self.array.shape[0], len(_slabs(self.array.shape[1], self._step))
        missing = nt * n_chunks - len(self._stored)
        if missing:
            raise ValueError(f"{missing} chunk(s) of {self.array} were never written")
        return dict(self._stored)

    def _collect(self) -> None:
        key, crc = self._pending.popleft().result()
        self._stored[key] = crc

    def close(self) -> None:
        for future in self._pending:
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
