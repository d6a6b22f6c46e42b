"""How far a PET is displaced from where its CT-derived labels say the uptake is.

CT segmentations mark organs that take up tracer strongly (bladder, kidneys, liver,
heart, brain). If the patient moved between CT and PET, the PET's hot spots sit beside
those masks. For each organ, its displacement ``d`` maximises the PET's mean inside the
mask moved by ``d`` — a cross-correlation of the PET with the mask, computed with FFTs on
a box around the organ; the subject's offset is the median of its organs' (so one organ
that truly changed, a bladder filling up between CT and PET, does not decide it). The PET
is first averaged down to voxels of about ``coarse_mm``; the
peak is then refined on the full grid, the PET interpolated (cubic spline: a linear
interpolant's score peaks at whole voxels) at the mask voxels moved by sub-voxel steps,
one axis at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

__all__ = ["Offset", "pet_offset"]


@dataclass(frozen=True)
class Offset:
    """The PET's displacement ``(dz, dy, dx)`` in mm from its labels, and its size."""

    mm: tuple[float, float, float]

    @property
    def norm_mm(self) -> float:
        return float(np.linalg.norm(self.mm))


def pet_offset(
    pet: np.ndarray,
    masks: Sequence[np.ndarray],
    spacing_mm: Sequence[float],
    *,
    window_mm: float = 40.0,
    coarse_mm: float = 4.0,
) -> Offset:
    """Estimate how far ``pet`` (z, y, x) is displaced from the organs ``masks`` mark.

    ``masks`` are boolean arrays on the PET's grid, one per hot organ. Displacements up to
    ``window_mm`` along each axis are considered.

    >>> z, y, x = np.indices((40, 40, 40))
    >>> organ = (z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 < 36
    >>> hot = ndimage.shift(organ.astype(float), (0, 3, 0), order=1)  # moved 3 voxels in y
    >>> [round(v) for v in pet_offset(hot, [organ], (2.0, 2.0, 2.0)).mm]
    [0, 6, 0]
    """
    spacing = np.asarray(spacing_mm, np.float64)
    values = np.nan_to_num(np.asarray(pet, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    found = [_organ_offset(values, m, spacing, window_mm, coarse_mm) for m in masks if m.any()]
    if not found:
        raise ValueError("pet_offset needs at least one non-empty mask")
    d = np.median(np.array(found), axis=0)
    return Offset((float(d[0]), float(d[1]), float(d[2])))


def _organ_offset(
    values: np.ndarray, mask: np.ndarray, spacing: np.ndarray, window_mm: float, coarse_mm: float
) -> np.ndarray:
    factor = np.maximum(1, np.floor(coarse_mm / spacing)).astype(int)
    weights = mask.astype(np.float32)
    coarse_values, weights = _block_mean(values, factor), _block_mean(weights, factor)
    step = spacing * factor
    reach = np.maximum(1, np.ceil(window_mm / step)).astype(int)
    box = _box(weights > 0, reach, weights.shape)
    v, w = coarse_values[box], weights[box]
    # corr[k] = sum_x v[x + d] w[x], d = k - (w.shape - 1)
    corr = signal.correlate(v - v.mean(), w, mode="full", method="fft")
    centre = np.array(w.shape) - 1
    lo, hi = centre - reach, centre + reach + 1
    window = corr[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    peak = np.array(np.unravel_index(np.argmax(window), window.shape))
    coarse = (peak - reach + _parabola(window, peak)) * step
    return _refine(values, mask, spacing, coarse, step)


def _refine(
    values: np.ndarray,
    mask: np.ndarray,
    spacing: np.ndarray,
    start_mm: np.ndarray,
    step_mm: np.ndarray,
) -> np.ndarray:
    """Coordinate ascent of the same score on the full grid, from ``start_mm``."""
    reach = np.ceil((np.abs(start_mm) + 2 * step_mm) / spacing).astype(int)
    box = _box(mask, reach, values.shape)
    corner = np.array([b.start for b in box], np.float64)
    coeffs = ndimage.spline_filter(values[box], order=3, mode="nearest")
    at = np.argwhere(mask).T.astype(np.float64) - corner[:, None]

    def score(d_mm: np.ndarray) -> float:
        moved = at + (d_mm / spacing)[:, None]
        got = ndimage.map_coordinates(coeffs, moved, order=3, mode="nearest", prefilter=False)
        return float(got.mean())

    d = np.array(start_mm, np.float64)
    for span in (step_mm, step_mm / 4, step_mm / 16):
        for axis in range(3):
            trial = [d.copy() for _ in range(9)]
            for t, off in zip(trial, np.linspace(-span[axis], span[axis], 9), strict=True):
                t[axis] += off
            d = max(trial, key=score)
    return d


def _block_mean(a: np.ndarray, factor: np.ndarray) -> np.ndarray:
    if (factor == 1).all():
        return a
    return ndimage.uniform_filter(a, size=tuple(factor), mode="nearest")[
        tuple(slice(f // 2, None, f) for f in factor)
    ]


def _box(inside: np.ndarray, reach: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, ...]:
    where = np.argwhere(inside)
    lo = np.maximum(where.min(axis=0) - 2 * reach, 0)
    hi = np.minimum(where.max(axis=0) + 2 * reach + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _parabola(c: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Sub-voxel correction of a maximum of ``c`` at ``at``, axis by axis."""
    out = np.zeros(3)
    for axis in range(3):
        if 0 < at[axis] < c.shape[axis] - 1:
            idx = list(at)
            idx[axis] -= 1
            left = c[tuple(idx)]
            idx[axis] += 2
            right = c[tuple(idx)]
            mid = c[tuple(at)]
            denom = left - 2 * mid + right
            if denom < 0:
                out[axis] = float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
    return out
