"""Split a TotalSegmentator aorta mask into hedyPET's four segments, refined by early uptake.

A reimplementation, on canonical ``(z, y, x)`` arrays (z increasing superior), of
``nifti_dynamic.aorta_rois`` 0.3.1 — ``extract_aorta_segments``, i.e. ``segment_aorta``
followed by ``refine_aorta_with_pet_uptake`` — the version hedyPET ran
(``DEPICT-RH/hedyPET``, ``src/hedypet/scripts/05_make_input_function_rois.py``, whose
sidecars say "Aorta segments nifty_dynamic v0.3.1"). The algorithm, step for step:

1. Keep the largest 6-connected component of the mask (TotalSegmentator's aorta sometimes
   has floaters); a :class:`~petzarr.cohort.errors.PetZarrWarning` says when others go.
2. Count the 8-connected pieces of every axial slice, cap the count at 2 and median-filter it
   over 5 slices. Going up, ``1 1 1 1 2 2 2 2`` happens once, where the ascending aorta
   starts beside the descending one (``start`` = the first slice with two pieces), and
   ``2 2 2 2 1 1 1 1`` happens once, where the two legs join under the arch (``curve`` = the
   first slice with one piece again). Anything else is refused.
3. Slices at and above ``curve`` are the top (arch, label 2). Below it the 6-connected
   components are labelled and all but the two largest dropped; the larger is the descending
   aorta (it runs down into the abdomen), the smaller the ascending (label 1). Descending
   slices at or above ``start`` are descending upper (3), those below descending lower (4).
4. Refine by uptake: on the early-frame mean, keep the voxels above 2/3 of the median over
   the segmented aorta, plus any holes they enclose in 3-D (``binary_fill_holes``); segment
   voxels outside that are dropped. This trims the partial-volume rim of the wall.

Everything is in voxels: no step uses the spacing. Differences from nifti_dynamic:

- Masks it would turn into nonsense are refused with :class:`InvalidInputError`: below the
  curve one connected piece instead of two legs (it calls it all descending and makes no
  ascending segment; this is what a z-down volume gives), or the legs joining below where the
  second one starts.
- Exact ties, which real data does not produce: equal-sized legs are told apart by position
  (the more anterior one is ascending) instead of by scipy's label order, and which of
  several equal-sized floaters survives may differ (it labels in ``(x, y, z)`` raster order,
  we in ``(z, y, x)``).
"""

from __future__ import annotations

import warnings
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from petzarr.cohort.errors import InvalidInputError, PetZarrWarning

__all__ = [
    "AORTA_SEGMENTS",
    "ASCENDING",
    "DESCENDING_LOWER",
    "DESCENDING_UPPER",
    "TOP",
    "aorta_segments",
]

ASCENDING: Final = 1
TOP: Final = 2
DESCENDING_UPPER: Final = 3
DESCENDING_LOWER: Final = 4
#: Label index -> label name, as in hedyPET's ``input_function_tacs`` table.
AORTA_SEGMENTS: Final[dict[int, str]] = {
    ASCENDING: "aorta_ascending",
    TOP: "aorta_top",
    DESCENDING_UPPER: "aorta_descending_upper",
    DESCENDING_LOWER: "aorta_descending_lower",
}

# Axial piece counts around the two transitions, bottom to top (nifti_dynamic's patterns).
_START_PATTERN = np.array([1, 1, 1, 1, 2, 2, 2, 2])
_CURVE_PATTERN = np.array([2, 2, 2, 2, 1, 1, 1, 1])
_UPTAKE_FRACTION = 2 / 3


