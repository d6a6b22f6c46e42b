"""Map a per-subject function over a cohort on Dask, one task per subject; failures collected.

The thin Dask layer shared by the dynamic-PET drivers (TACs, input functions, Patlak): it
checks the subjects against the index, runs ``fn(cohort_url, subject, **kwargs)`` as one task
per subject on the one executor (:class:`petzarr.cohort.executor.Run`), and turns every
exception — and a lost worker — into that subject's error text, so one bad subject never
stops the cohort.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from petzarr.cohort import open_cohort
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run

__all__ = ["CohortRun", "run_subjects"]


@dataclass(frozen=True)
class CohortRun:
    """A cohort's result table and the subjects that failed (subject -> error)."""

    table: pd.DataFrame
    failed: dict[str, str]

    @property
    def exit_code(self) -> int:
        """0 when every subject has a result, 1 when some failed."""
        return 1 if self.failed else 0


_Item = tuple[Callable[..., Any], str, str, dict[str, Any]]


def _job(item: _Item) -> Any:
    """One subject's task: ``fn(cohort_url, subject, **kwargs)``."""
    fn, url, subject, kwargs = item
    return fn(url, subject, **kwargs)


def run_subjects(
    fn: Callable[..., Any],
    cohort_url: str,
    *,
    desc: str,
    subjects: Sequence[str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    progress: bool = True,
    run: Run | None = None,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
    kwargs: dict[str, Any] | None = None,
    per_subject: Callable[[str], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run ``fn(cohort_url, subject, storage_options=..., **kwargs)`` for every subject.

    ``fn`` must be a module-level function (it is pickled by reference to the workers).
    ``per_subject(subject)`` adds subject-specific keyword arguments. Returns the results and
    the errors, each keyed by subject (results in subject order).
    """
    cohort = open_cohort(cohort_url, storage_options=storage_options, anon=anon)
    chosen = list(dict.fromkeys(subjects)) if subjects else cohort.subjects
    unknown = sorted(set(chosen) - set(cohort.subjects))
    if unknown:
        raise InvalidInputError(f"{cohort_url}: subject(s) not in the index: {', '.join(unknown)}")
    common = dict(kwargs or {}, storage_options=cohort.storage_options)
    items: list[_Item] = [
        (fn, cohort_url, s, common | (per_subject(s) if per_subject else {})) for s in chosen
    ]
    if run is None:
        run = Run(serial, client, scheduler, workers, progress)
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for out in run.map(_job, items, desc=desc, names=chosen):
        if out.failure is None:
            results[chosen[out.position]] = out.value
        else:
            failed[chosen[out.position]] = out.failure.error
    return {s: results[s] for s in chosen if s in results}, dict(sorted(failed.items()))
