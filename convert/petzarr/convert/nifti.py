"""Reading NIfTI volumes fast, from local paths and ``s3://`` URLs, into canonical (z, y, x).

The contract of :func:`read_nifti`:

- the header is read and checked against the file size *before* any voxel buffer is
  allocated (for ``.nii.gz`` against the gzip trailer's ISIZE), so a truncated or lying
  file fails fast with a message naming it;
- the voxels are gunzipped with ISA-L (a decompression thread feeding the reader) straight
  into one preallocated buffer, while the compressed bytes are hashed (sha256);
- ``scl_slope``/``scl_inter`` are applied;
- the array is reoriented to closest-canonical RAS+ and returned as a C-ordered
  ``(z, y, x)`` view (``(t, z, y, x)`` for 4D) — the transpose of nibabel's ``(x, y, z)``
  array — using flips and transposes only, so no voxel is copied twice;
- oblique affines are refused unless ``allow_oblique=True``.

:func:`open_nifti` gives the header first and streams the voxels afterwards, which is
how 4D series are read frame by frame with bounded memory.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import nibabel as nib
import numpy as np
from isal import igzip_threaded

from petzarr.cohort.config import get_float, get_int
from petzarr.cohort.errors import (
    CorruptFileError,
    InvalidInputError,
    MissingSourceError,
    ObliqueAffineError,
)
from petzarr.cohort.grid import Grid
from petzarr.cohort.metadata import SourceFile
from petzarr.cohort.storage import filesystem

__all__ = [
    "Grid",
    "NiftiStream",
    "NiftiVolume",
    "canonical_grid",
    "open_nifti",
    "read_nifti",
    "source_file",
]

GZIP_MAGIC = b"\x1f\x8b"
MAX_DEFLATE_RATIO = 1032  # deflate cannot expand data by more than this
_HEADER_PEEK = 540  # large enough for a NIfTI-2 header


@dataclass(frozen=True)
class NiftiVolume:
    """A volume in canonical orientation: ``data`` is ``(z, y, x)`` or ``(t, z, y, x)``."""

    data: np.ndarray
    affine: np.ndarray  # canonical (x, y, z) affine, as nibabel's as_closest_canonical gives
    header: nib.Nifti1Header  # canonical header describing ``data`` as stored
    source: SourceFile

    @property
    def grid(self) -> Grid:
        return canonical_grid(self.affine, self.data.shape[-3:])


def canonical_grid(affine: np.ndarray, shape_zyx: tuple[int, ...]) -> Grid:
    """The :class:`Grid` of a canonical affine (exact for axis-aligned affines)."""
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return Grid(
        shape=tuple(int(n) for n in shape_zyx),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in spacing[::-1]),  # type: ignore[arg-type]
        origin=tuple(float(o) for o in affine[:3, 3][::-1]),  # type: ignore[arg-type]
    )


def source_file(uri: str, options: Mapping[str, Any] | None = None) -> SourceFile:
    """Describe ``uri`` from a listing (no read): size, ETag or mtime."""
    fs, path = filesystem(uri, options)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise MissingSourceError(f"{uri}: no such file") from None
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    mtime = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or ""
    return SourceFile(uri=str(uri), size=int(info["size"]), etag=etag, mtime=str(mtime))


class _HashingReader(io.RawIOBase):
    """Pass-through reader that hashes what it reads (the bytes as stored)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        if n:
            self.sha256.update(memoryview(b)[:n])
        return n or 0


