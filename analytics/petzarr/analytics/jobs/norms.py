"""One subject's SUV/SUL normalisation constants, read from its store.

:mod:`petzarr.analytics.tables.suv_norms` computes a subject's four denominators from its metadata;
this module feeds it from a petzarr cohort (``docs/format.md``):

- the metadata: the store's root attribute ``petzarr.metadata`` (the spreadsheet row as
  the converter read it), else the subject's row of ``index.parquet`` (given by the driver);
- the PET units: the ``units`` attribute of the ``pet`` array (the converter records the
  source's units there, ``Bq/mL`` unless the source says otherwise, e.g. ``CNTS``);
- for the Decazes SUL, the CT fat volume from the bottom of the hip bones to the top of the
  field of view (or to the top of a named label, hedyPET's ``skull``), counted on the CT-grid
  label maps of group ``ct``. Labels are found by name in each map's ``labels`` attribute,
  never by id: fat is ``subcutaneous_fat``, ``visceral_fat`` (MOOSE
  ``clin_ct_body_composition``) and ``torso_fat`` (TotalSegmentator ``tissue_types``); the hip
  bones are ``hip`` / ``hip_*`` (ENHANCE.PET keeps them in Vertebrae, TotalSegmentator in
  ``total``). When several maps carry such labels, the first by array name is used.

Only what is needed is read: root metadata, and for Decazes the fat and hip maps (and the
``top`` label's map) one chunk slab at a time, reduced at once to per-slice voxel counts,
so memory is one slab per map whatever the volume. The voxel volume comes from the ``z``,
``y``, ``x`` coordinate spacing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from petzarr.analytics.tables.metadata_columns import ColumnMap, is_missing
from petzarr.analytics.tables.suv_norms import DecazesFat, decazes_fat, normalisation_constants
from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.subject import ImageGroup, SubjectStore, open_subject

__all__ = [
    "FAT_LABELS",
    "check_norm_options",
    "find_labels",
    "store_decazes_fat",
    "subject_norms",
]

#: Label names counted as fat for the Decazes SUL (MOOSE body composition, TotalSegmentator
#: tissue_types).
FAT_LABELS = ("subcutaneous_fat", "visceral_fat", "torso_fat")

_HIP = re.compile(r"hip(_.*)?", re.IGNORECASE)


def subject_norms(
    store: str | SubjectStore,
    *,
    index_row: Mapping[str, Any] | None = None,
    columns: ColumnMap | None = None,
    half_life_s: float | None = None,
    decazes_top: str = "fov",
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """SUV/SUL denominators of one subject of a converted cohort.

    Parameters
    ----------
    store : str or SubjectStore
        The subject store's URL (folder or ``s3://...``), or the store already open.
    index_row : mapping, optional
        The subject's row of the cohort index: its metadata when the store holds none.
    columns : ColumnMap, optional
        Metadata column names that override recognition (``ColumnMap(weight="Body
        Weight")``).
    half_life_s : float, optional
        Radionuclide half-life [s]; default a half-life column, else F-18.
    decazes_top : str, default "fov"
        Top of the Decazes fat range: the field of view, or a label name
        (``"skull"``).
    storage_options : mapping, optional
        fsspec options for a remote store.

    Returns
    -------
    dict
        The keys of :data:`~petzarr.analytics.tables.suv_norms.NORM_COLUMNS`, plus
        ``PET Units`` (the ``pet`` array's ``units``) and ``Decazes Slices`` (the CT z
        slices counted, ``"start:stop"``, or None).

    Raises
    ------
    InvalidInputError
        The metadata hold an unusable value, or an option is invalid.

    Examples
    --------
    >>> url = "s3://bucket/cohort/subjects/0001/20261207T061720161488Z.zarr"
    >>> row = subject_norms(url, storage_options={"anon": True})  # doctest: +SKIP
    >>> row["SUV Denominator [Bq/mL]"], row["Note"]  # doctest: +SKIP
    (2451.184635238842, 'F-18 half-life (6586.2 s) assumed')
    """
    check_norm_options(half_life_s, decazes_top)
    subject = open_subject(store, storage_options=storage_options)
    meta = subject.metadata or _index_metadata(index_row or {})
    units = None
    if subject.has(layout.PET_GROUP):
        raw = subject.group(layout.PET_GROUP).image.attrs.get("units")
        units = None if is_missing(raw) else str(raw)
    if subject.has(layout.CT_GROUP):
        fat = store_decazes_fat(subject.group(layout.CT_GROUP), top=decazes_top.strip())
    else:
        fat = DecazesFat(math.nan, reason="no ct group in the store")
    row = normalisation_constants(
        meta,
        units=units,
        fat=fat,
        columns=columns,
        subject=subject.subject,
        half_life_s=half_life_s,
    )
    row["PET Units"] = units
    row["Decazes Slices"] = None if fat.z_range is None else "{}:{}".format(*fat.z_range)
    return row


def check_norm_options(half_life_s: float | None, decazes_top: str) -> None:
    """Refuse a bad half-life or Decazes top before any subject is read."""
    if not isinstance(decazes_top, str) or not decazes_top.strip():
        raise InvalidInputError(f"decazes_top must be 'fov' or a label name, not {decazes_top!r}")
    if half_life_s is not None and not (math.isfinite(half_life_s) and half_life_s > 0):
        raise InvalidInputError(
            f"half_life_s must be a positive number of seconds, not {half_life_s!r}"
        )


def _index_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in row.items()
        if k not in layout.BOOKKEEPING_COLUMNS and not (is_missing(v) and not isinstance(v, str))
    }


def find_labels(
    group: ImageGroup, match: Callable[[str], bool]
) -> tuple[str, tuple[int, ...]] | None:
    """The first label map (by name) of ``group`` with labels whose names ``match``.

    Returns ``(map name, ids)``, or ``None`` when no map has such a label. Names are
    compared in lower case.

    >>> import zarr
    >>> from petzarr.cohort.subject import ImageGroup
    >>> g = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    >>> _ = g.create_array("ct", shape=(2, 2, 2), dtype="int16")
    >>> for name, labels in [("seg_vertebrae", {"26": "hip_left", "27": "hip_right"}),
    ...                      ("seg_total", {"77": "hip_left", "78": "hip_right"})]:
    ...     _ = g.create_array(name, shape=(2, 2, 2), dtype="uint8",
    ...                        attributes={"labels": labels})
    >>> ct = ImageGroup("s1", "ct", g)
    >>> find_labels(ct, lambda n: n.startswith("hip"))
    ('total', (77, 78))
    >>> find_labels(ct, lambda n: n == "skull") is None
    True
    """
    for name in group.map_names:
        ids = tuple(sorted(i for i, n in group.label_names(name).items() if match(n.lower())))
        if ids:
            return name, ids
    return None


def _mask(slab: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    if slab.dtype in (np.uint8, np.uint16):
        lut = np.zeros(np.iinfo(slab.dtype).max + 1, dtype=bool)
        lut[[i for i in ids if 0 <= i < lut.size]] = True
        return lut[slab]
    return np.isin(slab, ids)


def _per_slice_counts(
    group: ImageGroup, wanted: Mapping[str, tuple[str, Sequence[int]]]
) -> dict[str, np.ndarray]:
    """Voxels per z slice of each ``{key: (map, ids)}``, reading one chunk slab at a time."""
    arrays = {name: group.label_map(name) for name, _ in wanted.values()}  # on the image grid
    nz = group.image.shape[0]
    step = max(1, min(a.chunks[0] for a in arrays.values()))
    counts = {key: np.zeros(nz, dtype=np.int64) for key in wanted}
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        slabs = {name: np.asarray(a[z0:z1]) for name, a in arrays.items()}
        for key, (name, ids) in wanted.items():
            hit = _mask(slabs[name], ids)
            counts[key][z0:z1] = np.count_nonzero(hit.reshape(z1 - z0, -1), axis=1)
        del slabs
    return counts


def store_decazes_fat(
    ct: ImageGroup, *, top: str = "fov", min_fat_slices: float = 0.5
) -> DecazesFat:
    """CT fat volume [mL] from the bottom of the hip bones up, from a subject's ``ct`` group.

    Parameters
    ----------
    ct : ImageGroup
        The subject store's ``ct`` group (CT-grid label maps ``seg_*``, coordinates).
    top : str, default "fov"
        ``"fov"``: count up to the top slice of the field of view. Otherwise the name of a
        label (``"skull"``, hedyPET's vertex): count up to the highest slice holding it.
    min_fat_slices : float, default 0.5
        As in :func:`~petzarr.analytics.tables.suv_norms.decazes_fat`: a fat segmentation present on
        fewer than this fraction of the counted slices is reported as partial (NaN).

    Returns
    -------
    DecazesFat
        Volume NaN with a ``reason`` when there is no fat map, no hip-bone label, no
        ``top`` label, or :func:`~petzarr.analytics.tables.suv_norms.decazes_fat` refuses.
    """
    fat = find_labels(ct, lambda n: n in FAT_LABELS)
    if fat is None:
        return DecazesFat(
            math.nan, reason=f"no fat labels ({', '.join(FAT_LABELS)}) in the CT label maps"
        )
    hip = find_labels(ct, lambda n: _HIP.fullmatch(n) is not None)
    if hip is None:
        return DecazesFat(
            math.nan,
            reason="no hip-bone labels (hip_*) in the CT label maps: the bottom of the range "
            "(the ischia) is unknown",
        )
    wanted = {"fat": fat, "hip": hip}
    if top != "fov":
        wanted_top = find_labels(ct, lambda n: n == top.lower())
        if wanted_top is None:
            return DecazesFat(
                math.nan, reason=f"no label named {top!r} in the CT label maps (Decazes top)"
            )
        wanted["top"] = wanted_top
    counts = _per_slice_counts(ct, wanted)
    top_slice = None
    if "top" in counts:
        rows = np.flatnonzero(counts["top"])
        if rows.size == 0:
            return DecazesFat(math.nan, reason=f"label {top!r} has no voxels (Decazes top)")
        top_slice = int(rows[-1])
    # Integer voxel counts (exact in float64), scaled by the voxel volume once at the end.
    voxels = decazes_fat(
        counts["fat"].astype(np.float64),
        hip=counts["hip"] > 0,
        top=top_slice,
        min_fat_slices=min_fat_slices,
    )
    return replace(voxels, volume_ml=voxels.volume_ml * ct.voxel_ml)
