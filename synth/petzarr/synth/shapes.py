"""Solid primitives in world millimetres (RAS+) and the painter that rasterises them.

A primitive knows its bounding box and, given the 1-D voxel-centre coordinates of a box of
a grid, returns the ``(z, y, x)`` boolean mask of the voxels inside it. Masks are built by
broadcasting per-axis terms, so a primitive costs a few array operations over its own
bounding box, never over the whole volume.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "Box",
    "Capsule",
    "Clip",
    "Ellipsoid",
    "Mat",
    "Shape",
    "Tube",
    "paint",
    "rotation",
]

Vec = tuple[float, float, float]
Mat = tuple[Vec, Vec, Vec]


class Shape(Protocol):
    def bounds(self) -> tuple[Vec, Vec]:
        """World ``(x, y, z)`` lower and upper corners of the bounding box."""
        ...

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Voxels inside, as a ``(len(z), len(y), len(x))`` boolean array."""
        ...


def rotation(axis: str, degrees: float) -> Mat:
    """Right-handed rotation matrix about world axis ``"x"``, ``"y"`` or ``"z"``."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i = "xyz".index(axis)
    j, k = (i + 1) % 3, (i + 2) % 3
    m = [[0.0] * 3 for _ in range(3)]
    m[i][i] = 1.0
    m[j][j], m[j][k], m[k][j], m[k][k] = c, -s, s, c
    return tuple(tuple(r) for r in m)  # type: ignore[return-value]


def _terms(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    """The three coordinate vectors shaped to broadcast to ``(z, y, x)``."""
    return x[None, None, :], y[None, :, None], z[:, None, None]


@dataclass(frozen=True)
class Ellipsoid:
    """``(p - centre)^T M (p - centre) <= 1`` with semi-axes ``radii`` along the columns
    of ``rot`` (the world axes when ``rot`` is None)."""

    centre: Vec
    radii: Vec
    rot: Mat | None = None

    def _matrix(self) -> np.ndarray:
        r = np.eye(3) if self.rot is None else np.asarray(self.rot, dtype=np.float64)
        return r @ np.diag(1.0 / np.square(self.radii)) @ r.T

    def bounds(self) -> tuple[Vec, Vec]:
        r = np.eye(3) if self.rot is None else np.asarray(self.rot, dtype=np.float64)
        half = np.sqrt((r**2) @ np.square(self.radii))
        lo, hi = np.asarray(self.centre) - half, np.asarray(self.centre) + half
        return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        m = self._matrix().astype(np.float32)
        dx, dy, dz = _terms(x - self.centre[0], y - self.centre[1], z - self.centre[2])
        q = m[0, 0] * dx * dx + m[1, 1] * dy * dy
        q = q + m[2, 2] * dz * dz
        if self.rot is not None:
            q += 2 * m[0, 1] * dx * dy
            q += 2 * m[0, 2] * dx * dz
            q += 2 * m[1, 2] * dy * dz
        return q <= 1.0


@dataclass(frozen=True)
class Tube:
    """An elliptic cylinder along z whose centre and semi-axes vary piecewise linearly.

    ``z`` are increasing control heights; ``cx, cy`` the cross-section centre and
    ``a, b`` its x and y semi-axes there. Nothing outside ``[z[0], z[-1]]``.
    """

    z: tuple[float, ...]
    cx: tuple[float, ...]
    cy: tuple[float, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]

    def bounds(self) -> tuple[Vec, Vec]:
        cx, cy, a, b = (np.asarray(v) for v in (self.cx, self.cy, self.a, self.b))
        lo = (float((cx - a).min()), float((cy - b).min()), self.z[0])
        hi = (float((cx + a).max()), float((cy + b).max()), self.z[-1])
        return lo, hi

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        cx, cy, a, b = (
            np.interp(z, self.z, v).astype(np.float32) for v in (self.cx, self.cy, self.a, self.b)
        )
        inside = (z >= self.z[0]) & (z <= self.z[-1]) & (a > 0) & (b > 0)
        a = np.where(inside, a, np.float32(1))
        b = np.where(inside, b, np.float32(1))
        u = np.square((x[None, :] - cx[:, None]) / a[:, None])  # (z, x)
        v = np.square((y[None, :] - cy[:, None]) / b[:, None])  # (z, y)
        v[~inside] = np.inf
        return (u[:, None, :] + v[:, :, None]) <= 1.0


@dataclass(frozen=True)
class Capsule:
    """Points within ``r`` of the segment ``p0``-``p1``."""

    p0: Vec
    p1: Vec
    r: float

    def bounds(self) -> tuple[Vec, Vec]:
        lo = tuple(min(a, b) - self.r for a, b in zip(self.p0, self.p1))
        hi = tuple(max(a, b) + self.r for a, b in zip(self.p0, self.p1))
        return lo, hi  # type: ignore[return-value]

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = np.subtract(self.p1, self.p0)
        length2 = float(d @ d)
        wx, wy, wz = _terms(x - self.p0[0], y - self.p0[1], z - self.p0[2])
        w2 = wx * wx + wy * wy
        w2 = w2 + wz * wz
        if length2 == 0.0:
            return w2 <= self.r**2
        proj = wx * np.float32(d[0]) + wy * np.float32(d[1])
        proj = proj + wz * np.float32(d[2])
        t = np.clip(proj / np.float32(length2), 0.0, 1.0)
        # |w - t d|^2 = |w|^2 - 2 t (w.d) + t^2 |d|^2
        dist2 = w2 - t * (2 * proj - t * np.float32(length2))
        return dist2 <= self.r**2


@dataclass(frozen=True)
class Box:
    """An axis-aligned box, corners ``lo`` and ``hi``."""

    lo: Vec
    hi: Vec

    def bounds(self) -> tuple[Vec, Vec]:
        return self.lo, self.hi

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        inx, iny, inz = ((c >= lo) & (c <= hi) for c, lo, hi in zip((x, y, z), self.lo, self.hi))
        return inz[:, None, None] & iny[None, :, None] & inx[None, None, :]


@dataclass(frozen=True)
class Clip:
    """The part of ``shape`` where ``normal . p <= offset`` (a half-space cut)."""

    shape: Shape
    normal: Vec
    offset: float

    def bounds(self) -> tuple[Vec, Vec]:
        return self.shape.bounds()

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        nx, ny, nz = (np.float32(n) for n in self.normal)
        tx, ty, tz = _terms(x * nx, y * ny, z * nz)
        return self.shape.mask(x, y, z) & ((tx + ty) + tz <= self.offset)


def _index_range(coords: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """Indices ``[i0, i1)`` of the ascending ``coords`` inside ``[lo, hi]``."""
    return int(np.searchsorted(coords, lo, "left")), int(np.searchsorted(coords, hi, "right"))


def paint(
    owner: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    items: Sequence[tuple[int, Shape]],
) -> np.ndarray:
    """Paint ``items`` (value, shape) in order into ``owner``, later items on top.

    Parameters
    ----------
    owner : ndarray
        ``(len(z), len(y), len(x))`` integer array, changed in place.
    x, y, z : ndarray
        Ascending float32 world coordinates (mm) of the voxel centres along each axis.
    items : sequence of (int, Shape)
        What to paint, back to front.

    Returns
    -------
    ndarray
        ``owner``.

    Examples
    --------
    >>> c = np.arange(5, dtype=np.float32)
    >>> owner = np.zeros((5, 5, 5), np.uint8)
    >>> items = [(1, Box((0, 0, 0), (4, 4, 4))), (2, Ellipsoid((2, 2, 2), (1, 1, 1)))]
    >>> _ = paint(owner, c, c, c, items)
    >>> np.bincount(owner.ravel()).tolist()
    [0, 118, 7]
    """
    for value, shape in items:
        lo, hi = shape.bounds()
        (x0, x1), (y0, y1), (z0, z1) = (
            _index_range(c, lo_, hi_) for c, lo_, hi_ in zip((x, y, z), lo, hi)
        )
        if x0 >= x1 or y0 >= y1 or z0 >= z1:
            continue
        m = shape.mask(x[x0:x1], y[y0:y1], z[z0:z1])
        np.copyto(owner[z0:z1, y0:y1, x0:x1], value, where=m, casting="unsafe")
    return owner
