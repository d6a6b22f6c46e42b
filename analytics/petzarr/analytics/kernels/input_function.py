"""Image-derived input functions: hedyPET's cylindrical VOIs in the four aorta segments.

A reimplementation, on canonical ``(z, y, x)`` arrays, of ``nifti_dynamic.aorta_rois`` 0.3.1
``create_cylindrical_voi`` / ``extract_aorta_vois`` and ``average_early_pet_frames``, which
hedyPET ran with ``(1 mL, 3 px)``, ``(2 mL, 5 px)`` and ``(full length, 3 px)``
(``DEPICT-RH/hedyPET``, ``src/hedypet/scripts/05_make_input_function_rois.py``). The segments
come from :func:`petzarr.analytics.kernels.aorta.aorta_segments`; the TACs are the per-frame mean of
the dynamic PET in each VOI, i.e. the ordinary per-label reduction of the returned label map.

How one VOI is placed, in voxels (the spacing only converts mL to voxels):

- The VOI runs along one array axis: z (axial slices) in the ascending and both descending
  segments, y (coronal slices) in the top, where the arch runs front to back.
- Its cross-section is ``width_px x width_px`` voxels in every slice, centred on the
  early-uptake-weighted centroid of the segment in that slice, rounded to a voxel (ties to
  even). It follows the vessel as a staircase and is not clipped to the segment: in the top,
  a band over the arch that is thin in z at its front and back ends, the squares can overhang
  the legs below by up to ``width_px // 2`` slices.
- Length: ``n = max(1, ceil(int(volume_ml * 1000 / voxel_mm3) / width_px**2))`` slices, so
  the volume is ``n * width_px**2`` voxels: above the requested mL less one voxel, below it
  plus one cross-section (hedyPET's 1 mL x 3 px is 225 voxels = 1.011 mL at 1.65 mm).
  ``n`` is placed where the moving mean over ``n`` slices of the per-slice median early
  uptake is highest (the first such window on ties), its centre ``c`` (first slice
  ``c - n // 2``) restricted to ``first + n // 2 <= c < last - n // 2``. Full length
  (``volume_ml=None``) takes slices ``first .. last - 1`` of the segment: nifti_dynamic's
  ``range(min, max)`` leaves the last slice out, and so do we, to reproduce the published VOIs.
- Slices where the segment is empty get no cross-section. Segments are drawn 1 to 4; where
  two VOIs overlap the later wins.

One deliberate difference: where nifti_dynamic's window would start at a negative slice
index and wrap around the volume (an even-length VOI in a segment only ``n`` slices longer
than it, or no positive uptake in the segment), we raise :class:`InvalidInputError` instead of
returning a VOI in the wrong place. Otherwise the maps equal nifti_dynamic 0.3.1's voxel for
voxel on every phantom tried (the tests compare them when it is installed); only exact float
ties could differ, e.g. a centroid at exactly half a voxel (computed in float64 here, with a
float32 denominator there).

Volumes in the published table confirm the length rule: 225 voxels (1 mL x 3 px), 450
(2 mL x 5 px), and a multiple of 9 for every full-length VOI, with ascending and descending
upper always equally long.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from petzarr.analytics.kernels.aorta import AORTA_SEGMENTS, TOP, aorta_segments
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "EARLY_FRAMES_BEFORE_S",
    "HEDYPET_VOIS",
    "aorta_vois",
    "early_frames_mean",
    "input_function_vois",
    "voi_task",
]

#: Frames starting before this time [s] make the early-uptake image (hedyPET: 40 s).
EARLY_FRAMES_BEFORE_S: Final = 40.0
#: hedyPET's VOIs as ``(volume_ml or None for full length, width_px)``.
HEDYPET_VOIS: Final[tuple[tuple[float | None, int], ...]] = ((1.0, 3), (2.0, 5), (None, 3))


def voi_task(volume_ml: float | None, width_px: int) -> str:
    """The ``Task`` name of a VOI version, as in hedyPET's tables.

    Examples
    --------
    >>> [voi_task(v, w) for v, w in HEDYPET_VOIS]
    ['aortavois_ml-1_width-3', 'aortavois_ml-2_width-5', 'aortavois_ml-full_width-3']
    >>> voi_task(1.5, 5)
    'aortavois_ml-1.5_width-5'
    """
    volume = "full" if volume_ml is None else f"{volume_ml:g}"
    return f"aortavois_ml-{volume}_width-{width_px}"


def early_frames_mean(
    pet: Any, frame_start_s: ArrayLike, *, before_s: float = EARLY_FRAMES_BEFORE_S
) -> Any:
    """Mean of the frames that start before ``before_s``: the bolus' first pass.

    As ``nifti_dynamic.aorta_rois.average_early_pet_frames``: the first ``k`` frames, ``k``
    being how many start before ``before_s``. Only slicing and ``.mean`` are used, so a
    dask array stays lazy.

    Parameters
    ----------
    pet : numpy or dask array (or array_like), shape (t, z, y, x)
        Dynamic PET.
    frame_start_s : array_like, shape (t,)
        Frame start times [s] from injection, increasing.
    before_s : float, default 40
        hedyPET's threshold.

    Returns
    -------
    array, shape (z, y, x)
        Of the input's kind (numpy or dask), in the dtype its ``mean`` gives (float32 stays
        float32).

    Examples
    --------
    >>> pet = np.arange(4.0)[:, None, None, None] * np.ones((4, 1, 2, 2))
    >>> early_frames_mean(pet, [0, 20, 40, 60])[0, 0, 0]  # frames 0 and 1
    np.float64(0.5)
    """
    start = np.asarray(frame_start_s, dtype=np.float64)
    shape = getattr(pet, "shape", None)
    if shape is None:
        pet = np.asarray(pet)
        shape = pet.shape
    if len(shape) != 4 or start.shape != (shape[0],):
        raise InvalidInputError(
            f"dynamic PET must be (t, z, y, x) with one start time per frame; got shape "
            f"{shape} and {start.shape[0] if start.ndim == 1 else start.shape} start times"
        )
    if np.any(np.diff(start) <= 0):
        raise InvalidInputError("frame start times must be strictly increasing")
    n = int(np.count_nonzero(start < before_s))
    if n == 0:
        raise InvalidInputError(
            f"no frame starts before {before_s} s (first at {start[0]} s); the early-uptake "
            "image needs the bolus' first pass"
        )
    return pet[:n].mean(axis=0)


def aorta_vois(
    segments: ArrayLike,
    early_mean: ArrayLike,
    spacing_mm: Sequence[float],
    *,
    volume_ml: float | None,
    width_px: int,
) -> NDArray[np.uint8]:
    """One cylindrical VOI per aorta segment, placed where early uptake is highest.

    Parameters
    ----------
    segments : array_like of int, shape (z, y, x)
        Aorta segments 1..4 (:func:`petzarr.analytics.kernels.aorta.aorta_segments`).
    early_mean : array_like of float, shape (z, y, x)
        The early-frame mean the segments were made from.
    spacing_mm : sequence of 3 floats
        Voxel size ``(dz, dy, dx)`` [mm]; only its product is used.
    volume_ml : float or None
        Requested volume [mL]; None runs the VOI over the segment's full length.
    width_px : int
        Side of the square cross-section [voxels].

    Returns
    -------
    ndarray of uint8, shape (z, y, x)
        The VOI of segment ``k`` carries label ``k``; segments absent from ``segments``
        get no VOI.

    Raises
    ------
    InvalidInputError
        Bad shapes or arguments; a segment too short for the requested length (hedyPET
        refuses it too); no positive early uptake where the VOI could go.

    Examples
    --------
    A straight vertical tube labelled descending lower, uptake peaking at slice 12:

    >>> seg = np.zeros((30, 9, 9), dtype=np.uint8)
    >>> seg[:, 2:7, 2:7] = 4
    >>> uptake = np.exp(-(((np.arange(30) - 12) / 4.0) ** 2))[:, None, None] * (seg > 0)
    >>> voi = aorta_vois(seg, uptake, (2.0, 2.0, 2.0), volume_ml=0.5, width_px=3)
    >>> int((voi == 4).sum()), np.flatnonzero(voi.any(axis=(1, 2))).tolist()
    (63, [9, 10, 11, 12, 13, 14, 15])
    """
    labels, uptake = _parse_volumes(segments, early_mean)
    voxel_mm3 = _parse_spacing(spacing_mm)
    n_slices = _parse_length(volume_ml, width_px, voxel_mm3)
    out = np.zeros(labels.shape, dtype=np.uint8)
    labelled = np.nonzero(labels)  # one pass over the volume; the aorta is a tiny part of it
    which = labels[labelled]
    for label in AORTA_SEGMENTS:
        voxels = tuple(i[which == label] for i in labelled)
        if voxels[0].size == 0:
            continue
        axis = 1 if label == TOP else 0
        _draw_voi(out, voxels, uptake[voxels], label, axis=axis, n_slices=n_slices, width=width_px)
    return out


def input_function_vois(
    aorta_mask: ArrayLike,
    early_mean: ArrayLike,
    spacing_mm: Sequence[float],
    *,
    vois: Sequence[tuple[float | None, int]] = HEDYPET_VOIS,
) -> dict[str, NDArray[np.uint8]]:
    """hedyPET's input-function VOI maps, one per VOI version, from the aorta mask.

    Segments the aorta once (:func:`petzarr.analytics.kernels.aorta.aorta_segments`) and places the
    VOIs of every version in it (:func:`aorta_vois`). Each map's TACs (per-frame mean, std
    and count per label) are the input functions ``<task>`` x ``aorta_ascending`` (1),
    ``aorta_top`` (2), ``aorta_descending_upper`` (3), ``aorta_descending_lower`` (4).

    Parameters
    ----------
    aorta_mask : array_like of bool, shape (z, y, x)
        TotalSegmentator's aorta on the dynamic PET grid, canonical RAS+.
    early_mean : array_like of float, shape (z, y, x)
        :func:`early_frames_mean` of the dynamic PET.
    spacing_mm : sequence of 3 floats
        Voxel size ``(dz, dy, dx)`` [mm].
    vois : sequence of (volume_ml or None, width_px), default :data:`HEDYPET_VOIS`
        VOI versions to make.

    Returns
    -------
    dict
        :func:`voi_task` name -> uint8 label map (z, y, x).

    Examples
    --------
    >>> mask = np.zeros((60, 14, 7), dtype=bool)
    >>> mask[0:50, 1:6, 1:6] = True      # descending
    >>> mask[20:50, 8:13, 1:6] = True    # ascending
    >>> mask[40:50, 1:13, 1:6] = True    # arch
    >>> maps = input_function_vois(mask, mask * 5.0, (2.0, 2.0, 2.0), vois=[(0.2, 3), (None, 3)])
    >>> {task: np.unique(m).tolist() for task, m in maps.items()}
    {'aortavois_ml-0.2_width-3': [0, 1, 2, 3, 4], 'aortavois_ml-full_width-3': [0, 1, 2, 3, 4]}
    """
    seg = aorta_segments(aorta_mask, early_mean)
    return {
        voi_task(volume, width): aorta_vois(
            seg, early_mean, spacing_mm, volume_ml=volume, width_px=width
        )
        for volume, width in vois
    }


def _parse_volumes(
    segments: ArrayLike, early_mean: ArrayLike
) -> tuple[NDArray[np.integer], NDArray[Any]]:
    labels = np.asarray(segments)
    uptake = np.asarray(early_mean)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidInputError(
            f"aorta segments must be a 3-D integer label map, got {labels.dtype} {labels.shape}"
        )
    if uptake.shape != labels.shape:
        raise InvalidInputError(
            f"early-frame mean has shape {uptake.shape} but the segments {labels.shape}"
        )
    return labels, uptake


def _parse_spacing(spacing_mm: Sequence[float]) -> float:
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise InvalidInputError(
            f"spacing_mm must be three positive sizes (dz, dy, dx) in mm, got {spacing_mm!r}"
        )
    return float(np.prod(spacing))


def _parse_length(volume_ml: float | None, width_px: int, voxel_mm3: float) -> int | None:
    """Slices per VOI (None: full length), by nifti_dynamic's rounding."""
    if isinstance(width_px, bool) or not isinstance(width_px, int | np.integer) or width_px < 1:
        raise InvalidInputError(f"width_px must be a whole number >= 1, got {width_px!r}")
    if volume_ml is None:
        return None
    if not math.isfinite(volume_ml) or volume_ml <= 0:
        raise InvalidInputError(f"volume_ml must be > 0 mL or None, got {volume_ml!r}")
    target_voxels = int(volume_ml * 1000 / voxel_mm3)
    return max(1, math.ceil(target_voxels / width_px**2))