def aorta_segments(aorta_mask: ArrayLike, early_mean: ArrayLike) -> NDArray[np.uint8]:
    """Ascending (1), top (2), descending upper (3) and lower (4) aorta, as hedyPET split it.

    Parameters
    ----------
    aorta_mask : array_like of bool, shape (z, y, x)
        The aorta (TotalSegmentator ``total`` class ``aorta``) on the dynamic PET grid,
        canonical RAS+ with z increasing superior. Non-zero means aorta.
    early_mean : array_like of float, shape (z, y, x)
        Mean of the early frames (start < 40 s, see
        :func:`petzarr.analytics.kernels.input_function.early_frames_mean`): the first pass of the
        bolus, where blood is far brighter than tissue.

    Returns
    -------
    ndarray of uint8, shape (z, y, x)
        0 outside, else the :data:`AORTA_SEGMENTS` index.

    Raises
    ------
    InvalidInputError
        Shapes differ, the mask is empty, its axial cross-sections do not go one piece -> two
        -> one exactly once each going up (the mask misses the heart level or the arch), or
        the legs below the arch are not two separate pieces (the volume is not z-up).

    Warns
    -----
    PetZarrWarning
        When the mask is in several pieces and all but the largest are dropped.

    Notes
    -----
    Reimplements ``nifti_dynamic.aorta_rois.extract_aorta_segments`` 0.3.1; see the module
    docstring for the steps.

    Examples
    --------
    A ``∩``-shaped tube: two legs joined by a bridge, the posterior one running further down.

    >>> mask = np.zeros((30, 12, 5), dtype=bool)
    >>> mask[0:24, 1:4, 1:4] = True      # descending leg, from the bottom up
    >>> mask[10:24, 8:11, 1:4] = True    # ascending leg (anterior, larger y)
    >>> mask[18:24, 1:11, 1:4] = True    # the arch joining them
    >>> seg = aorta_segments(mask, np.where(mask, 10.0, 1.0))
    >>> [np.unique(seg[z]).tolist() for z in (5, 14, 21)]  # lower; ascending + upper; top
    [[0, 4], [0, 1, 3], [0, 2]]
    """
    mask = np.asarray(aorta_mask)
    uptake = np.asarray(early_mean)
    _check_volumes(mask, uptake)
    box = _bounding_box(mask)
    aorta = _largest_component(mask[box] != 0)

    start, curve = _split_slices(aorta, z_offset=box[0].start, nz=mask.shape[0])
    z0 = box[0].start
    start_local = int(np.clip(start - z0, 0, aorta.shape[0]))
    curve_local = int(np.clip(curve - z0, 0, aorta.shape[0]))

    seg = np.zeros(aorta.shape, dtype=np.uint8)
    seg[curve_local:] = np.where(aorta[curve_local:], TOP, 0)
    ascending, descending = _two_legs(aorta[:curve_local])
    seg[:curve_local][ascending] = ASCENDING
    seg[:curve_local][descending] = DESCENDING_UPPER
    lower = seg[:start_local]
    lower[lower == DESCENDING_UPPER] = DESCENDING_LOWER

    _refine_by_uptake(seg, uptake[box])
    out = np.zeros(mask.shape, dtype=np.uint8)
    out[box] = seg
    return out


def _check_volumes(mask: NDArray[Any], uptake: NDArray[Any]) -> None:
    if mask.ndim != 3:
        raise InvalidInputError(f"aorta mask must be 3-D (z, y, x), got shape {mask.shape}")
    if uptake.shape != mask.shape:
        raise InvalidInputError(
            f"early-frame mean has shape {uptake.shape} but the aorta mask {mask.shape}; "
            "both must be on the dynamic PET grid"
        )
    if not np.issubdtype(uptake.dtype, np.number) or np.issubdtype(
        uptake.dtype, np.complexfloating
    ):
        raise InvalidInputError(f"early-frame mean must be real numbers, got {uptake.dtype}")


