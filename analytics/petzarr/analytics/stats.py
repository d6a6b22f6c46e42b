"""Organ statistics of a converted cohort: one long table, hedyPET's columns.

:func:`subject_stats` is the per-subject job (a plain function: a store in, a table out);
:func:`cohort_stats` maps it over the cohort on Dask, one task per subject, and collects
the failures instead of stopping. Inside a subject the moments are a Dask tree reduction
over the store's slab chunks (run on the task's own threads).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import zarr

from petzarr.analytics.cohort_norms import subject_norms
from petzarr.analytics.cohort_run import CohortRun, run_subjects
from petzarr.analytics.labeltable import label_statistics
from petzarr.analytics.norms import SUL_DECAZES, SUL_JAMES, SUL_JANMA, SUV
from petzarr.cohort import layout, open_cohort
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.storage import zarr_store

__all__ = ["cohort_stats", "subject_stats"]

# Task names of the published hedyPET tables, for the maps of a hedyPET store
TASK_NAMES = {"total": "ts_total", "tissue": "ts_tissue", "body": "ts_body"}
SUL_COLUMNS = {"James": SUL_JAMES, "Janma": SUL_JANMA, "Decazes": SUL_DECAZES}


def subject_stats(
    cohort_url: str,
    subject: str,
    *,
    group: str = layout.PET_GROUP,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    median: bool = True,
    peak: bool = True,
    suv: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Statistics of every label of every requested map of one subject.

    Columns: ``Subject, Task, Label Index, Label Name, Erosion Iterations, Voxel Count,
    Volume [mL]``, then ``PET Mean [Bq/mL], PET STD [Bq/mL], PET Min [Bq/mL], PET Max
    [Bq/mL], PET Median [Bq/mL]`` (``CT ... [HU]`` for ``group="ct"``), and for PET
    ``SUV Mean, SUV Max, SUV Peak, TLG`` and ``SUL Mean (James|Janma|Decazes)``. SUV/SUL
    are NaN, with the reason in ``Note``, where the normalisation is not computable (e.g.
    PET in CNTS, missing weight). ``suv=False`` leaves out SUV/SUL (and the reading of
    the CT maps that SUL Decazes needs).
    """
    # every chunk of a petzarr store exists, so a missing one is damage, not zeros (zarr
    # reads this setting when an array is opened)
    with zarr.config.set({"array.read_missing_chunks": False}):
        table = _subject_stats(
            cohort_url, subject, group, groups, erosion, median, peak, storage_options
        )
        if suv and group != layout.CT_GROUP:
            _add_suv(table, subject_norms(cohort_url, subject, storage_options=storage_options))
    return table


def _subject_stats(
    cohort_url: str,
    subject: str,
    group: str,
    groups: Sequence[str] | None,
    erosion: Iterable[int],
    median: bool,
    peak: bool,
    storage_options: dict[str, Any] | None,
) -> pd.DataFrame:
    cohort = open_cohort(cohort_url, storage_options=storage_options)
    root = zarr.open_group(
        zarr_store(cohort.store_url(subject), cohort.storage_options, read_only=True), mode="r"
    )
    if group not in root:
        raise InvalidInputError(f"subject {subject}: no group {group!r} in its store")
    g: Any = root[group]  # a zarr.Group (checked above); its members are arrays
    image = layout.IMAGE_ARRAY.get(group, group)
    values = da.from_zarr(g[image])
    available = sorted(
        k.removeprefix(layout.SEG_PREFIX) for k in g.array_keys() if k.startswith(layout.SEG_PREFIX)
    )
    wanted = [layout.group_name(x) for x in groups] if groups else available
    missing = [x for x in wanted if x not in available]
    if missing:
        raise InvalidInputError(
            f"subject {subject}: no label map(s) {', '.join(missing)} in group {group!r}"
        )
    maps = {name: da.from_zarr(g[layout.SEG_PREFIX + name]) for name in wanted}
    spacing = tuple(
        float(np.diff(g[d][:2])[0]) if g[d].shape[0] > 1 else 1.0 for d in layout.SPATIAL_DIMS
    )

    # this runs inside a cluster task: the subject's own graph must not go back to the cluster;
    # every chunk of a petzarr store exists, so a missing one is damage, not zeros
    with (
        dask.config.set(scheduler="threads"),
        zarr.config.set({"array.read_missing_chunks": False}),
    ):
        table = label_statistics(
            values, maps, spacing_mm=spacing, erosion=erosion, median=median, peak=peak
        )

    names = {name: _label_names(g[layout.SEG_PREFIX + name]) for name in wanted}
    table.insert(0, "Subject", subject)
    table.insert(
        3,
        "Label Name",
        [
            names[t].get(int(i), str(i))
            for t, i in zip(table["Task"], table["Label Index"], strict=True)
        ],
    )
    table["Task"] = table["Task"].map(lambda t: TASK_NAMES.get(t, t))
    unit = "HU" if group == layout.CT_GROUP else "Bq/mL"
    prefix = "CT" if group == layout.CT_GROUP else "PET"
    table = table.rename(
        columns={s: f"{prefix} {s} [{unit}]" for s in ("Mean", "STD", "Min", "Max", "Median")}
        | {"Peak": f"{prefix} Peak [{unit}]"}
    )
    return table


def _label_names(arr: Any) -> dict[int, str]:
    return {int(k): str(v) for k, v in dict(arr.attrs.get("labels", {})).items()}


def _add_suv(table: pd.DataFrame, norms: dict[str, Any]) -> None:
    """SUV/SUL columns from the subject's denominators (NaN where not computable)."""
    suv = float(norms.get(SUV, np.nan))
    table["SUV Mean"] = table["PET Mean [Bq/mL]"] / suv
    table["SUV Max"] = table["PET Max [Bq/mL]"] / suv
    table["SUV Peak"] = table["PET Peak [Bq/mL]"] / suv
    table["TLG"] = table["SUV Mean"] * table["Volume [mL]"]
    for name, column in SUL_COLUMNS.items():
        table[f"SUL Mean ({name})"] = table["PET Mean [Bq/mL]"] / float(norms.get(column, np.nan))
    table["Note"] = str(norms.get("Note", "") or "")


def cohort_stats(
    cohort_url: str,
    *,
    subjects: Sequence[str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> CohortRun:
    """:func:`subject_stats` for every (or the chosen) subject, one Dask task each.

    Keyword arguments (``group, groups, erosion, median, peak, suv``) go to
    :func:`subject_stats`. The table is sorted by subject, task, erosion and label; a
    failing subject is in ``failed`` with its error, and the rest of the cohort carries on.
    """
    results, failed = run_subjects(
        subject_stats,
        cohort_url,
        desc="stats",
        subjects=subjects,
        client=client,
        scheduler=scheduler,
        workers=workers,
        serial=serial,
        progress=progress,
        storage_options=storage_options,
        kwargs=kwargs,
    )
    table = pd.concat(list(results.values()), ignore_index=True) if results else pd.DataFrame()
    if not table.empty:
        order = ["Subject", "Task", "Erosion Iterations", "Label Index"]
        table = table.sort_values(order, kind="stable").reset_index(drop=True)
    return CohortRun(table=table, failed=failed)
