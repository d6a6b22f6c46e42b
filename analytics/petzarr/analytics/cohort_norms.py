"""SUV/SUL normalisation constants of a converted cohort: one row per subject, one task each.

:mod:`petzarr.analytics.norms` computes a subject's four denominators from its metadata;
this module feeds it from a petzarr cohort (``docs/format.md``):

- the metadata: the store's root attribute ``petzarr.metadata`` (the spreadsheet row as
  the converter read it), else the subject's row of ``index.parquet``;
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

:func:`cohort_norms` runs :func:`subject_norms` for every subject as one Dask task
(:class:`petzarr.cohort.executor.Run`) or serially; a subject that fails gets a
row of NaNs with ``Failed`` True and the error in ``Note``, and the others go on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import zarr

from petzarr.analytics.metadata_columns import ColumnMap, is_missing
from petzarr.analytics.norms import (
    NORM_COLUMNS,
    SUL_DECAZES,
    SUL_JAMES,
    SUL_JANMA,
    SUV,
    DecazesFat,
    decazes_fat,
    normalisation_constants,
)
from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.cohort.index import read_index
from petzarr.cohort.storage import join, zarr_store
from petzarr.cohort.storage import storage_options as default_storage_options

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "COHORT_NORM_COLUMNS",
    "DENOMINATORS",
    "FAT_LABELS",
    "cohort_norms",
    "find_labels",
    "label_table",
    "store_decazes_fat",
    "subject_norms",
    "voxel_volume_ml",
]

#: Label names counted as fat for the Decazes SUL (MOOSE body composition, TotalSegmentator
#: tissue_types).
FAT_LABELS = ("subcutaneous_fat", "visceral_fat", "torso_fat")
_HIP = re.compile(r"hip(_.*)?", re.IGNORECASE)

#: Columns of :func:`cohort_norms`: :data:`~petzarr.analytics.norms.NORM_COLUMNS`, then the
#: PET units as stored, the store z slices the Decazes fat was counted on (``"start:stop"``,
#: half-open), and whether the subject failed (its error in ``Note``).
COHORT_NORM_COLUMNS = (*NORM_COLUMNS, "PET Units", "Decazes Slices", "Failed")
#: The four denominators [Bq/mL].
DENOMINATORS = (SUV, SUL_JAMES, SUL_JANMA, SUL_DECAZES)

# index.parquet columns that are not the subject's metadata
_BOOKKEEPING = frozenset(
    {"subject", "store", "format_version", "converted_at", "ct_shape", "pet_shape", "groups"}
)


# --------------------------------------------------------------------------- store reading


def _array(group: zarr.Group, name: str) -> zarr.Array:
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise InvalidInputError(f"{group.path}/{name} is a group, not an array")
    return node


def label_table(array: zarr.Array) -> dict[int, str]:
    """``{id: name}`` of a label map, from its ``labels`` attribute (else CF flags)."""
    attrs = array.attrs.asdict()
    labels = attrs.get("labels")
    if isinstance(labels, Mapping):
        return {int(k): str(v) for k, v in labels.items()}
    values, meanings = attrs.get("flag_values"), attrs.get("flag_meanings")
    if isinstance(values, list) and isinstance(meanings, str):
        return {int(v): m for v, m in zip(values, meanings.split())}
    return {}


def find_labels(
    group: zarr.Group, match: Callable[[str], bool]
) -> tuple[str, tuple[int, ...]] | None:
    """The first label map (by array name) of ``group`` with labels whose names ``match``.

    Returns ``(array name, ids)``, or ``None`` when no map has such a label. Names are
    compared in lower case.

    >>> g = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    >>> for name, labels in [("seg_vertebrae", {"26": "hip_left", "27": "hip_right"}),
    ...                      ("seg_total", {"77": "hip_left", "78": "hip_right"})]:
    ...     _ = g.create_array(name, shape=(2, 2, 2), dtype="uint8",
    ...                        attributes={"labels": labels})
    >>> find_labels(g, lambda n: n.startswith("hip"))
    ('seg_total', (77, 78))
    >>> find_labels(g, lambda n: n == "skull") is None
    True
    """
    for name in sorted(group.array_keys()):
        if not name.startswith(layout.SEG_PREFIX):
            continue
        ids = tuple(
            sorted(i for i, n in label_table(_array(group, name)).items() if match(n.lower()))
        )
        if ids:
            return name, ids
    return None


def voxel_volume_ml(group: zarr.Group) -> float:
    """Voxel volume [mL] of an image group, from its ``z``, ``y``, ``x`` coordinates.

    >>> g = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    >>> for dim, step in zip("zyx", (3.0, 2.0, -2.0)):
    ...     _ = g.create_array(dim, data=100 + np.arange(4) * step)
    >>> voxel_volume_ml(g)
    0.012
    """
    volume = 1.0
    for dim in layout.SPATIAL_DIMS:
        if dim not in group:
            raise InvalidInputError(f"group {group.path!r} has no {dim!r} coordinate")
        c = np.asarray(_array(group, dim)[:], dtype=np.float64)
        if c.size < 2:
            raise InvalidInputError(
                f"group {group.path!r}: one voxel along {dim}, its spacing is unknown"
            )
        step = (c[-1] - c[0]) / (c.size - 1)
        if step == 0 or not np.allclose(np.diff(c), step, rtol=1e-6, atol=1e-6):
            raise InvalidInputError(
                f"group {group.path!r}: the {dim} coordinates are not evenly spaced"
            )
        volume *= abs(float(step))
    return volume / 1000.0


def _mask(slab: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    if slab.dtype in (np.uint8, np.uint16):
        lut = np.zeros(np.iinfo(slab.dtype).max + 1, dtype=bool)
        lut[[i for i in ids if 0 <= i < lut.size]] = True
        return lut[slab]
    return np.isin(slab, ids)


def _per_slice_counts(
    group: zarr.Group, wanted: Mapping[str, tuple[str, Sequence[int]]]
) -> dict[str, np.ndarray]:
    """Voxels per z slice of each ``{key: (array, ids)}``, reading one chunk slab at a time."""
    arrays = {name: _array(group, name) for name, _ in wanted.values()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise InvalidInputError(
            f"label maps {sorted(arrays)} of group {group.path!r} differ in shape: {shapes}"
        )
    (shape,) = shapes
    nz = shape[0]
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
    ct: zarr.Group, *, top: str = "fov", min_fat_slices: float = 0.5
) -> DecazesFat:
    """CT fat volume [mL] from the bottom of the hip bones up, from a subject's ``ct`` group.

    Parameters
    ----------
    ct : zarr.Group
        The subject store's ``ct`` group (CT-grid label maps ``seg_*``, coordinates).
    top : str, default "fov"
        ``"fov"``: count up to the top slice of the field of view. Otherwise the name of a
        label (``"skull"``, hedyPET's vertex): count up to the highest slice holding it.
    min_fat_slices : float, default 0.5
        As in :func:`~petzarr.analytics.norms.decazes_fat`: a fat segmentation present on
        fewer than this fraction of the counted slices is reported as partial (NaN).

    Returns
    -------
    DecazesFat
        Volume NaN with a ``reason`` when there is no fat map, no hip-bone label, no
        ``top`` label, or :func:`~petzarr.analytics.norms.decazes_fat` refuses.
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
    return replace(voxels, volume_ml=voxels.volume_ml * voxel_volume_ml(ct))


def _open_store(store_url: str, options: Mapping[str, Any]) -> zarr.Group:
    return zarr.open_group(
        zarr_store(store_url, options, read_only=True),
        mode="r",
        zarr_format=3,
        use_consolidated=True,
    )


def _index_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in row.items()
        if k not in _BOOKKEEPING and not (is_missing(v) and not isinstance(v, str))
    }


