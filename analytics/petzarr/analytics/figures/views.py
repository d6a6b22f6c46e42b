"""Views of a volume on matplotlib axes, in mm and in the conventions of
:mod:`petzarr.analytics.figures`: the QC figure's, the notebooks' and the explorer's."""

from __future__ import annotations

from typing import Any

import numpy as np

from petzarr.cohort.grid import Grid

__all__ = ["coronal_mip", "extent", "sagittal_mip"]


def extent(h: np.ndarray, v: np.ndarray) -> tuple[float, float, float, float]:
    """imshow extent of voxel centres ``h`` (columns) and ``v`` (rows), edges included.

    >>> extent(np.array([0.0, 2.0]), np.array([10.0, 13.0, 16.0]))
    (-1.0, 3.0, 8.5, 17.5)
    """
    dh, dv = (float(a[1] - a[0]) if len(a) > 1 else 1.0 for a in (h, v))
    return (float(h[0] - dh / 2), float(h[-1] + dh / 2), float(v[0] - dv / 2),
            float(v[-1] + dv / 2))  # fmt: skip


def coronal_mip(ax: Any, volume: np.ndarray, grid: Grid, *, vmax: float | None = None,
                cmap: str = "gray_r", title: str = "coronal MIP") -> Any:  # fmt: skip
    """Maximum along anterior-posterior of a ``(z, y, x)`` volume: superior up, the
    patient's right on the left; colours from 0 to ``vmax`` (99.9th percentile)."""
    c = grid.coords()
    image = ax.imshow(
        volume.max(axis=1), extent=extent(c["x"], c["z"]), origin="lower", cmap=cmap, vmin=0,
        vmax=_top(volume) if vmax is None else vmax, aspect="equal",
    )  # fmt: skip
    ax.invert_xaxis()  # RAS+: x grows to the patient's right, shown on the image's left
    ax.set(title=title, xlabel="x [mm]  (R | L)", ylabel="z [mm] (superior up)")
    return image


def sagittal_mip(ax: Any, volume: np.ndarray, grid: Grid, *, vmax: float | None = None,
                 cmap: str = "gray_r", title: str = "sagittal MIP") -> Any:  # fmt: skip
    """Maximum along left-right: superior up, anterior on the left."""
    c = grid.coords()
    image = ax.imshow(
        volume.max(axis=2), extent=extent(c["y"], c["z"]), origin="lower", cmap=cmap, vmin=0,
        vmax=_top(volume) if vmax is None else vmax, aspect="equal",
    )  # fmt: skip
    ax.invert_xaxis()
    ax.set(title=title, xlabel="y [mm]  (A | P)", ylabel="z [mm]")
    return image


def _top(volume: np.ndarray) -> float:
    finite = volume[np.isfinite(volume)]
    return float(np.percentile(finite, 99.9)) if finite.size and finite.max() > 0 else 1.0
