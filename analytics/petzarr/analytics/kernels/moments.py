"""Per-label moments of a volume for many label maps in one pass: count, mean, std, min, max.

The kernel reads every value once per block, whatever the number of label maps, and works on
row segments (see :mod:`petzarr.analytics.kernels.label_rows`): on a segment every map is
constant, so the values of a segment are summed once and the sums are added to one
accumulator per map.

Numerics. A block accumulates, per (map, label), sums of ``v - c`` and ``(v - c)**2`` in
float64 with ``c`` the first value the label meets in the block, so the sum of squares never
holds the large ``mean**2`` term that makes the textbook ``sumsq - sum**2 / n`` lose digits.
Each block leaves ``(n, mean, M2, min, max)``; blocks combine with the parallel formula of
Chan, Golub & LeVeque (1979), ``M2 = sum M2_i + sum n_i (mean_i - mean)**2``, which is exact
algebra and associative, so a Dask tree reduction may group blocks in any order.

A *packed* partial is a float64 array ``(..., n_maps, n_labels, 5)`` whose last axis holds
``count, mean, m2, min, max`` (counts are exact in float64 up to 2**53 voxels); it is what
travels between Dask tasks. :class:`LabelMoments` is the unpacked, user-facing result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from petzarr.analytics.kernels.label_rows import (
    check_label_maps,
    row_segments,
    segment_buffers,
    segment_sums,
)
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "FIELDS",
    "LabelMoments",
    "accumulate_block",
    "combine_packed",
    "default_n_labels",
    "label_moments",
]

#: Order of the fields on the last axis of a packed partial.
FIELDS: tuple[str, ...] = ("count", "mean", "m2", "min", "max")
_N, _MEAN, _M2, _MIN, _MAX = range(5)
# accumulator slots inside the kernel: shift, shifted sum, shifted sum of squares, min, max
_SHIFT, _S1, _S2, _LO, _HI = range(5)


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
def _accumulate(values, maps, n_labels, cnt, acc):  # pragma: no cover - compiled
    """Add ``values`` (t, z, y, x) into ``cnt`` (t, m, l) and ``acc`` (t, m, l, 5).

    Returns -1, or a label value outside ``[0, n_labels)`` (those voxels are not counted).
    """
    nt, nz, ny, nx = values.shape
    nm = len(maps)
    words, change, starts = segment_buffers(nx)
    seglab = np.empty((nm, nx), np.intp)
    segok = np.empty(nx, np.bool_)
    bad = -1
    for z in range(nz):
        for y in range(ny):
            # labels are read once per row and block, shared by all t frames
            ns = row_segments(maps, z, y, words, change, starts)
            segok[:ns] = True
            for m in range(nm):
                row = maps[m][z, y]
                for s in range(ns):
                    k = np.intp(row[starts[s]])
                    if k < 0 or k >= n_labels:
                        bad = k
                        segok[s] = False
                    seglab[m, s] = k
            for t in range(nt):
                vrow = values[t, z, y]
                for s in range(ns):
                    if not segok[s]:
                        continue
                    a = starts[s]
                    n = starts[s + 1] - a
                    v0, s1, s2, lo, hi = segment_sums(vrow, a, a + n)
                    for m in range(nm):
                        k = seglab[m, s]
                        c = cnt[t, m, k]
                        if c == 0:
                            acc[t, m, k, _SHIFT] = v0
                        # move the segment's sums from shift v0 to the label's shift
                        delta = v0 - acc[t, m, k, _SHIFT]
                        acc[t, m, k, _S1] += s1 + n * delta
                        acc[t, m, k, _S2] += s2 + delta * (2.0 * s1 + n * delta)
                        acc[t, m, k, _LO] = min(acc[t, m, k, _LO], lo)
                        acc[t, m, k, _HI] = max(acc[t, m, k, _HI], hi)
                        cnt[t, m, k] = c + n
    return bad


def default_n_labels(label_maps: Sequence[Any]) -> int:
    """Number of label slots that holds every label of ``label_maps`` (max label + 1).

    uint8 maps get 256 without looking at the data (no extra pass, no early Dask compute).
    Wider numpy maps are scanned for their maximum; wider Dask maps need ``n_labels`` from
    the caller (e.g. from the cohort's ``labels.json``).

    Examples
    --------
    >>> default_n_labels([np.zeros((2, 2, 2), np.uint16) + 7])
    8
    """
    if all(np.dtype(m.dtype).itemsize == 1 for m in label_maps):
        return 256
    if any(not isinstance(m, np.ndarray) for m in label_maps):
        raise InvalidInputError(
            "pass n_labels for Dask label maps wider than uint8 "
            "(max label + 1, e.g. from the cohort's labels.json)"
        )
    return max(int(m.max(initial=0)) for m in label_maps) + 1


def _parse_values(values: Any) -> Any:
    if values.ndim not in (3, 4):
        raise InvalidInputError(
            f"values have shape {tuple(values.shape)}; expected (z, y, x) or (t, z, y, x)"
        )
    kind = np.dtype(values.dtype).kind
    if kind not in "iuf":
        raise InvalidInputError(f"values have dtype {values.dtype}; expected integers or floats")
    return values


def accumulate_block(
    values: NDArray[Any], label_maps: Sequence[NDArray[Any]], *, n_labels: int
) -> NDArray[np.float64]:
    """Packed moments of one block: ``(n_maps, n_labels, 5)``, or ``(t, n_maps, n_labels, 5)``.

    Parameters
    ----------
    values : ndarray, shape (z, y, x) or (t, z, y, x)
        float32/float64/int16/... values.
    label_maps : sequence of ndarray, shape (z, y, x)
        Integer label maps on the grid of ``values``.
    n_labels : int
        Label slots; every label must lie in ``[0, n_labels)``.

    Returns
    -------
    ndarray of float64
        Last axis ``count, mean, m2, min, max`` (see :data:`FIELDS`); a label with count 0 has
        mean 0, m2 0, min +inf and max -inf.

    Examples
    --------
    >>> v = np.array([[[1.0, 2.0, 4.0]]], np.float32)
    >>> accumulate_block(v, [np.array([[[1, 1, 2]]], np.uint8)], n_labels=3)[0, 1:]
    array([[2. , 1.5, 0.5, 1. , 2. ],
           [1. , 4. , 0. , 4. , 4. ]])
    """
    values = _parse_values(np.asarray(values))
    maps = check_label_maps([np.asarray(m) for m in label_maps], values.shape[-3:])
    v4 = np.ascontiguousarray(values if values.ndim == 4 else values[None])
    maps = tuple(np.ascontiguousarray(m) for m in maps)
    nt, nm = v4.shape[0], len(maps)
    cnt = np.zeros((nt, nm, n_labels), np.int64)
    acc = np.zeros((nt, nm, n_labels, 5))
    acc[..., _LO] = np.inf
    acc[..., _HI] = -np.inf
    bad = _accumulate(v4, maps, n_labels, cnt, acc)
    if bad != -1:
        raise InvalidInputError(
            f"label value {bad} is outside [0, {n_labels}); pass a larger n_labels "
            "(max label + 1) or fix the label map"
        )
    packed = np.empty_like(acc)
    n = cnt.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        s1 = acc[..., _S1]
        mean_shift = np.where(cnt > 0, s1 / n, 0.0)
        packed[..., _M2] = np.where(cnt > 0, np.maximum(acc[..., _S2] - s1 * mean_shift, 0.0), 0)
    packed[..., _N] = n
    packed[..., _MEAN] = np.where(cnt > 0, acc[..., _SHIFT] + mean_shift, 0.0)
    packed[..., _MIN] = acc[..., _LO]
    packed[..., _MAX] = acc[..., _HI]
    return packed if values.ndim == 4 else packed[0]


def combine_packed(
    packed: NDArray[np.float64], axis: int | tuple[int, ...] = 0, keepdims: bool = False
) -> NDArray[np.float64]:
    """Combine packed partials along ``axis`` (Chan et al.); usable as a Dask combine step.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = rng.normal(1e4, 10, (4, 3, 5)).astype(np.float32)
    >>> lab = np.ones(v.shape, np.uint8)
    >>> parts = np.stack([accumulate_block(v[i:i + 2], [lab[i:i + 2]], n_labels=2)
    ...                   for i in (0, 2)])
    >>> whole = combine_packed(parts, axis=0)[0, 1]
    >>> np.allclose(whole[2] / whole[0], np.var(v.astype(np.float64)), rtol=1e-12)
    True
    """
    packed = np.asarray(packed, dtype=np.float64)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % (packed.ndim - 1) for a in axes)
    n_i = packed[..., _N]
    n = n_i.sum(axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, (n_i * packed[..., _MEAN]).sum(axis=axes, keepdims=True) / n, 0.0)
    dev = np.where(n_i > 0, packed[..., _MEAN] - mean, 0.0)
    m2 = (packed[..., _M2] + n_i * dev * dev).sum(axis=axes, keepdims=True)
    out = np.stack(
        [
            n,
            mean,
            m2,
            packed[..., _MIN].min(axis=axes, keepdims=True),
            packed[..., _MAX].max(axis=axes, keepdims=True),
        ],
        axis=-1,
    )
    return out if keepdims else out.squeeze(axis=axes)


@dataclass(frozen=True)
class LabelMoments:
    """Per-label moments, arrays of shape ``(n_maps, n_labels)`` or ``(t, n_maps, n_labels)``.

    ``[..., m, k]`` is label ``k`` of map ``m`` (label 0, the background, is included).
    The fields are numpy arrays, or Dask arrays when built from Dask input (then call
    :meth:`compute`). Labels with ``count == 0`` have mean 0, min +inf, max -inf.
    """

    count: Any  # int64
    mean: Any  # float64
    m2: Any  # float64, sum of squared deviations from the mean
    min: Any
    max: Any

    @classmethod
    def from_packed(cls, packed: Any) -> LabelMoments:
        """Unpack ``(..., 5)`` partials (numpy or Dask) into a :class:`LabelMoments`."""
        return cls(
            count=packed[..., _N].astype(np.int64),
            mean=packed[..., _MEAN],
            m2=packed[..., _M2],
            min=packed[..., _MIN],
            max=packed[..., _MAX],
        )

    def to_packed(self) -> NDArray[np.float64]:
        """Inverse of :meth:`from_packed` (numpy fields only)."""
        return np.stack([np.asarray(getattr(self, f), np.float64) for f in FIELDS], axis=-1)

    @property
    def sum(self) -> Any:
        """Sum of the values, ``count * mean``."""
        return self.count * self.mean

    @property
    def sumsq(self) -> Any:
        """Sum of the squared values, ``m2 + count * mean**2``."""
        return self.m2 + self.count * self.mean**2

    @property
    def var(self) -> Any:
        """Population variance (ddof 0); NaN where count is 0."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.m2 / self.count

    @property
    def std(self) -> Any:
        """Population standard deviation (ddof 0); NaN where count is 0."""
        return self.var**0.5

    def compute(self, **kwargs: Any) -> LabelMoments:
        """Compute Dask fields in one pass (numpy fields are returned as they are)."""
        import dask

        values = dask.compute(*(getattr(self, f.name) for f in fields(self)), **kwargs)
        return LabelMoments(*values)


def label_moments(
    values: Any,
    label_maps: Sequence[Any],
    *,
    n_labels: int | None = None,
    split_every: int | None = None,
) -> LabelMoments:
    """Count, mean, population std, min and max of ``values`` per label, for many maps at once.

    Parameters
    ----------
    values : ndarray or dask.array.Array, shape (z, y, x) or (t, z, y, x)
        Values (float32 PET, int16 CT, ...). A 4-D array gives per-frame moments (TACs).
    label_maps : sequence of arrays, shape (z, y, x)
        Integer label maps on the grid of ``values`` (numpy or Dask). Dask maps are rechunked
        to the spatial chunks of ``values`` (a no-op when they already match, as in a cohort).
    n_labels : int, optional
        Label slots (max label + 1). Default: 256 for uint8 maps, the scanned maximum for
        numpy maps; required for wider Dask maps so that nothing is computed early.
    split_every : int, optional
        Fan-in of the Dask tree reduction (Dask's default when None).

    Returns
    -------
    LabelMoments
        Fields of shape ``(n_maps, n_labels)``, or ``(t, n_maps, n_labels)`` for 4-D values;
        numpy for numpy input, lazy Dask arrays when any input is a Dask array.

    Examples
    --------
    >>> v = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    >>> lab = np.array([0, 1, 1, 1, 2, 2, 2, 2], np.uint8).reshape(2, 2, 2)
    >>> mom = label_moments(v, [lab], n_labels=3)
    >>> mom.count[0], mom.mean[0], mom.std[0, 1:]
    (array([1, 3, 4]), array([0. , 2. , 5.5]), array([0.81649658, 1.11803399]))

    The same with Dask, one block per two slices along z:

    >>> import dask.array as da
    >>> lazy = label_moments(da.from_array(v, chunks=(1, 2, 2)), [lab], n_labels=3)
    >>> lazy.compute().mean[0]
    array([0. , 2. , 5.5])
    """
    values = _parse_values(values)
    maps = check_label_maps(label_maps, values.shape[-3:])
    if n_labels is None:
        n_labels = default_n_labels(maps)
    if n_labels < 1:
        raise InvalidInputError(f"n_labels must be >= 1, not {n_labels}")
    if isinstance(values, np.ndarray) and all(isinstance(m, np.ndarray) for m in maps):
        return LabelMoments.from_packed(accumulate_block(values, maps, n_labels=n_labels))
    return LabelMoments.from_packed(
        _dask_packed(values, maps, n_labels=n_labels, split_every=split_every)
    )


def _block_partial(values: NDArray[Any], *maps: NDArray[Any], n_labels: int) -> NDArray[Any]:
    packed = accumulate_block(values, maps, n_labels=n_labels)
    # one partial per spatial block: unit axes stand for the block's (z, y, x) position
    return packed[..., None, None, None, :, :, :] if values.ndim == 4 else packed[None, None, None]


def _dask_packed(values: Any, maps: Sequence[Any], *, n_labels: int, split_every: int | None):
    import dask.array as da

    values = da.asarray(values)
    spatial = values.chunks[-3:]
    maps = [da.asarray(m).rechunk(spatial) for m in maps]
    lead = values.chunks[:-3]  # (t chunks,) for 4-D values, () for 3-D
    nblocks = tuple((1,) * len(c) for c in spatial)
    tail = ((len(maps),), (n_labels,), (5,))
    first = values.ndim  # the three new axes follow the (lead..., bz, by, bx) block axes
    partials = da.map_blocks(
        partial(_block_partial, n_labels=n_labels),
        values,
        *maps,
        chunks=(*lead, *nblocks, *tail),
        new_axis=[first, first + 1, first + 2],
        dtype=np.float64,
        meta=np.empty((0,) * (values.ndim + 3)),
    )
    block_axes = tuple(range(len(lead), len(lead) + 3))
    return da.reduction(
        partials,
        chunk=_identity,
        combine=combine_packed,
        aggregate=combine_packed,
        axis=block_axes,
        dtype=np.float64,
        split_every=split_every,
        concatenate=True,
        meta=np.empty((0,) * (values.ndim)),
    )


def _identity(x: NDArray[Any], axis: Any = None, keepdims: bool = True) -> NDArray[Any]:
    return x
