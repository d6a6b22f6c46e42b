"""Organ statistics of a converted cohort: one long table, hedyPET's columns, one task each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from petzarr.analytics.drivers.subjects import CohortRun, run_subjects
from petzarr.analytics.jobs.stats import subject_stats
from petzarr.cohort.executor import Run

__all__ = ["cohort_stats"]


def cohort_stats(
    cohort_url: str,
    *,
    subjects: Sequence[str] | None = None,
    run: Run | None = None,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
    **kwargs: Any,
) -> CohortRun:
    """:func:`~petzarr.analytics.jobs.stats.subject_stats` for every (or the chosen) subject.

    Keyword arguments (``group, groups, erosion, median, peak, suv``) go to the per-subject
    job; ``run`` says where the tasks run (:class:`petzarr.cohort.executor.Run`). The table
    is sorted by subject, task, erosion and label; a failing subject is in ``failed`` with
    its error, and the rest of the cohort carries on.
    """
    retried: list[int] = []
    results, failed = run_subjects(
        subject_stats,
        cohort_url,
        desc="stats",
        subjects=subjects,
        run=run,
        storage_options=storage_options,
        anon=anon,
        kwargs=kwargs,
        per_subject=lambda row: {"index_row": row},
        retried=retried,
    )
    table = pd.concat(list(results.values()), ignore_index=True) if results else pd.DataFrame()
    if not table.empty:
        order = ["Subject", "Task", "Erosion Iterations", "Label Index"]
        table = table.sort_values(order, kind="stable").reset_index(drop=True)
    return CohortRun(table=table, failed=failed, retries=sum(retried))