# --------------------------------------------------------------------------- one subject


@dataclass(frozen=True)
class _Item:
    subject: str
    store_url: str
    index_row: dict[str, Any]


@dataclass(frozen=True)
class _Options:
    storage_options: dict[str, Any]
    columns: ColumnMap | None
    half_life_s: float | None
    decazes_top: str


def _store_norms(item: _Item, opts: _Options) -> dict[str, Any]:
    root = _open_store(item.store_url, opts.storage_options)
    attrs = root.attrs.asdict().get("petzarr", {})
    meta = attrs.get("metadata") if isinstance(attrs, Mapping) else None
    if not isinstance(meta, Mapping) or not meta:
        meta = _index_metadata(item.index_row)
    units = None
    pet_array = f"{layout.PET_GROUP}/{layout.IMAGE_ARRAY[layout.PET_GROUP]}"
    if pet_array in root:
        raw = root[pet_array].attrs.get("units")
        units = None if is_missing(raw) else str(raw)
    ct = root.get(layout.CT_GROUP)
    if isinstance(ct, zarr.Group):
        fat = store_decazes_fat(ct, top=opts.decazes_top)
    else:
        fat = DecazesFat(math.nan, reason="no ct group in the store")
    row = normalisation_constants(
        meta,
        units=units,
        fat=fat,
        columns=opts.columns,
        subject=item.subject,
        half_life_s=opts.half_life_s,
    )
    row["PET Units"] = units
    row["Decazes Slices"] = None if fat.z_range is None else "{}:{}".format(*fat.z_range)
    return row


