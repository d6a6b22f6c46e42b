"""hedyPET's image-derived input functions, from a converted cohort.

:func:`subject_input_functions` takes the ``aorta`` of a subject's ``seg_total`` on the dynamic
PET grid, the mean of the frames starting before 40 s, hedyPET's four aorta segments and its
three cylindrical VOI versions (:mod:`~petzarr.analytics.kernels.aorta`,
:mod:`~petzarr.analytics.kernels.input_function`, reimplementing nifti_dynamic 0.3.1), and
the TAC of every VOI, in the columns of the TAC table — the layout of hedyPET's
``input_function_tacs_80.csv.gz``. Only the aorta's bounding box of the early frames and the
VOIs' bounding box of every frame are read, one frame at a time.
The cohort driver is :func:`petzarr.analytics.drivers.input_functions.cohort_input_functions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
import zarr

from petzarr.analytics.kernels.aorta import AORTA_SEGMENTS
from petzarr.analytics.kernels.input_function import (
    EARLY_FRAMES_BEFORE_S,
    HEDYPET_VOIS,
    input_function_vois,
)
from petzarr.analytics.kernels.moments import LabelMoments, accumulate_block
from petzarr.analytics.tables.label_stats import name_labels
from petzarr.analytics.tables.tacs import finish_tac_table, moments_table
from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError, PetZarrError
from petzarr.cohort.subject import ImageGroup, SubjectStore, open_subject, read_config

__all__ = ["AORTA", "dynamic_input_functions", "subject_input_functions", "voi_maps"]

#: TotalSegmentator's class name of the aorta.
AORTA: Final = "aorta"


def subject_input_functions(
    store: str | SubjectStore,
    *,
    vois: Sequence[tuple[float | None, int]] = HEDYPET_VOIS,
    aorta_group: str = "total",
    aorta_label: str = AORTA,
    early_before_s: float = EARLY_FRAMES_BEFORE_S,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """hedyPET's image-derived input functions of one subject, as a TAC table.

    Parameters
    ----------
    store : str or SubjectStore
        The subject store's URL (folder or ``s3://...``), or the store already open.
    vois : sequence of (volume_ml or None, width_px)
        VOI versions (default hedyPET's three: 1 mL x 3 px, 2 mL x 5 px, full length x 3 px).
    aorta_group, aorta_label : str
        The label map and class holding the aorta (TotalSegmentator ``total``, ``aorta``).
    early_before_s : float
        Frames starting before this [s] make the early-uptake image (hedyPET: 40 s).
    storage_options : dict, optional
        fsspec options for a remote store.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~petzarr.analytics.jobs.tacs.TAC_COLUMNS`: ``Task`` = the VOI version
        (``aortavois_ml-1_width-3``, ...), ``Label Index`` 1..4 = ``aorta_ascending``,
        ``aorta_top``, ``aorta_descending_upper``, ``aorta_descending_lower``, erosion 0.
        As an input function its identifier is ``<Task>_<Label Name>``.

    Examples
    --------
    A converted Patlak phantom (:mod:`petzarr.synth.patlak_phantom`), whose aorta carries a
    known input function:

    >>> import tempfile
    >>> from petzarr.cohort.executor import Run
    >>> from petzarr.convert.job import convert_cohort
    >>> from petzarr.synth.patlak_phantom import write_patlak_cohort
    >>> source, root = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = write_patlak_cohort(source, subjects=("sub-001",))
    >>> _ = convert_cohort(source, root, run=Run(serial=True, progress=False))
    >>> from petzarr.cohort import open_cohort
    >>> store = open_cohort(root).store_url("sub-001")
    >>> table = subject_input_functions(store, vois=[(1.0, 3)])
    >>> table["Task"].unique().tolist()
    ['aortavois_ml-1_width-3']
    >>> curves = table.groupby(["Label Index", "Label Name"])["Voxel Count"].first()
    >>> for (index, name), voxels in curves.items():  # 2 slices x 3 x 3 px each
    ...     print(index, name, voxels)
    1 aorta_ascending 18
    2 aorta_top 18
    3 aorta_descending_upper 18
    4 aorta_descending_lower 18
    """
    with zarr.config.set(read_config()):
        dyn = open_subject(store, storage_options=storage_options).group(layout.PET_DYNAMIC_GROUP)
        return dynamic_input_functions(
            dyn,
            vois=vois,
            aorta_group=aorta_group,
            aorta_label=aorta_label,
            early_before_s=early_before_s,
        )


def dynamic_input_functions(
    dyn: ImageGroup,
    *,
    vois: Sequence[tuple[float | None, int]] = HEDYPET_VOIS,
    aorta_group: str = "total",
    aorta_label: str = AORTA,
    early_before_s: float = EARLY_FRAMES_BEFORE_S,
) -> pd.DataFrame:
    """:func:`subject_input_functions` of an open ``pet_dynamic`` group."""
    try:
        maps, box = voi_maps(
            dyn,
            vois=vois,
            aorta_group=aorta_group,
            aorta_label=aorta_label,
            early_before_s=early_before_s,
        )
        return _voi_tacs(dyn, maps, box)
    except PetZarrError as exc:
        if f"subject {dyn.subject}" in str(exc):
            raise
        raise type(exc)(f"subject {dyn.subject}: {exc}") from exc


def voi_maps(
    dyn: ImageGroup,
    *,
    vois: Sequence[tuple[float | None, int]] = HEDYPET_VOIS,
    aorta_group: str = "total",
    aorta_label: str = AORTA,
    early_before_s: float = EARLY_FRAMES_BEFORE_S,
) -> tuple[dict[str, np.ndarray], tuple[slice, ...]]:
    """The input-function VOI maps of an open ``pet_dynamic`` group, to draw or to reuse.

    Returns ``{task: uint8 map on the dynamic grid}`` (label ``k`` = aorta segment ``k``, as
    :func:`~petzarr.analytics.kernels.input_function.input_function_vois`) and the bounding
    box of all their voxels.
    """
    seg = dyn.label_map(aorta_group)
    ids = [i for i, name in dyn.label_names(aorta_group).items() if name == aorta_label]
    if len(ids) != 1:
        raise InvalidInputError(
            f"seg_{aorta_group} has {len(ids)} labels named {aorta_label!r} (need one); "
            "is it TotalSegmentator's 'total' map?"
        )
    mask = np.asarray(seg[...]) == ids[0]
    box = _bounding_box(mask)
    if box is None:
        raise InvalidInputError(
            f"seg_{aorta_group} has no {aorta_label!r} voxels on the dynamic PET grid; the "
            "field of view must cover the thorax"
        )
    early = _early_mean(dyn, box, early_before_s)
    maps = input_function_vois(mask, early, dyn.spacing_mm, vois=vois)
    union = np.zeros(mask.shape, dtype=bool)
    for m in maps.values():
        union |= m > 0
    voi_box = _bounding_box(union)
    if voi_box is None:  # pragma: no cover - input_function_vois raises first
        raise InvalidInputError("no input-function VOI could be placed in the aorta")
    return maps, voi_box


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    where = [np.flatnonzero(mask.any(axis=other)) for other in ((1, 2), (0, 2), (0, 1))]
    if where[0].size == 0:
        return None
    return tuple(slice(int(w[0]), int(w[-1]) + 1) for w in where)


def _early_mean(dyn: ImageGroup, box: tuple[slice, ...], before_s: float) -> np.ndarray:
    """Mean of the frames starting before ``before_s`` inside ``box``, zero elsewhere.

    Only the aorta's voxels are ever looked at (segments and VOIs read the early image there
    alone), so only its bounding box is read. Frames are added one by one in float32 and the
    sum divided by their number, as numpy's ``pet[:n].mean(axis=0)`` (and nifti_dynamic's
    ``average_early_pet_frames``) computes it, so thresholds round the same way.
    """
    start = dyn.frames.start_s
    n = int(np.count_nonzero(start < before_s))
    if n == 0:
        raise InvalidInputError(
            f"no frame starts before {before_s} s (first at {start[0]} s); the early-uptake "
            "image needs the bolus' first pass"
        )
    pet: Any = dyn.image
    acc = np.asarray(pet[(0, *box)], dtype=np.float32).copy()
    for t in range(1, n):
        acc += np.asarray(pet[(t, *box)], dtype=np.float32)
    early = np.zeros(dyn.image.shape[1:], dtype=np.float32)  # untouched pages cost no memory
    early[box] = acc / np.float32(n)
    return early


def _voi_tacs(dyn: ImageGroup, maps: dict[str, np.ndarray], box: tuple[slice, ...]) -> pd.DataFrame:
    """TACs of every VOI map, reading the VOIs' bounding box frame by frame."""
    cropped = [np.ascontiguousarray(m[box]) for m in maps.values()]
    n_labels = max(AORTA_SEGMENTS) + 1
    pet: Any = dyn.image
    nt = pet.shape[0]
    packed = np.empty((nt, len(cropped), n_labels, 5))
    for t in range(nt):
        frame = np.asarray(pet[(t, *box)])
        packed[t] = accumulate_block(frame, cropped, n_labels=n_labels)
    table = moments_table(
        LabelMoments.from_packed(packed),
        [(task, 0) for task in maps],
        frame_mid_s=dyn.frames.mid_s,
        voxel_ml=dyn.voxel_ml,
    )
    names = dict.fromkeys(maps, AORTA_SEGMENTS)
    return finish_tac_table(name_labels(table, dyn.subject, names))