def _draw_voi(
    out: NDArray[np.uint8],
    voxels: tuple[NDArray[np.intp], ...],
    uptake: NDArray[Any],
    label: int,
    *,
    axis: int,
    n_slices: int | None,
    width: int,
) -> None:
    """Draw one segment's VOI into ``out``; ``voxels`` are the segment's indices."""
    along = voxels[axis]
    in_plane = [a for a in range(3) if a != axis]
    order = np.argsort(along, kind="stable")
    slices, first = np.unique(along[order], return_index=True)
    groups = np.split(order, first[1:])  # voxel positions per occupied slice
    first_slice, last_slice = int(slices[0]), int(slices[-1])

    if n_slices is None:
        window = range(first_slice, last_slice)
    else:
        profile = np.zeros(out.shape[axis], dtype=np.median(uptake[groups[0]]).dtype)
        for k, group in zip(slices, groups):
            profile[k] = np.median(uptake[group])
        window = _hottest_window(profile, first_slice, last_slice, n_slices, label)

    by_slice: dict[int, NDArray[np.intp]] = dict(zip(slices.tolist(), groups))
    lo = -(width // 2)  # scipy's binary_dilation offsets for a width-long structure
    for k in window:
        members = by_slice.get(k)
        if members is None:
            continue
        weights = uptake[members].astype(np.float64)
        total = weights.sum()
        if total == 0:  # nifti_dynamic's centre of mass is NaN here; it skips the slice
            continue
        box: list[slice | int] = [k, k, k]
        for a in in_plane:
            c = int(np.rint((weights * voxels[a][members]).sum() / total))
            if not 0 <= c < out.shape[a]:
                raise InvalidInputError(
                    f"{AORTA_SEGMENTS[label]}: the uptake-weighted centre of slice {k} falls "
                    "outside the volume (negative early uptake?)"
                )
            box[a] = slice(max(c + lo, 0), c + lo + width)
        out[tuple(box)] = label


def _hottest_window(profile: NDArray[Any], first: int, last: int, n: int, label: int) -> range:
    """``n`` slices where the moving mean of ``profile`` peaks, as nifti_dynamic picks them."""
    name = AORTA_SEGMENTS[label]
    if last - first < n:
        raise InvalidInputError(
            f"{name} spans {last - first + 1} slices, too short for a {n}-slice VOI; "
            "ask for a smaller volume or a wider cross-section"
        )
    # scipy's moving mean, cast back to the profile's dtype as nifti_dynamic's was: ties
    # in float32 then resolve to the first window as there.
    smooth = ndimage.uniform_filter1d(profile, n)
    lo, hi = first + n // 2, last - n // 2  # allowed window centres: [lo, hi)
    if hi <= lo:
        raise InvalidInputError(
            f"{name} spans {last - first + 1} slices, too short to centre a {n}-slice VOI "
            "in it; ask for a smaller volume or a wider cross-section"
        )
    allowed = smooth[lo:hi]
    centre = int(np.argmax(allowed))
    if not allowed[centre] > 0:
        raise InvalidInputError(
            f"{name}: no positive early uptake to place the VOI by; is the early-frame mean "
            "the first 40 s of a dynamic PET?"
        )
    start = lo + centre - n // 2
    return range(start, start + n)
