"""Size presets and where a subject's CT and PET grids sit in the world.

Every spacing and origin is a multiple of 1/1024 mm, so it is exact in the float32 NIfTI
header whichever way round (RAS or LPS) it is stored, and a subject's world coordinates do
not depend on its storage orientation. The PET grid is coarser, wider, and offset from the
CT grid so that no PET voxel centre falls halfway between two CT centres (nearest-neighbour
resampling of the label maps onto the PET grid has no ties).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from petzarr.cohort.grid import Grid

__all__ = [
    "HEDY_SIZES",
    "SIZES",
    "HedySize",
    "Size",
    "nearest_tie_margin",
    "place_grids",
    "place_hedy_grids",
]

_QUANTUM = 1024.0  # positions are multiples of 1/1024 mm
TIE_MARGIN = 1e-3  # PET centres stay this far (in CT voxels) from CT half-way points


@dataclass(frozen=True)
class Size:
    """A size preset; shapes and spacings are NIfTI ``(x, y, z)``.

    ``top`` places the top of the field of view: ``(f_lo, f_hi, mm_lo, mm_hi)`` puts it at a
    fraction ``U(f_lo, f_hi)`` of standing height above the soles plus ``U(mm_lo, mm_hi)`` mm.
    """

    name: str
    ct_shape: tuple[int, int, int]
    ct_spacing: tuple[float, float, float]
    pet_shape: tuple[int, int, int]
    pet_spacing: tuple[float, float, float]
    top: tuple[float, float, float, float]
    pet_fwhm_mm: float  # PET resolution (gaussian blur FWHM)
    slab: int  # slices rendered at a time


SIZES: Final[dict[str, Size]] = {
    # neck to upper thigh at ~8 x 8 x 15 mm: every group is drawn, a few labels fall outside
    "tiny": Size(
        "tiny", (64, 64, 48), (7.8125, 7.8125, 15.0), (40, 40, 40), (13.0, 13.0, 18.0),
        (0.83, 0.87, 0.0, 0.0), 12.0, 64,
    ),
    # head to knees
    "small": Size(
        "small", (128, 128, 96), (3.90625, 3.90625, 10.0), (80, 80, 80), (6.5, 6.5, 12.0),
        (1.0, 1.0, -80.0, 20.0), 10.0, 96,
    ),
    # the real dimensions: 512 x 512 CT at 0.98 mm, 440 x 440 PET at 1.65 mm, 3 mm slices
    "full": Size(
        "full", (512, 512, 531), (0.9765625, 0.9765625, 3.0), (440, 440, 531),
        (1.6484375, 1.6484375, 3.0), (1.0, 1.0, 5.0, 50.0), 6.0, 48,
    ),
}  # fmt: skip


def _q(v: float) -> float:
    return round(v * _QUANTUM) / _QUANTUM


def _grid(
    shape_xyz: tuple[int, ...], spacing_xyz: tuple[float, ...], centre_xyz: np.ndarray
) -> Grid:
    origin = [_q(c - (n - 1) / 2 * sp) for n, sp, c in zip(shape_xyz, spacing_xyz, centre_xyz)]
    return Grid(
        shape=tuple(int(n) for n in shape_xyz[::-1]),  # type: ignore[arg-type]
        spacing=tuple(float(sp) for sp in spacing_xyz[::-1]),  # type: ignore[arg-type]
        origin=tuple(origin[::-1]),  # type: ignore[arg-type]
    )


def nearest_tie_margin(src: Grid, dst: Grid) -> float:
    """Smallest distance, in source voxels, of a ``dst`` centre from a source half-way point.

    0 means some ``dst`` voxel is exactly halfway between two ``src`` voxels along an axis.

    >>> a = Grid((1, 1, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    >>> nearest_tie_margin(a, Grid((1, 1, 2), (1.0, 1.0, 2.0), (0.0, 0.0, 0.5)))
    0.0
    """
    worst = 0.5
    for n, sp, o, n_s, sp_s, o_s in zip(
        dst.shape, dst.spacing, dst.origin, src.shape, src.spacing, src.origin
    ):
        u = (o + sp * np.arange(n) - o_s) / sp_s
        inside = (u > -0.5) & (u < n_s - 0.5)
        if inside.any():
            worst = min(worst, float(np.abs(u[inside] - np.floor(u[inside]) - 0.5).min()))
    return worst


def place_grids(
    size: Size, rng: np.random.Generator, *, height_mm: float, z_soles: float
) -> tuple[Grid, Grid]:
    """A subject's canonical CT and PET grids.

    Parameters
    ----------
    size : Size
        The preset.
    rng : Generator
        Draws the field-of-view position.
    height_mm, z_soles : float
        The subject's height and the world z of its soles (mm).

    Returns
    -------
    (Grid, Grid)
        CT and PET grids, RAS+ ``(z, y, x)``.
    """
    f_lo, f_hi, mm_lo, mm_hi = size.top
    top = z_soles + height_mm * rng.uniform(f_lo, f_hi) + rng.uniform(mm_lo, mm_hi)
    ct_extent = (size.ct_shape[2] - 1) * size.ct_spacing[2]
    centre = np.array([rng.uniform(-15, 15), rng.uniform(-10, 30), top - ct_extent / 2])
    ct = _grid(size.ct_shape, size.ct_spacing, centre)
    # a sub-voxel offset that is no multiple of the CT spacing, nudged until tie-free
    offset = np.asarray(size.ct_spacing) * np.array([0.37, -0.29, 0.41]) + rng.uniform(-2, 2, 3)
    for _ in range(100):
        pet = _grid(size.pet_shape, size.pet_spacing, centre + offset)
        if nearest_tie_margin(ct, pet) >= TIE_MARGIN:
            return ct, pet
        offset += np.asarray(size.ct_spacing) * 0.0137
    raise RuntimeError(f"no tie-free PET grid for size {size.name!r}")  # pragma: no cover


@dataclass(frozen=True)
class HedySize:
    """A hedyPET-layout size preset: CT, static PET and dynamic PET grids, NIfTI ``(x, y, z)``.

    ``top`` places the top of the field of view as :attr:`Size.top` does.
    """

    name: str
    ct_shape: tuple[int, int, int]
    ct_spacing: tuple[float, float, float]
    pet_shape: tuple[int, int, int]
    pet_spacing: tuple[float, float, float]
    dyn_shape: tuple[int, int, int]
    dyn_spacing: tuple[float, float, float]
    top: tuple[float, float, float, float]
    pet_fwhm_mm: float  # static PET resolution
    dyn_fwhm_mm: float  # dynamic PET resolution
    slab: int  # slices rendered at a time

    @property
    def frame_bytes(self) -> int:
        """Bytes of one float32 dynamic frame."""
        return 4 * self.dyn_shape[0] * self.dyn_shape[1] * self.dyn_shape[2]


HEDY_SIZES: Final[dict[str, HedySize]] = {
    # neck to upper abdomen, fine enough in z for the aortic arch: dynamic 36 x 24 x 72
    # (15 MB raw a series) for tests
    "tiny": HedySize(
        "tiny", (72, 48, 100), (7.03125, 7.03125, 4.0), (44, 30, 64), (11.5, 11.5, 6.25),
        (36, 24, 72), (14.0625, 14.0625, 5.0), (0.81, 0.83, 0.0, 0.0), 12.0, 14.0, 64,
    ),
    # the scanner's 106 cm from the top of the head, coarse: for demos
    "small": HedySize(
        "small", (128, 128, 212), (6.09375, 6.09375, 5.0), (110, 110, 212), (7.0, 7.0, 5.0),
        (96, 96, 160), (8.0, 8.0, 6.625), (1.0, 1.0, 0.0, 30.0), 10.0, 12.0, 64,
    ),
    # half hedyPET's resolution: dynamic 220 x 220 x 320 x 69 frames, 4.3 GB raw
    "half": HedySize(
        "half", (256, 256, 265), (3.046875, 3.046875, 4.0), (220, 220, 265),
        (3.296875, 3.296875, 4.0), (220, 220, 320), (3.296875, 3.296875, 3.3203125),
        (1.0, 1.0, 0.0, 30.0), 6.0, 7.0, 32,
    ),
    # hedyPET's grids: CT 512 x 512 x 531, PET 440 x 440 x 531 at 1.65 x 1.65 x 2 mm,
    # dynamic 440 x 440 x 645 at 1.65 mm (34 GB raw a series)
    "full": HedySize(
        "full", (512, 512, 531), (1.5234375, 1.5234375, 2.0), (440, 440, 531),
        (1.6484375, 1.6484375, 2.0), (440, 440, 645), (1.6484375, 1.6484375, 1.6484375),
        (1.0, 1.0, 0.0, 30.0), 4.0, 5.0, 16,
    ),
}  # fmt: skip


def _tie_free(
    ct: Grid,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    centre: np.ndarray,
    offset: np.ndarray,
    what: str,
) -> Grid:
    """A grid of ``shape`` centred at ``centre + offset``, nudged until no centre ties."""
    for _ in range(100):
        grid = _grid(shape, spacing, centre + offset)
        if nearest_tie_margin(ct, grid) >= TIE_MARGIN:
            return grid
        offset = offset + np.asarray(ct.spacing[::-1]) * 0.0137
    raise RuntimeError(f"no tie-free {what} grid")  # pragma: no cover


def place_hedy_grids(
    size: HedySize, rng: np.random.Generator, *, height_mm: float, z_soles: float
) -> tuple[Grid, Grid, Grid]:
    """A hedyPET subject's canonical CT, static PET and dynamic PET grids.

    All three cover about the same box (one scanner, one bed position); the PET grids are
    offset by a fraction of a CT voxel so that nearest-neighbour resampling of the CT-grid
    label maps onto them has no ties.
    """
    f_lo, f_hi, mm_lo, mm_hi = size.top
    top = z_soles + height_mm * rng.uniform(f_lo, f_hi) + rng.uniform(mm_lo, mm_hi)
    ct_extent = (size.ct_shape[2] - 1) * size.ct_spacing[2]
    centre = np.array([rng.uniform(-10, 10), rng.uniform(-10, 30), top - ct_extent / 2])
    ct = _grid(size.ct_shape, size.ct_spacing, centre)
    sp = np.asarray(size.ct_spacing)
    pet = _tie_free(
        ct, size.pet_shape, size.pet_spacing, centre, sp * np.array([0.37, -0.29, 0.41]), "PET"
    )
    dyn = _tie_free(
        ct, size.dyn_shape, size.dyn_spacing, centre, sp * np.array([-0.23, 0.31, 0.27]), "dynamic"
    )
    return ct, pet, dyn
