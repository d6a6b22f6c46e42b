"""SUV/SUL normalisation constants of a converted cohort: one row per subject, one task each.

A subject that fails gets a row of NaNs with ``Failed`` True and the error in ``Note``, and
the others go on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from petzarr.analytics.drivers.subjects import run_subjects
from petzarr.analytics.jobs.norms import check_norm_options, subject_norms
from petzarr.analytics.tables.metadata_columns import ColumnMap
from petzarr.analytics.tables.suv_norms import (
    NORM_COLUMNS,
    SUL_DECAZES,
    SUL_JAMES,
    SUL_JANMA,
    SUV,
)
from petzarr.cohort.executor import Run

__all__ = ["COHORT_NORM_COLUMNS", "DENOMINATORS", "cohort_norms"]

#: Columns of :func:`cohort_norms`: :data:`~petzarr.analytics.tables.suv_norms.NORM_COLUMNS`,
#: then the PET units as stored, the store z slices the Decazes fat was counted on
#: (``"start:stop"``, half-open), and whether the subject failed (its error in ``Note``).
COHORT_NORM_COLUMNS = (*NORM_COLUMNS, "PET Units", "Decazes Slices", "Failed")
#: The four denominators [Bq/mL].
DENOMINATORS = (SUV, SUL_JAMES, SUL_JANMA, SUL_DECAZES)


def cohort_norms(
    cohort_url: str,
    *,
    subjects: Sequence[str] | None = None,
    run: Run | None = None,
    storage_options: Mapping[str, Any] | None = None,
    anon: bool = False,
    columns: ColumnMap | None = None,
    half_life_s: float | None = None,
    decazes_top: str = "fov",
) -> pd.DataFrame:
    """SUV/SUL denominators of every subject of a converted cohort, one row each.

    Parameters
    ----------
    cohort_url : str
        Cohort root, local folder or ``s3://bucket/prefix``.
    subjects : sequence of str, optional
        Subject ids (default: every subject in the index); an id not in the index raises.
    run : Run, optional
        Where the tasks run and whether a progress bar shows
        (:class:`petzarr.cohort.executor.Run`).
    storage_options, anon
        fsspec options for the cohort (default
        :func:`petzarr.cohort.storage.storage_options` with ``anon``).
    columns, half_life_s, decazes_top
        As :func:`~petzarr.analytics.jobs.norms.subject_norms`, for every subject.

    Returns
    -------
    DataFrame
        Columns :data:`COHORT_NORM_COLUMNS`, one row per subject sorted by subject id. A
        subject that failed has NaN values, ``Failed`` True and ``Note`` ``"failed: <error>"``.

    Examples
    --------
    >>> table = cohort_norms("s3://bucket/cohort", anon=True)  # doctest: +SKIP
    >>> table.loc[table["Failed"], ["Subject", "Note"]]  # doctest: +SKIP
    """
    check_norm_options(half_life_s, decazes_top)
    results, failed = run_subjects(
        subject_norms,
        cohort_url,
        desc="norms",
        subjects=subjects,
        run=run,
        storage_options=None if storage_options is None else dict(storage_options),
        anon=anon,
        kwargs={"columns": columns, "half_life_s": half_life_s, "decazes_top": decazes_top},
        per_subject=lambda row: {"index_row": row},
    )
    rows = [r | {"Failed": False} for r in results.values()]
    rows += [_failed_row(s, error) for s, error in failed.items()]
    rows.sort(key=lambda r: str(r["Subject"]))
    table = pd.DataFrame(rows, columns=list(COHORT_NORM_COLUMNS))
    table["Decay Corrected"] = table["Decay Corrected"].astype(bool)
    table["Failed"] = table["Failed"].astype(bool)
    return table


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