def _options(
    cohort_url: str,
    storage_options: Mapping[str, Any] | None,
    anon: bool,
    columns: ColumnMap | None,
    half_life_s: float | None,
    decazes_top: str,
) -> _Options:
    if not isinstance(decazes_top, str) or not decazes_top.strip():
        raise InvalidInputError(f"decazes_top must be 'fov' or a label name, not {decazes_top!r}")
    if half_life_s is not None and not (math.isfinite(half_life_s) and half_life_s > 0):
        raise InvalidInputError(
            f"half_life_s must be a positive number of seconds, not {half_life_s!r}"
        )
    opts = (
        dict(storage_options)
        if storage_options is not None
        else default_storage_options(cohort_url, anon=anon)
    )
    return _Options(opts, columns, half_life_s, decazes_top.strip())


def _items(index: pd.DataFrame, cohort_url: str, subjects: Iterable[str]) -> list[_Item]:
    by_subject = {str(r["subject"]): r for r in index.to_dict("records")}
    wanted = sorted(set(subjects))
    unknown = [s for s in wanted if s not in by_subject]
    if unknown:
        raise InvalidInputError(
            f"{cohort_url}: subject(s) {unknown} not in the index "
            f"({len(by_subject)} published subject(s))"
        )
    return [_Item(s, join(cohort_url, str(by_subject[s]["store"])), by_subject[s]) for s in wanted]


def subject_norms(
    cohort_url: str,
    subject: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    anon: bool = False,
    columns: ColumnMap | None = None,
    half_life_s: float | None = None,
    decazes_top: str = "fov",
) -> dict[str, Any]:
    """SUV/SUL denominators of one subject of a converted cohort.

    Parameters
    ----------
    cohort_url : str
        Cohort root, local folder or ``s3://bucket/prefix``.
    subject : str
        The subject id, as in the index.
    storage_options : mapping, optional
        fsspec options for the cohort (default: :func:`petzarr.cohort.storage.storage_options`
        with ``anon``).
    anon : bool
        Anonymous access to an object store (ignored with ``storage_options``).
    columns : ColumnMap, optional
        Metadata column names that override recognition (``ColumnMap(weight="Body
        Weight")``).
    half_life_s : float, optional
        Radionuclide half-life [s]; default a half-life column, else F-18.
    decazes_top : str, default "fov"
        Top of the Decazes fat range: the field of view, or a label name
        (``"skull"``).

    Returns
    -------
    dict
        The keys of :data:`~petzarr.analytics.norms.NORM_COLUMNS`, plus ``PET Units`` (the
        ``pet`` array's ``units``) and ``Decazes Slices`` (the CT z slices counted,
        ``"start:stop"``, or None).

    Raises
    ------
    InvalidInputError
        The subject is not in the index, or its metadata hold an unusable value.

    Examples
    --------
    >>> row = subject_norms("s3://bucket/cohort", "0001", anon=True)  # doctest: +SKIP
    >>> row["SUV Denominator [Bq/mL]"], row["Note"]  # doctest: +SKIP
    (2451.184635238842, 'F-18 half-life (6586.2 s) assumed')
    """
    opts = _options(cohort_url, storage_options, anon, columns, half_life_s, decazes_top)
    index = read_index(cohort_url, opts.storage_options)
    (item,) = _items(index, cohort_url, [str(subject)])
    return _store_norms(item, opts)


