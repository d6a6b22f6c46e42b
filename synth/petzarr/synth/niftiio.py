"""Writing ``.nii.gz`` volumes slab by slab, in RAS or LPS storage, with ISA-L gzip.

NIfTI stores voxels x-fastest, so the bytes of a C-ordered canonical ``(z, y, x)`` array
are the file's data block as they are, and an axial slab is a contiguous run of it: a
volume can be rendered and compressed one slab at a time, in bounded memory, while a
background thread deflates the previous slab.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Literal

import nibabel as nib
import numpy as np
from isal import igzip_threaded

from petzarr.cohort.grid import Grid

__all__ = ["GZIP_LEVEL", "NiftiSlabWriter", "Orientation", "stored_affine"]

Orientation = Literal["RAS", "LPS"]
GZIP_LEVEL = 1  # ISA-L levels 1 and 2 cost about the same CPU here; 2 saves ~2% of size
_VOX_OFFSET = 352  # 348-byte header + 4-byte empty extension flag


def stored_affine(grid: Grid, orientation: Orientation) -> np.ndarray:
    """The ``(x, y, z)`` affine of ``grid`` stored in ``orientation``.

    LPS storage runs the x and y indices the other way (negative diagonal) and starts at
    the canonical grid's far corner, so every voxel keeps its world position.

    >>> g = Grid((2, 3, 4), (2.0, 1.0, 0.5), (10.0, 20.0, 30.0))
    >>> stored_affine(g, "LPS")[:3].tolist()
    [[-0.5, 0.0, 0.0, 31.5], [0.0, -1.0, 0.0, 22.0], [0.0, 0.0, 2.0, 10.0]]
    """
    aff = grid.affine
    if orientation == "LPS":
        nx, ny = grid.shape[2], grid.shape[1]
        aff[0, 3] += (nx - 1) * aff[0, 0]
        aff[1, 3] += (ny - 1) * aff[1, 1]
        aff[0, 0], aff[1, 1] = -aff[0, 0], -aff[1, 1]
    elif orientation != "RAS":
        raise ValueError(f"orientation must be 'RAS' or 'LPS', not {orientation!r}")
    return aff


def _header(
    grid: Grid, dtype: np.dtype, orientation: Orientation, slope: float | None, frames: int | None
) -> bytes:
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(dtype)
    hdr.set_data_shape(grid.shape[::-1] if frames is None else (*grid.shape[::-1], frames))
    aff = stored_affine(grid, orientation)
    hdr.set_qform(aff, code=1)  # scanner
    hdr.set_sform(aff, code=1)
    if frames is not None:  # frames are not evenly spaced: their times are in the sidecar
        hdr.set_zooms((*hdr.get_zooms()[:3], 0.0))
    hdr.set_xyzt_units("mm", "sec")
    if slope is not None:
        hdr.set_slope_inter(slope, 0.0)
    hdr["descrip"] = b"petzarr synthetic"
    hdr["vox_offset"] = _VOX_OFFSET
    return hdr.binaryblock + b"\x00" * (_VOX_OFFSET - len(hdr.binaryblock))


class NiftiSlabWriter:
    """Write one ``.nii.gz`` from canonical ``(z, y, x)`` slabs, first slice first.

    Parameters
    ----------
    path : str or PathLike
        File to write (replaced if it exists).
    grid : Grid
        The canonical grid of the whole volume.
    dtype : dtype
        Stored voxel type; slabs are cast to it (``uint8`` labels, ``int16`` CT, ...).
    orientation : {"RAS", "LPS"}
        Storage orientation; LPS flips x and y on the way out.
    slope : float, optional
        ``scl_slope`` (``scl_inter`` is then 0): slabs must already hold stored values.
    frames : int, optional
        Write a 4D series of this many frames (``(x, y, z, t)``): slabs run through the
        first frame, then the second, ... (``pixdim[4]`` is 0: frame times go in a sidecar).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> g = Grid((2, 3, 4), (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
    >>> data = np.arange(24, dtype=np.uint8).reshape(g.shape)
    >>> with NiftiSlabWriter(p, g, np.uint8, "LPS") as w:
    ...     w.write(data[:1]); w.write(data[1:])
    >>> img = nib.as_closest_canonical(nib.load(p))
    >>> bool((np.asarray(img.dataobj).T == data).all())
    True
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: Grid,
        dtype: np.dtype | type,
        orientation: Orientation = "RAS",
        slope: float | None = None,
        *,
        frames: int | None = None,
        level: int = GZIP_LEVEL,
    ) -> None:
        self.path, self.grid = path, grid
        self.dtype = np.dtype(dtype)
        self.orientation = orientation
        self._written = 0
        self._slices = grid.shape[0] * (1 if frames is None else frames)
        header = _header(grid, self.dtype, orientation, slope, frames)
        self._file = igzip_threaded.open(path, "wb", compresslevel=level, threads=1)
        self._file.write(header)

    def write(self, slab: np.ndarray) -> None:
        """Append canonical ``(nz, ny, nx)`` slices."""
        if slab.shape[1:] != self.grid.shape[1:]:
            raise ValueError(f"{self.path}: slab {slab.shape} does not fit grid {self.grid.shape}")
        if self.orientation == "LPS":
            slab = slab[:, ::-1, ::-1]
        self._file.write(np.ascontiguousarray(slab, dtype=self.dtype).data)
        self._written += slab.shape[0]

    def close(self) -> None:
        self._file.close()
        if self._written != self._slices:
            raise ValueError(f"{self.path}: wrote {self._written} of {self._slices} slices")

    def __enter__(self) -> NiftiSlabWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()
