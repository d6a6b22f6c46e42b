"""Voxel-wise Patlak Ki: the region kernels of :mod:`~petzarr.analytics.kernels.patlak`, per voxel.

Every voxel is a tissue curve: X (the input function's running integral over itself) is
computed once from the whole input function, Y is the voxel's last ``n`` frames over the
input function, and Ki is the least-squares slope over those ``n`` frames — exactly what
:func:`~petzarr.analytics.kernels.patlak.patlak_fit` does for a region TAC. Only the last ``n``
frames of the series are read. A Dask series is processed one spatial chunk at a time
(``map_blocks``), and inside a chunk a few slices at a time, so float64 temporaries stay small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from petzarr.analytics.kernels.patlak import ols_last_frames, patlak_x, patlak_y
from petzarr.cohort.errors import InvalidInputError

__all__ = ["patlak_ki_map"]

_SLICES_PER_STEP = 8


def patlak_ki_map(
    pet: Any,
    plasma: ArrayLike,
    t: ArrayLike,
    *,
    n_frames: int,
    from_injection: bool = False,
) -> Any:
    """Patlak Ki of every voxel of a ``(t, z, y, x)`` series, float32 ``(z, y, x)``.

    Parameters
    ----------
    pet : ndarray or dask.array.Array, shape (t, z, y, x)
        Dynamic series (Bq/mL).
    plasma : array_like, shape (t,)
        Input function at the frame middles (same unit as ``pet``).
    t : array_like, shape (t,)
        Frame middle times; Ki comes out per unit of ``t`` (minutes give mL/cm3/min).
    n_frames : int
        Regression over the last ``n_frames`` frames (2 <= n_frames <= t).
    from_injection : bool
        Integrate the input function from injection (0 at t = 0) instead of from the first
        frame middle (hedyPET).

    Returns
    -------
    ndarray or dask.array.Array, float32, shape (z, y, x)
        Of the input's kind; a Dask result has the spatial chunks of ``pet``. NaN where the
        window holds a non-finite value (e.g. the input function is 0 there).

    Examples
    --------
    Voxels built as ``Ki * integral + V * cp`` give their Ki back:

    >>> from petzarr.analytics.kernels.patlak import cumulative_simpson
    >>> t = np.array([1.0, 3.0, 5.0, 10.0, 20.0, 40.0, 60.0])
    >>> cp = 100.0 * np.exp(-t / 30) + 5.0
    >>> ki = np.array([0.01, 0.02, 0.05], np.float32).reshape(3, 1, 1)
    >>> curve = lambda x: x[:, None, None, None]  # frames first
    >>> pet = ki[None] * curve(cumulative_simpson(cp, t)) + 0.3 * curve(cp)
    >>> patlak_ki_map(pet, cp, t, n_frames=4).ravel().round(6)
    array([0.01, 0.02, 0.05], dtype=float32)
    """
    plasma = np.asarray(plasma, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if getattr(pet, "ndim", 0) != 4:
        raise InvalidInputError(
            f"pet has shape {getattr(pet, 'shape', None)}; expected a (t, z, y, x) series"
        )
    nt = pet.shape[0]
    if plasma.shape != (nt,) or t.shape != (nt,):
        raise InvalidInputError(
            f"{nt} frames but {plasma.size} input-function values and {t.size} times"
        )
    n = int(n_frames)
    if n != n_frames or not 2 <= n <= nt:
        raise InvalidInputError(f"n_frames must be 2 to {nt} (the frames), got {n_frames!r}")
    # X needs the whole input function; Y only the last n frames
    x = patlak_x(plasma, t, from_injection=from_injection)[-n:]
    cp = plasma[-n:]
    last = pet[-n:]
    if isinstance(last, np.ndarray):
        return _ki_block(last, x=x, cp=cp)
    import dask.array as da

    last = da.asarray(last).rechunk({0: -1})
    return da.map_blocks(
        _ki_block,
        last,
        x=x,
        cp=cp,
        drop_axis=0,
        dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
    )


def _ki_block(block: NDArray[Any], *, x: NDArray[np.float64], cp: NDArray[np.float64]) -> Any:
    """Ki of a ``(n, z, y, x)`` block, a few slices at a time."""
    n, nz = block.shape[:2]
    out = np.empty(block.shape[1:], np.float32)
    for z0 in range(0, nz, _SLICES_PER_STEP):
        part = np.moveaxis(block[:, z0 : z0 + _SLICES_PER_STEP], 0, -1)  # frames last
        slope, _ = ols_last_frames(x, patlak_y(part, cp), n)
        out[z0 : z0 + _SLICES_PER_STEP] = slope
    return out
