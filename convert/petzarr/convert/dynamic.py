"""A dynamic (4D) PET series into group ``pet_dynamic``, streamed out of its gzip once.

:func:`open_series` reads only the header: the canonical grid and NIfTI header of the
series and its frame count, checked against the sidecar's frame times before anything is
written. :func:`create_dynamic_group` lays out the group (OME-Zarr 0.5 with a leading time
axis, coordinates ``t``/``frame_start``/``frame_duration``/``z``/``y``/``x``, the NIfTI
header, an empty ``pet`` array); label maps are added to it like to any other group; then
:func:`stream_frames` fills ``pet`` frame by frame.

Memory stays at a few axial slabs (one being gunzipped by a reader thread while threads
compress the previous ones), whatever the number of frames and the size of a frame.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
import zarr

from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.format import group_attrs, write_nifti_header
from petzarr.cohort.metadata import SourceFile
from petzarr.cohort.zarr_frames import FrameWriter, create_frames_array
from petzarr.cohort.zarr_io import Stored, write_array
from petzarr.convert.bids import FrameTimes
from petzarr.convert.nifti import (
    Grid,
    NiftiStream,
    apply_scaling,
    canonical_grid,
    canonical_header,
    open_nifti,
    to_canonical_zyx,
)

__all__ = ["DynamicSeries", "create_dynamic_group", "open_series", "stream_frames"]

DTYPE = np.dtype(np.float32)


@dataclass(frozen=True)
class DynamicSeries:
    """What a 4D file's header says: its canonical grid and header, its frame count."""

    uri: str
    grid: Grid
    header: nib.Nifti1Header  # canonical, describing the stored (t, z, y, x) float32 array
    n_frames: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.n_frames, *self.grid.shape)


def open_series(
    uri: str,
    options: Mapping[str, Any] | None = None,
    *,
    subject: str,
    times: FrameTimes,
    allow_oblique: bool = False,
) -> DynamicSeries:
    """Read the header of the 4D series ``uri`` and check it against its frame ``times``.

    The gzip trailer is checked against the header (a truncated file fails here), the
    series must be 4D and have exactly as many frames as its sidecar lists.
    """
    with open_nifti(uri, options) as stream:
        shape = stream.shape_zyx
        if len(shape) != 4:
            raise InvalidInputError(
                f"subject {subject}: {uri} is not a 4D series (shape {shape[::-1]}); "
                "a dynamic PET has frames"
            )
        if shape[0] != len(times):
            raise InvalidInputError(
                f"subject {subject}: {uri} has {shape[0]} frames but its sidecar lists "
                f"{len(times)} (FrameTimesStart/FrameDuration); the file or its sidecar is "
                "wrong, fix or re-download them"
            )
        ornt, canonical = stream.orientation(allow_oblique=allow_oblique)
        zero = np.broadcast_to(np.zeros((), DTYPE), shape)  # strides 0: a shape, no memory
        canon_shape = to_canonical_zyx(zero, ornt).shape
        header = canonical_header(stream.header, canonical, canon_shape, DTYPE)
    # as for 3D volumes: the stored (float32) header affine is the one set of numbers
    grid = canonical_grid(header.get_best_affine(), canon_shape[1:])
    return DynamicSeries(uri=str(uri), grid=grid, header=header, n_frames=int(shape[0]))


def create_dynamic_group(
    root: zarr.Group,
    series: DynamicSeries,
    times: FrameTimes,
    *,
    units: str,
    sidecar: Mapping[str, Any] | None = None,
    slabs: int = layout.CHUNK_SLABS,
) -> tuple[zarr.Group, zarr.Array]:
    """Create group ``pet_dynamic``: attributes, coordinates, header and an empty ``pet``.

    ``sidecar`` (the series' BIDS fields) is kept in the group's attributes under ``bids``.
    """
    name = layout.PET_DYNAMIC_GROUP
    attrs = group_attrs(layout.IMAGE_ARRAY[name], series.grid, frame_axis=True)
    if sidecar:
        attrs["bids"] = dict(sidecar)
    group = root.create_group(name, attributes=attrs)
    image = create_frames_array(
        group,
        layout.IMAGE_ARRAY[name],
        shape=series.shape,
        dtype=DTYPE,
        slabs=slabs,
        attrs={
            "units": units,
            "long_name": "dynamic PET",
            # CF: these (t,) arrays are coordinates of the image, not variables of their own
            "coordinates": "frame_start frame_duration",
        },
    )
    for dim, mm in series.grid.coords().items():
        write_array(group, dim, mm, dims=(dim,), attrs={"units": "mm", "axis": dim.upper()})
    # times are seconds from the series' BIDS TimeZero (hedyPET: the injection)
    time_attrs = {"units": "s", "axis": "T", "long_name": "frame mid time"}
    write_array(group, "t", times.middle, dims=("t",), attrs=time_attrs)
    for key, values, long_name in (
        ("frame_start", times.start, "frame start time"),
        ("frame_duration", times.duration, "frame duration"),
    ):
        seconds = np.asarray(values, dtype=np.float64)
        write_array(group, key, seconds, dims=("t",), attrs={"units": "s", "long_name": long_name})
    write_nifti_header(group, series.header)
    return group, image


