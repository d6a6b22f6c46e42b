"""Rendering a phantom onto a grid: label maps, CT in HU, PET in Bq/mL, slab by slab.

The phantom is painted into an *owner* map (which structure each voxel centre lies in);
everything else is a lookup table applied to it. CT and label maps come from the owner map
on the CT grid; PET is the owner map on the PET grid (the same world-space phantom, so the
two line up), turned into activity, blurred to PET resolution and given count noise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from petzarr.cohort.grid import Grid
from petzarr.cohort.layout import ENHANCE_GROUPS
from petzarr.synth import _kernels
from petzarr.synth.anatomy import Phantom
from petzarr.synth.niftiio import NiftiSlabWriter, Orientation
from petzarr.synth.shapes import paint
from petzarr.synth.tissues import BODY_COMPOSITION, TISSUES

__all__ = [
    "CT_NOISE_HU",
    "PET_NOISE",
    "Luts",
    "displaced",
    "make_luts",
    "pet_slabs",
    "rasterise",
    "rasterise_all",
    "write_ct",
    "write_dynamic_pet",
    "write_pet",
]

CT_NOISE_HU = 10.0  # standard deviation of CT noise
PET_NOISE = 0.10  # relative PET noise at the reference (liver) activity; it scales as sqrt
_TRUNCATE = 3.0  # gaussian kernel radius, in sigmas


@dataclass(frozen=True)
class Luts:
    """Per structure id (0 = outside air): CT number, activity and each group's label."""

    hu: np.ndarray  # float32
    activity: np.ndarray  # float32, Bq/mL
    labels: Mapping[str, np.ndarray]  # group name -> uint8

    @property
    def size(self) -> int:
        return len(self.hu)


def make_luts(phantom: Phantom, suv: Mapping[str, float], denominator: float) -> Luts:
    """Lookup tables of ``phantom`` for a subject with tissue SUVs ``suv``.

    Parameters
    ----------
    phantom : Phantom
        The structures.
    suv : mapping of str to float
        SUV of every tissue in :data:`~petzarr.synth.tissues.TISSUES`.
    denominator : float
        SUV denominator, injected activity decayed to scan start / body weight [Bq/g];
        activity = SUV x it.
    """
    structures = phantom.structures
    tissues = ["air", *(st.tissue for st in structures)]
    hu = np.array([TISSUES[t].hu for t in tissues], dtype=np.float32)
    activity = np.array([suv[t] * denominator for t in tissues], dtype=np.float32)
    labels = {g.name: np.zeros(len(tissues), dtype=np.uint8) for g in ENHANCE_GROUPS}
    for i, st in enumerate(structures, start=1):
        if st.group is not None:
            labels[st.group][i] = st.label
        labels["body_composition"][i] = BODY_COMPOSITION.get(st.tissue, 0)
    return Luts(hu, activity, labels)


