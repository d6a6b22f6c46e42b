"""One subject's organ statistics: a store in, a long table with hedyPET's columns out.

Inside the subject the moments are a Dask tree reduction over the store's slab chunks, run
on the task's own threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import zarr

from petzarr.analytics.jobs.norms import subject_norms
from petzarr.analytics.tables.label_stats import label_statistics, name_labels
from petzarr.analytics.tables.suv_norms import SUL_DECAZES, SUL_JAMES, SUL_JANMA, SUV
from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import threaded
from petzarr.cohort.subject import SubjectStore, open_subject

__all__ = ["subject_stats"]

SUL_COLUMNS = {"James": SUL_JAMES, "Janma": SUL_JANMA, "Decazes": SUL_DECAZES}


def subject_stats(
    store: str | SubjectStore,
    *,
    group: str = layout.PET_GROUP,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    median: bool = True,
    peak: bool = True,
    suv: bool = True,
    index_row: Mapping[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Statistics of every label of every requested map of one subject.

    Columns: ``Subject, Task, Label Index, Label Name, Erosion Iterations, Voxel Count,
    Volume [mL]``, then ``PET Mean [Bq/mL], PET STD [Bq/mL], PET Min [Bq/mL], PET Max
    [Bq/mL], PET Median [Bq/mL]`` (``CT ... [HU]`` for ``group="ct"``), and for PET
    ``SUV Mean, SUV Max, SUV Peak, TLG`` and ``SUL Mean (James|Janma|Decazes)``. SUV/SUL
    are NaN, with the reason in ``Note``, where the normalisation is not computable (e.g.
    PET in CNTS, missing weight). ``suv=False`` leaves out SUV/SUL (and the reading of
    the CT maps that SUL Decazes needs). ``index_row`` is the subject's row of the cohort
    index, the metadata of a store that holds none itself.
    """
    # every chunk of a petzarr store exists, so a missing one is damage, not zeros (zarr
    # reads this setting when an array is opened)
    with zarr.config.set({"array.read_missing_chunks": False}):
        subject = open_subject(store, storage_options=storage_options)
        table = _statistics(subject, group, groups, erosion, median, peak)
        if suv and group != layout.CT_GROUP:
            _add_suv(table, subject_norms(subject, index_row=index_row))
    return table


def _statistics(
    subject: SubjectStore,
    group: str,
    groups: Sequence[str] | None,
    erosion: Iterable[int],
    median: bool,
    peak: bool,
) -> pd.DataFrame:
    image = subject.group(group)
    wanted = [layout.group_name(x) for x in groups] if groups else image.map_names
    missing = [x for x in wanted if x not in image.map_names]
    if missing:
        raise InvalidInputError(
            f"subject {subject.subject}: no label map(s) {', '.join(missing)} in group {group!r}"
        )
    maps = {name: da.from_zarr(image.label_map(name)) for name in wanted}
    with threaded():
        table = label_statistics(
            da.from_zarr(image.image),
            maps,
            spacing_mm=image.spacing_mm,
            erosion=erosion,
            median=median,
            peak=peak,
        )
    table = name_labels(table, subject.subject, {n: image.label_names(n) for n in wanted})
    unit = "HU" if group == layout.CT_GROUP else "Bq/mL"
    prefix = "CT" if group == layout.CT_GROUP else "PET"
    return table.rename(
        columns={s: f"{prefix} {s} [{unit}]" for s in ("Mean", "STD", "Min", "Max", "Median")}
        | {"Peak": f"{prefix} Peak [{unit}]"}
    )


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
