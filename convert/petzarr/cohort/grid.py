"""A canonical voxel grid: the shape, spacing and origin every group of a subject has.

Shared by the converter (which builds grids from NIfTI affines), the synthetic cohorts
(which draw on them) and the reader of a converted subject (which rebuilds them from the
stored 1-D coordinates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """A canonical (RAS+, axis-aligned) voxel grid, in (z, y, x) order.

    ``spacing`` and ``origin`` are in mm; voxel ``k`` along an axis is centred at
    ``origin + k * spacing``.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    def coords(self) -> dict[str, np.ndarray]:
        """The 1-D ``z, y, x`` coordinates in mm (float64)."""
        return {
            name: o + s * np.arange(n, dtype=np.float64)
            for name, n, s, o in zip("zyx", self.shape, self.spacing, self.origin, strict=True)
        }

    @property
    def affine(self) -> np.ndarray:
        """The NIfTI (x, y, z) voxel-to-world affine of this grid."""
        aff = np.eye(4)
        aff[[0, 1, 2], [0, 1, 2]] = self.spacing[::-1]
        aff[:3, 3] = self.origin[::-1]
        return aff

    @property
    def voxel_volume_ml(self) -> float:
        return math.prod(self.spacing) / 1000.0