def _axes(grid: Grid, z0: int, z1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = grid.coords()
    return (
        c["x"].astype(np.float32),
        c["y"].astype(np.float32),
        c["z"][z0:z1].astype(np.float32),
    )


def rasterise(phantom: Phantom, grid: Grid, z0: int = 0, z1: int | None = None) -> np.ndarray:
    """The owner map of slices ``z0:z1`` of ``grid``: structure id at each voxel centre.

    >>> from petzarr.synth.anatomy import Anatomy, build_phantom
    >>> ph = build_phantom(Anatomy(height_mm=1750.0, z_soles=-1700.0))
    >>> g = Grid((3, 128, 128), (5.0, 4.0, 4.0), (-500.0, -254.0, -254.0))
    >>> owner = rasterise(ph, g)
    >>> sorted({ph.structures[i - 1].name for i in np.unique(owner) if i})[:4]
    ['aorta', 'autochthon_left', 'autochthon_right', 'body_fat']
    """
    z1 = grid.shape[0] if z1 is None else z1
    owner = np.zeros((z1 - z0, *grid.shape[1:]), dtype=np.uint8)
    if len(phantom.structures) > 255:  # pragma: no cover - the phantom has ~150
        raise ValueError("more than 255 structures do not fit a uint8 owner map")
    x, y, z = _axes(grid, z0, z1)
    # the phantom is drawn with +x towards the patient's left; RAS+ has +x towards the
    # right: paint it on the mirrored (still ascending) x axis, then mirror back
    paint(owner[..., ::-1], -x[::-1], y, z, phantom.items)
    return owner


def write_ct(
    ct_path: str | os.PathLike[str],
    seg_paths: Mapping[str, str | os.PathLike[str]],
    phantom: Phantom,
    luts: Luts,
    grid: Grid,
    *,
    orientation: Orientation,
    rng: np.random.Generator,
    slab: int,
) -> np.ndarray:
    """Write the CT (int16 HU) and the label maps (uint8) of every group on ``grid``.

    Returns
    -------
    ndarray
        Voxel count of each structure id on the CT grid (``luts.size`` entries).
    """
    groups = list(seg_paths)
    hu = np.rint(luts.hu).astype(np.int16)
    labels = np.stack([luts.labels[g] for g in groups])
    bank = np.rint(_kernels.noise_bank(rng, math.prod(grid.shape)) * CT_NOISE_HU).astype(np.int16)
    counts = np.zeros(luts.size, dtype=np.int64)
    writers = [NiftiSlabWriter(seg_paths[g], grid, np.uint8, orientation) for g in groups]
    try:
        with NiftiSlabWriter(ct_path, grid, np.int16, orientation) as ct_file:
            for z0 in range(0, grid.shape[0], slab):
                owner = rasterise(phantom, grid, z0, min(z0 + slab, grid.shape[0]))
                offsets = _kernels.row_offsets(
                    rng, bank, owner.shape[0] * owner.shape[1], owner.shape[2]
                )
                ct = np.empty(owner.shape, dtype=np.int16)
                segs = np.empty((len(groups), *owner.shape), dtype=np.uint8)
                _kernels.ct_pass(owner, hu, labels, bank, offsets, ct, segs, counts)
                ct_file.write(ct)
                for w, seg in zip(writers, segs):
                    w.write(seg)
    finally:
        for w in writers:
            w.close()
    return counts


def pet_slabs(
    owner: np.ndarray,
    activity: np.ndarray,
    grid: Grid,
    *,
    fwhm_mm: float,
    k: float,
    rng: np.random.Generator,
    bank: np.ndarray,
    slab: int,
    floor: float = 0.0,
    inv_slope: float = 0.0,
    dtype: np.dtype | type = np.float32,
) -> Iterator[np.ndarray]:
    """The PET of owner map ``owner`` (whole ``grid``) slab by slab, first slice first.

    Structure ``i`` holds ``activity[i]`` [Bq/mL]; the image is that blurred to ``fwhm_mm``
    (each slab with a halo, so slabs join seamlessly) with noise of variance ``k a`` at
    blurred activity ``a`` (none where ``a`` is 0), clipped below at ``floor``. With
    ``inv_slope > 0`` slabs hold ``rint(value * inv_slope)`` for int16 storage.
    """
    nz = grid.shape[0]
    sigma = [fwhm_mm / (2 * math.sqrt(2 * math.log(2))) / sp for sp in grid.spacing]
    halo = int(_TRUNCATE * sigma[0] + 0.5) + 1
    table = np.ascontiguousarray(activity, dtype=np.float32)
    for z0 in range(0, nz, slab):
        z1 = min(z0 + slab, nz)
        lo, hi = max(z0 - halo, 0), min(z1 + halo, nz)
        act = np.empty((hi - lo, *grid.shape[1:]), dtype=np.float32)
        _kernels.lut(owner[lo:hi], table, act)
        act = gaussian_filter(act, sigma, mode="nearest", truncate=_TRUNCATE)[z0 - lo : z1 - lo]
        offsets = _kernels.row_offsets(rng, bank, act.shape[0] * act.shape[1], act.shape[2])
        out = np.empty(act.shape, dtype=dtype)
        _kernels.pet_noise(
            act, np.float32(k), bank, offsets, np.float32(inv_slope), np.float32(floor), out
        )
        yield out


def rasterise_all(phantom: Phantom, grid: Grid, slab: int) -> np.ndarray:
    """The owner map of the whole of ``grid``, painted ``slab`` slices at a time."""
    nz = grid.shape[0]
    owner = np.empty(grid.shape, dtype=np.uint8)
    for z0 in range(0, nz, slab):
        owner[z0 : z0 + slab] = rasterise(phantom, grid, z0, min(z0 + slab, nz))
    return owner


def displaced(grid: Grid, shift_mm: Sequence[float]) -> Grid:
    """The grid to rasterise on so that the anatomy appears moved by ``shift_mm`` (z, y, x).

    Voxel k then shows what lies at ``origin + k * spacing - shift``; the file keeps ``grid``.
    """
    (z, y, x), (dz, dy, dx) = grid.origin, shift_mm
    return Grid(grid.shape, grid.spacing, (z - dz, y - dy, x - dx))


def write_pet(
    path: str | os.PathLike[str],
    phantom: Phantom,
    luts: Luts,
    grid: Grid,
    *,
    orientation: Orientation,
    rng: np.random.Generator,
    fwhm_mm: float,
    reference: float,
    as_int16: bool,
    slab: int,
    shift_mm: Sequence[float] = (0.0, 0.0, 0.0),
) -> float | None:
    """Write the PET in Bq/mL: activity blurred to ``fwhm_mm`` with count-like noise.

    ``shift_mm`` ``(dz, dy, dx)`` simulates motion: the anatomy is rendered displaced by it
    while the header keeps ``grid``, so the PET no longer lines up with the CT.

    Noise has standard deviation ``PET_NOISE * sqrt(a * reference)`` at blurred activity
    ``a`` (``PET_NOISE`` relative at ``reference``), and none outside the body. With
    ``as_int16`` the file holds int16 with ``scl_slope`` (``scl_inter`` 0) sized to the
    hottest tissue, as some scanners export.

    Returns
    -------
    float or None
        The ``scl_slope`` written, or None for float32.
    """
    owner = rasterise_all(phantom, displaced(grid, shift_mm), slab)
    slope = float(np.float32(1.5 * float(luts.activity.max()) / 32767)) if as_int16 else None
    dtype = np.int16 if as_int16 else np.float32
    bank = _kernels.noise_bank(rng, math.prod(grid.shape))
    with NiftiSlabWriter(path, grid, dtype, orientation, slope) as pet_file:
        for out in pet_slabs(
            owner,
            luts.activity,
            grid,
            fwhm_mm=fwhm_mm,
            k=PET_NOISE**2 * reference,
            rng=rng,
            bank=bank,
            slab=slab,
            inv_slope=1.0 / slope if slope else 0.0,
            dtype=dtype,
        ):
            pet_file.write(out)
    return slope


def write_dynamic_pet(
    path: str | os.PathLike[str],
    owner: np.ndarray,
    frames: np.ndarray,
    grid: Grid,
    *,
    orientation: Orientation,
    rng: np.random.Generator,
    fwhm_mm: float,
    k: Sequence[float],
    slab: int,
) -> None:
    """Write a 4D float32 series, frame by frame and slab by slab, in bounded memory.

    Frame ``f`` is :func:`pet_slabs` of ``frames[f]`` (activity per structure id) with noise
    variance ``k[f] a``, not clipped: frame means are unbiased. Memory stays at a few slabs
    (plus ``owner``) whatever the number of frames.
    """
    bank = _kernels.noise_bank(rng, math.prod(grid.shape))
    with NiftiSlabWriter(path, grid, np.float32, orientation, frames=len(frames)) as out:
        for activity, k_frame in zip(frames, k, strict=True):
            for s in pet_slabs(
                owner,
                activity,
                grid,
                fwhm_mm=fwhm_mm,
                k=k_frame,
                rng=rng,
                bank=bank,
                slab=slab,
                floor=-np.inf,
            ):
                out.write(s)