def stream_frames(
    array: zarr.Array,
    series: DynamicSeries,
    options: Mapping[str, Any] | None = None,
    *,
    allow_oblique: bool = False,
    threads: int = 2,
) -> tuple[Stored, SourceFile]:
    """Gunzip ``series`` once and write its frames into ``array``; return (its chunks'
    CRC32 as stored, source).

    When the file's slice axis is the canonical z axis (any axial series), the file is read
    one chunk of slices at a time, in file order, while ``threads`` threads compress the
    previous chunks: memory is a few ``(64, ny, nx)`` slabs. Otherwise it is read a frame at
    a time (two frames in memory). The source's sha256 is computed on the way.
    """
    with open_nifti(series.uri, options) as stream:
        found = stream.shape_zyx
        if found[0] != series.n_frames or math.prod(found) != math.prod(series.shape):
            raise InvalidInputError(f"{series.uri}: changed while it was being converted")
        ornt, _ = stream.orientation(allow_oblique=allow_oblique)
        slope, inter = stream.header.get_slope_inter()
        units, by_slab = _file_units(found, ornt, int(array.chunks[1]))
        buffers = threads + 2 if by_slab else 2  # see FrameWriter.submit
        # closing(): on failure the reader thread stops before the stream is closed
        with (
            FrameWriter(array, threads=threads) as writer,
            closing(_read_ahead(stream, units, buffers=buffers)) as pieces,
        ):
            for (t, z0), raw in pieces:
                canonical = to_canonical_zyx(apply_scaling(raw, slope, inter, DTYPE), ornt)
                if by_slab:
                    writer.submit(t, z0, canonical)
                else:
                    writer.write(t, canonical)
        source = stream.finish()
    return writer.stored, source


# (frame, first file slice, end file slice, first canonical slice), in file order
_Unit = tuple[int, int, int, int]


def _file_units(shape: tuple[int, ...], ornt: np.ndarray, step: int) -> tuple[list[_Unit], bool]:
    """How to cut the file into reads: chunk-aligned slabs, or whole frames.

    Slabs need the file's slice axis to be the canonical z (flipped or not); a flipped one
    yields the canonical chunks last to first, each still one contiguous run of the file.

    >>> ornt = np.array([[0, 1], [1, 1], [2, -1]])  # z runs backwards in the file
    >>> _file_units((1, 5, 2, 2), ornt, 2)
    ([(0, 0, 1, 4), (0, 1, 3, 2), (0, 3, 5, 0)], True)
    """
    nt, nz = shape[0], shape[1]
    if int(ornt[2, 0]) != 2:
        return [(t, 0, nz, 0) for t in range(nt)], False
    chunks = [(c, min(c + step, nz)) for c in range(0, nz, step)]
    if ornt[2, 1] < 0:
        per_frame = [(nz - c1, nz - c0, c0) for c0, c1 in reversed(chunks)]
    else:
        per_frame = [(c0, c1, c0) for c0, c1 in chunks]
    return [(t, f0, f1, c0) for t in range(nt) for f0, f1, c0 in per_frame], True


def _read_ahead(
    stream: NiftiStream, units: list[_Unit], *, buffers: int
) -> Generator[tuple[tuple[int, int], np.ndarray]]:
    """Yield ``((frame, first canonical slice), raw file-order slices)`` for each unit.

    A thread gunzips the next unit meanwhile. ``buffers`` buffers take turns: a yielded
    array stays valid until ``buffers - 1`` further units have been asked for.
    """
    ny, nx = stream.shape_zyx[2:]
    depth = max(f1 - f0 for _, f0, f1, _ in units)
    dtype = stream.header.get_data_dtype()
    ring = [np.empty((depth, ny, nx), dtype=dtype) for _ in range(min(buffers, len(units)))]

    def read(i: int) -> np.ndarray:
        _, f0, f1, _ = units[i]
        return stream.read_into(ring[i % len(ring)][: f1 - f0])

    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(read, 0)
        for i, (t, _, _, c0) in enumerate(units):
            raw = pending.result()
            if i + 1 < len(units):
                pending = reader.submit(read, i + 1)
            yield (t, c0), raw
