"""Map a per-subject job over a cohort's subjects on the one executor; failures collected.

The driver reads the index once, resolves each subject's store URL and hands the job only
that URL (plus the subject's index row where it asks for it); the job opens its store with
:func:`petzarr.cohort.subject.open_subject`. Every exception — and a lost worker — becomes
that subject's error, so one bad subject never stops the cohort.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from petzarr.cohort import open_cohort
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.cohort.storage import join

__all__ = ["CohortRun", "SubjectTask", "run_subjects"]


@dataclass(frozen=True)
class CohortRun:
    """A cohort's result table and the subjects that failed (subject -> error)."""

    table: pd.DataFrame
    failed: dict[str, str]
    retries: int = 0  # S3 requests the tasks retried (see petzarr.cohort.retries)

    @property
    def exit_code(self) -> int:
        """0 when every subject has a result, 1 when some failed."""
        return 1 if self.failed else 0


@dataclass(frozen=True)
class SubjectTask:
    """One subject's task: ``job(store_url, storage_options=..., **kwargs)``."""

    job: Callable[..., Any]
    store_url: str
    storage_options: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> Any:
        return self.job(self.store_url, storage_options=self.storage_options, **self.kwargs)


def run_subjects(
    job: Callable[..., Any],
    cohort_url: str,
    *,
    desc: str,
    subjects: Sequence[str] | None = None,
    run: Run | None = None,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
    kwargs: Mapping[str, Any] | None = None,
    per_subject: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    retried: list[int] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run ``job(store_url, storage_options=..., **kwargs)`` for every (chosen) subject.

    ``job`` must be a module-level function (it is pickled by reference to the workers).
    ``per_subject(index_row)`` adds subject-specific keyword arguments. Returns the results
    and the errors, each keyed by subject (results in subject order); ``retried``, when
    given, gains the number of S3 requests the tasks retried.
    """
    cohort = open_cohort(cohort_url, storage_options=storage_options, anon=anon)
    rows = {str(r["subject"]): r for r in cohort.index.to_dict("records")}
    chosen = list(dict.fromkeys(subjects)) if subjects else list(rows)
    unknown = sorted(set(chosen) - set(rows))
    if unknown:
        raise InvalidInputError(f"{cohort_url}: subject(s) not in the index: {', '.join(unknown)}")
    tasks = [
        SubjectTask(
            job,
            join(cohort.url, str(rows[s]["store"])),
            cohort.storage_options,
            dict(kwargs or {}) | (per_subject(rows[s]) if per_subject else {}),
        )
        for s in chosen
    ]
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for out in (run or Run()).map(SubjectTask.__call__, tasks, desc=desc, names=chosen):
        if retried is not None:
            retried.append(out.retries)
        if out.failure is None:
            results[chosen[out.position]] = out.value
        else:
            failed[chosen[out.position]] = out.failure.error
    return {s: results[s] for s in chosen if s in results}, dict(sorted(failed.items()))