class NiftiStream:
    """An open NIfTI file: header parsed and checked, voxels not yet read.

    Use as a context manager; read voxels with :meth:`read_into` in file order (for 3D,
    the whole volume; for 4D, frame by frame).
    """

    def __init__(self, uri: str, options: Mapping[str, Any] | None = None) -> None:
        self.uri = str(uri)
        self.info = source_file(uri, options)
        fs, path = filesystem(uri, options)
        self._block = get_int("nifti.gunzip_block_size")
        self._raw = fs.open(path, "rb", block_size=get_int("nifti.read_block_size"))
        self._hashing = _HashingReader(self._raw)
        magic = self._raw.read(2)
        self._raw.seek(0)
        self.compressed = magic == GZIP_MAGIC
        trailer_isize = None
        if self.compressed:
            if self.info.size < 18:
                self.close()
                raise CorruptFileError(f"{uri}: only {self.info.size} bytes, not a gzip file")
            trailer_isize = int.from_bytes(fs.cat_file(path, start=self.info.size - 4), "little")
            self._stream: Any = igzip_threaded.open(self._hashing, "rb", block_size=self._block)
        else:
            self._stream = io.BufferedReader(self._hashing, buffer_size=self._block)
        try:
            self.header = self._read_header()
            self._check_size(trailer_isize)
        except Exception:
            self.close()
            raise
        self._pos = self._header_bytes

    # -- header -------------------------------------------------------------------------
    def _read_header(self) -> nib.Nifti1Header:
        peek = self._read_exact(348, what="the header")
        sizeof_hdr = int.from_bytes(peek[:4], "little")
        if sizeof_hdr not in (348, 540):
            sizeof_hdr = int.from_bytes(peek[:4], "big")
        if sizeof_hdr == 540:
            peek += self._read_exact(540 - 348, what="the NIfTI-2 header")
            klass: Any = nib.Nifti2Header
        elif sizeof_hdr == 348:
            klass = nib.Nifti1Header
        else:
            raise CorruptFileError(f"{self.uri}: not a NIfTI file (sizeof_hdr {sizeof_hdr})")
        try:
            header = klass.from_fileobj(io.BytesIO(peek), check=True)
        except Exception as exc:
            raise CorruptFileError(f"{self.uri}: unreadable NIfTI header: {exc}") from None
        # single-file NIfTI: voxels follow the header and the 4-byte extension flag; some
        # writers leave vox_offset 0, which readers (nibabel too) take as that minimum
        offset = max(int(header.get_data_offset()), len(peek) + 4)
        self._read_exact(offset - len(peek), what="the header extensions")  # skip them
        self._header_bytes = offset
        return header

    def _check_size(self, trailer_isize: int | None) -> None:
        shape = self.header.get_data_shape()
        if len(shape) > 4 or any(n <= 0 for n in shape):
            raise CorruptFileError(f"{self.uri}: unsupported data shape {shape}")
        expected = self._header_bytes + math.prod(shape) * self.header.get_data_dtype().itemsize
        if not self.compressed:
            ok = self.info.size >= expected
            found = f"the file has {self.info.size}"
        else:
            ok = (
                trailer_isize == expected % 2**32 and expected <= MAX_DEFLATE_RATIO * self.info.size
            )
            found = f"the gzip trailer says {trailer_isize} (mod 2**32)"
        if not ok:
            raise CorruptFileError(
                f"{self.uri}: header describes {shape} {self.header.get_data_dtype()} "
                f"({expected} bytes uncompressed) but {found}: the file is truncated or its "
                "header is wrong; re-download it"
            )

    # -- voxels -------------------------------------------------------------------------
    @property
    def shape_zyx(self) -> tuple[int, ...]:
        """Shape of the voxel array in file order, reversed: (z, y, x) or (t, z, y, x)."""
        return tuple(int(n) for n in self.header.get_data_shape()[::-1])

    def read_into(self, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (C-contiguous, the file's dtype) with the next voxels in file order."""
        view = memoryview(out).cast("B")
        done = 0
        try:
            while done < len(view):
                n = self._stream.readinto(view[done:])
                if not n:
                    break
                done += n
        except (EOFError, OSError, ValueError) as exc:
            raise CorruptFileError(
                f"{self.uri}: truncated or corrupt compressed data ({exc}); re-download it"
            ) from None
        if done < len(view):
            raise CorruptFileError(
                f"{self.uri}: ended after {self._pos + done} bytes; the header promises more"
            )
        self._pos += done
        return out

    def finish(self) -> SourceFile:
        """Read to the end (validating the gzip stream) and return the source with its hash."""
        try:
            while self._stream.read(self._block):
                pass
        except (EOFError, OSError, ValueError) as exc:
            raise CorruptFileError(
                f"{self.uri}: truncated or corrupt compressed data ({exc}); re-download it"
            ) from None
        while self._hashing.read(self._block):  # bytes past the stream (plain .nii tail)
            pass
        return replace(self.info, sha256=self._hashing.sha256.hexdigest())

    def _read_exact(self, n: int, *, what: str) -> bytes:
        try:
            data = self._stream.read(n)
        except (EOFError, OSError, ValueError) as exc:
            raise CorruptFileError(
                f"{self.uri}: truncated or corrupt compressed data in {what} ({exc}); "
                "re-download it"
            ) from None
        if len(data) != n:
            if what == "the header" and not data:
                raise CorruptFileError(f"{self.uri}: empty file (0 bytes); re-download it")
            raise CorruptFileError(f"{self.uri}: file ends inside {what}; re-download it")
        return data

    def close(self) -> None:
        if hasattr(self, "_stream"):
            self._stream.close()
        self._raw.close()

    def __enter__(self) -> NiftiStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- orientation --------------------------------------------------------------------
    def orientation(self, *, allow_oblique: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The nibabel orientation to canonical and the canonical affine."""
        affine = self.header.get_best_affine()
        rot = affine[:3, :3] / np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        ornt = nib.io_orientation(affine)
        perm = np.zeros((3, 3))
        perm[ornt[:, 0].astype(int), np.arange(3)] = ornt[:, 1]
        # float32 headers carry ~1e-7 round-off in their direction cosines
        tol = get_float("nifti.oblique_tol")
        if not allow_oblique and np.abs(rot - perm).max() > tol:
            raise ObliqueAffineError(
                f"{self.uri}: oblique affine (direction cosines off-axis by "
                f"{np.abs(rot - perm).max():.3g}); petzarr stores axis-aligned grids. Pass "
                "allow_oblique=True (--allow-oblique) to store the closest canonical grid."
            )
        spatial = self.header.get_data_shape()[:3]
        canonical = affine @ nib.orientations.inv_ornt_aff(ornt, spatial)
        return ornt, canonical


def to_canonical_zyx(data_zyx: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Reorient a file-order ``(..., z, y, x)`` array to canonical, as views only."""
    lead = data_zyx.ndim - 3
    xyz = np.moveaxis(data_zyx, range(lead, lead + 3), (lead + 2, lead + 1, lead))
    for axis, flip in enumerate(ornt[:, 1]):
        if flip < 0:
            xyz = np.flip(xyz, axis=lead + axis)
    xyz = np.moveaxis(xyz, [lead + int(a) for a in range(3)], [lead + int(o) for o in ornt[:, 0]])
    return np.moveaxis(xyz, (lead, lead + 1, lead + 2), (lead + 2, lead + 1, lead))


def canonical_header(
    header: Any, canonical: np.ndarray, shape_zyx: tuple[int, ...], dtype: Any
) -> nib.Nifti1Header:
    """A NIfTI-1 header describing the canonical array as petzarr stores it."""
    hdr = nib.Nifti1Header.from_header(header)
    hdr.set_data_shape(shape_zyx[::-1])
    hdr.set_data_dtype(dtype)
    hdr.set_sform(canonical, code=int(header["sform_code"]) or 1)
    hdr.set_qform(canonical, code=int(header["qform_code"]) or 1)
    hdr.set_slope_inter(1.0, 0.0)
    return hdr


def apply_scaling(
    raw: np.ndarray, slope: float | None, inter: float | None, dtype: Any
) -> np.ndarray:
    """``raw * slope + inter`` as ``dtype`` (a no-op view when there is nothing to apply).

    Integer targets need integral slope and intercept, computed exactly in int64 blocks.
    """
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    dtype = np.dtype(dtype)
    if slope == 1.0 and inter == 0.0 and raw.dtype == dtype:
        return raw
    if dtype.kind == "f":
        out = raw.astype(dtype)
        if slope != 1.0:
            out *= dtype.type(slope)
        if inter != 0.0:
            out += dtype.type(inter)
        return out
    if raw.dtype.kind == "f" and not np.array_equal(raw, np.trunc(raw)):
        raise CorruptFileError(f"non-integral values in {raw.dtype} data that must be {dtype}")
    if slope != int(slope) or inter != int(inter):
        raise CorruptFileError(
            f"non-integral scl_slope/scl_inter ({slope}, {inter}) for integer data"
        )
    lo, hi = (raw.min(), raw.max()) if raw.size else (0, 0)
    lo, hi = sorted((int(lo) * int(slope) + int(inter), int(hi) * int(slope) + int(inter)))
    info = np.iinfo(dtype)
    if lo < info.min or hi > info.max:
        raise CorruptFileError(f"values {lo}..{hi} do not fit {dtype}")
    if slope == 1.0 and inter == 0.0:
        return raw.astype(dtype)
    return (raw.astype(np.int64) * int(slope) + int(inter)).astype(dtype)


def read_nifti(
    uri: str,
    options: Mapping[str, Any] | None = None,
    *,
    dtype: Any = None,
    allow_oblique: bool = False,
    volume: bool = False,
) -> NiftiVolume:
    """Read a NIfTI volume into canonical RAS+ ``(z, y, x)`` (or ``(t, z, y, x)``).

    Parameters
    ----------
    uri : str
        Local path or fsspec URL (``s3://bucket/key.nii.gz``).
    options : mapping, optional
        fsspec storage options for ``uri``.
    dtype : numpy dtype, optional
        Type of the returned voxels after ``scl_slope``/``scl_inter``; default the file's
        type when unscaled, float32 when scaled.
    allow_oblique : bool
        Store oblique data on its closest canonical grid instead of refusing it.
    volume : bool
        Require one 3-D volume (a 4-D file of one frame is read as its frame); anything
        else is refused from the header, before a voxel is read.

    Examples
    --------
    >>> import nibabel as nib, numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "v.nii.gz")
    >>> arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    >>> nib.save(nib.Nifti1Image(arr, np.diag([-2.0, 1, 3, 1])), path)
    >>> vol = read_nifti(path)
    >>> vol.data.shape, vol.grid.spacing, int(vol.data[0, 0, 0])
    ((4, 3, 2), (3.0, 1.0, 2.0), 12)
    """
    with NiftiStream(uri, options) as stream:
        ornt, canonical = stream.orientation(allow_oblique=allow_oblique)
        shape = stream.shape_zyx
        if volume and (len(shape) < 3 or any(n != 1 for n in shape[:-3])):
            raise InvalidInputError(
                f"{uri}: a {len(shape)}-D image of shape {stream.header.get_data_shape()} "
                "(x, y, z, ...); expected one 3-D volume. A dynamic PET series belongs in a "
                "hedyPET/BIDS source's dynamic PET; otherwise save the single frame as 3-D"
            )
        raw = np.empty(shape, dtype=stream.header.get_data_dtype())
        stream.read_into(raw)
        source = stream.finish()
        slope, inter = stream.header.get_slope_inter()
        if dtype is None:
            scaled = slope not in (None, 1.0) or inter not in (None, 0.0)
            dtype = np.float32 if scaled else raw.dtype.newbyteorder("=")
        try:
            data = apply_scaling(raw, slope, inter, dtype)
        except CorruptFileError as exc:
            raise CorruptFileError(f"{uri}: {exc}") from None
        data = to_canonical_zyx(data, ornt)
        if volume:
            data = data.reshape(data.shape[-3:])
        header = canonical_header(stream.header, canonical, data.shape, data.dtype)
    # the stored header holds the affine in float32: take it from there, so coordinates,
    # OME transforms and the NIfTI header are exactly the same numbers
    return NiftiVolume(data=data, affine=header.get_best_affine(), header=header, source=source)


def open_nifti(uri: str, options: Mapping[str, Any] | None = None) -> NiftiStream:
    """Open ``uri`` for streaming; the header is parsed and size-checked already."""
    return NiftiStream(uri, options)


def iter_frames(
    stream: NiftiStream, *, allow_oblique: bool = False, dtype: Any = np.float32
) -> Iterator[np.ndarray]:
    """Yield the frames of a 4D file one at a time, each canonical ``(z, y, x)``.

    Memory stays at one frame whatever the number of frames.
    """
    ornt, _ = stream.orientation(allow_oblique=allow_oblique)
    shape = stream.shape_zyx
    if len(shape) != 4:
        raise CorruptFileError(f"{stream.uri}: expected a 4D series, found shape {shape[::-1]}")
    slope, inter = stream.header.get_slope_inter()
    buf = np.empty(shape[1:], dtype=stream.header.get_data_dtype())
    for _ in range(shape[0]):
        stream.read_into(buf)
        yield to_canonical_zyx(apply_scaling(buf, slope, inter, dtype), ornt)