def _bounding_box(mask: NDArray[Any]) -> tuple[slice, slice, slice]:
    """Smallest box holding the mask: every step below is local to the aorta, so run there."""
    where = [np.flatnonzero(np.any(mask, axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    if where[0].size == 0:
        raise InvalidInputError(
            "aorta mask is empty: the subject's seg_total has no aorta on this grid; "
            "check the label index and that the field of view covers the thorax"
        )
    z, y, x = (slice(int(w[0]), int(w[-1]) + 1) for w in where)
    return z, y, x


def _largest_component(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    keep = int(np.argmax(sizes)) + 1
    warnings.warn(
        f"aorta mask is in {n} pieces; kept the largest ({sizes[keep - 1]} voxels) and "
        f"dropped {int(sizes.sum() - sizes[keep - 1])} voxels elsewhere. Inspect the "
        "segmentation if the dropped part is large.",
        PetZarrWarning,
        stacklevel=3,
    )
    return labels == keep


def _split_slices(aorta: NDArray[np.bool_], *, z_offset: int, nz: int) -> tuple[int, int]:
    """``start`` and ``curve`` slice indices on the full grid (see the module docstring)."""
    # Counted over the whole z axis, zeros outside the box, so the median filter's reflected
    # edges see what nifti_dynamic's did.
    pieces = np.zeros(nz, dtype=np.int64)
    eight = np.ones((3, 3), dtype=bool)
    for k in range(aorta.shape[0]):
        pieces[z_offset + k] = ndimage.label(aorta[k], structure=eight)[1]
    smooth = ndimage.median_filter(np.minimum(pieces, 2), size=5)
    start = _transition(smooth, _START_PATTERN, "start")
    curve = _transition(smooth, _CURVE_PATTERN, "curve")
    if curve <= start:
        # nifti_dynamic does not check; its segments would be nonsense.
        raise InvalidInputError(
            f"aorta mask: the legs join (slice {curve}) below where the second one starts "
            f"(slice {start}); is the volume z-up (RAS+) and the mask an aorta?"
        )
    return start, curve


def _transition(counts: NDArray[np.int64], pattern: NDArray[np.int64], what: str) -> int:
    if counts.size < pattern.size:
        found = np.array([], dtype=np.int64)
    else:
        windows = np.lib.stride_tricks.sliding_window_view(counts, pattern.size)
        found = np.flatnonzero(np.all(windows == pattern, axis=1))
    if found.size != 1:
        change = "one to two" if what == "start" else "two to one"
        raise InvalidInputError(
            f"aorta mask: going up, its axial cross-sections should change from {change} "
            f"pieces exactly once (the {what} of the arch), found {found.size} such places. "
            "The mask must cover the heart level and the whole arch, on a z-up (RAS+) grid."
        )
    return int(found[0]) + pattern.size // 2


def _two_legs(below: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Ascending and descending masks below the curve: the larger piece is descending."""
    labels, n = ndimage.label(below)
    if n < 2:
        # nifti_dynamic calls a lone piece descending and makes no ascending segment; on a
        # z-down volume the arch lands here and joins the legs, so refuse instead.
        raise InvalidInputError(
            "aorta mask: below the arch the ascending and descending aorta are one connected "
            "piece, not two; is the volume z-up (RAS+) and the mask an aorta?"
        )
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    big, small = order[0] + 1, order[1] + 1
    if sizes[big - 1] == sizes[small - 1]:
        # An exact tie: fall back on anatomy, the ascending aorta is anterior (larger y).
        y = np.arange(below.shape[1])[None, :, None]
        if (y * (labels == big)).sum() > (y * (labels == small)).sum():
            big, small = small, big
    return labels == small, labels == big


def _refine_by_uptake(seg: NDArray[np.uint8], uptake: NDArray[Any]) -> None:
    """Drop segment voxels below 2/3 of the aorta's median early uptake, keep enclosed holes."""
    inside = seg > 0
    if not inside.any():
        return
    # Same expression as nifti_dynamic, so the threshold rounds the same way in float32.
    threshold = _UPTAKE_FRACTION * np.median(uptake[inside])
    active = (uptake > threshold) & inside
    # Pad with background so holes touching the box edge are told apart from the outside
    # exactly as on the full grid (the mask never reaches past the box).
    filled = ndimage.binary_fill_holes(np.pad(active, 1))[1:-1, 1:-1, 1:-1]
    seg[~filled] = 0
