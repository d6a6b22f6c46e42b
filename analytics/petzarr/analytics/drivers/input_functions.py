"""hedyPET's image-derived input functions of a converted cohort, one task per subject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from petzarr.analytics.drivers.subjects import CohortRun, run_subjects
from petzarr.analytics.jobs.input_functions import subject_input_functions
from petzarr.analytics.kernels.input_function import HEDYPET_VOIS
from petzarr.analytics.tables.tacs import TAC_COLUMNS, concat_sorted
from petzarr.cohort.executor import Run

__all__ = ["cohort_input_functions"]


def cohort_input_functions(
    cohort_url: str,
    *,
    vois: Sequence[tuple[float | None, int]] = HEDYPET_VOIS,
    subjects: Sequence[str] | None = None,
    run: Run | None = None,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
) -> CohortRun:
    """The image-derived input functions of every (or the chosen) subject, one task each.

    The per-subject job is :func:`~petzarr.analytics.jobs.input_functions.subject_input_functions`.

    Returns a :class:`~petzarr.analytics.drivers.subjects.CohortRun`: ``table`` holds the
    input-function TACs of every subject that succeeded (columns
    :data:`~petzarr.analytics.tables.tacs.TAC_COLUMNS`), ``failed`` maps subject -> error.
    Options as :func:`petzarr.analytics.drivers.tacs.cohort_tacs`.
    """
    results, failed = run_subjects(
        subject_input_functions,
        cohort_url,
        desc="input-functions",
        subjects=subjects,
        run=run,
        storage_options=storage_options,
        anon=anon,
        kwargs={"vois": list(vois)},
    )
    return CohortRun(table=concat_sorted(list(results.values()), TAC_COLUMNS), failed=failed)