# --------------------------------------------------------------------------- the cohort


def _failed_row(subject: str, error: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COHORT_NORM_COLUMNS, math.nan)
    row.update(
        {
            "Subject": subject,
            "Decay Corrected": False,
            "Note": f"failed: {error}",
            "Sex": None,
            "PET Units": None,
            "Decazes Slices": None,
            "Failed": True,
        }
    )
    return row


def _norms_row(item: _Item, opts: _Options) -> dict[str, Any]:
    """One task: the subject's row (its exception reaches the executor)."""
    return _store_norms(item, opts) | {"Failed": False}


def cohort_norms(
    cohort_url: str,
    *,
    subjects: Sequence[str] | None = None,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    anon: bool = False,
    columns: ColumnMap | None = None,
    half_life_s: float | None = None,
    decazes_top: str = "fov",
    progress: bool = True,
    run: Run | None = None,
) -> pd.DataFrame:
    """SUV/SUL denominators of every subject of a converted cohort, one row each.

    Each subject is one task on a Dask cluster: ``client`` when given, else ``scheduler``
    or the configured one (``DASK_SCHEDULER_ADDRESS``), else a new local cluster of
    ``workers`` processes; or in this process when ``serial``.

    Parameters
    ----------
    cohort_url : str
        Cohort root, local folder or ``s3://bucket/prefix``.
    subjects : sequence of str, optional
        Subject ids (default: every subject in the index); an id not in the index raises.
    client, scheduler, workers, serial
        Where the tasks run (see above).
    storage_options, anon, columns, half_life_s, decazes_top
        As in :func:`subject_norms`, for every subject.
    progress : bool
        Show a progress bar.

    Returns
    -------
    DataFrame
        Columns :data:`COHORT_NORM_COLUMNS`, one row per subject sorted by subject id. A
        subject that failed has NaN values, ``Failed`` True and ``Note`` ``"failed: <error>"``.

    Examples
    --------
    >>> table = cohort_norms("s3://bucket/cohort", anon=True, workers=8)  # doctest: +SKIP
    >>> table.loc[table["Failed"], ["Subject", "Note"]]  # doctest: +SKIP
    """
    opts = _options(cohort_url, storage_options, anon, columns, half_life_s, decazes_top)
    index = read_index(cohort_url, opts.storage_options)
    wanted = [str(s) for s in index["subject"]] if subjects is None else list(subjects)
    items = _items(index, cohort_url, wanted)
    if run is None:
        run = Run(serial, client, scheduler, workers, progress)
    rows = [
        out.value
        if out.failure is None
        else _failed_row(items[out.position].subject, out.failure.error)
        for out in run.map(
            partial(_norms_row, opts=opts), items, desc="norms", names=[i.subject for i in items]
        )
    ]
    rows.sort(key=lambda r: str(r["Subject"]))
    table = pd.DataFrame(rows, columns=list(COHORT_NORM_COLUMNS))
    table["Decay Corrected"] = table["Decay Corrected"].astype(bool)
    table["Failed"] = table["Failed"].astype(bool)
    return table
