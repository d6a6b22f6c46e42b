"""Map a per-subject function over a cohort on Dask, one task per subject; failures collected.

The thin Dask layer shared by the dynamic-PET drivers (TACs, input functions, Patlak): it
checks the subjects against the index, runs ``fn(cohort_url, subject, **kwargs)`` as one task
per subject with :func:`~petzarr.cohort.cluster.map_as_completed` (or serially in this
process), and turns every exception — and a lost worker — into that subject's error text,
so one bad subject never stops the cohort.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import pandas as pd

from petzarr.cohort import open_cohort
from petzarr.cohort.cluster import connect, map_as_completed
from petzarr.cohort.errors import InvalidInputError

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


def _job(item: _Item) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, error text)``: a failure never stops the cohort."""
    fn, url, subject, kwargs = item
    try:
        return True, fn(url, subject, **kwargs)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


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
    outcome: dict[str, tuple[bool, Any]] = {}
    if serial:
        from tqdm.auto import tqdm

        for item in tqdm(items, desc=desc, unit="subject", disable=not progress):
            outcome[item[2]] = _job(item)
    else:
        ctx = nullcontext(client) if client is not None else connect(scheduler, workers=workers)
        token = uuid.uuid4().hex[:8]  # several runs may share one cluster
        with ctx as c:
            keys = [f"{desc}-{s}-{token}" for s in chosen]
            for i, out, lost in map_as_completed(
                c, _job, items, keys=keys, desc=desc, progress=progress
            ):
                outcome[chosen[i]] = out if out is not None else (False, f"worker lost: {lost!r}")
    results = {s: outcome[s][1] for s in chosen if outcome[s][0]}
    failed = {s: outcome[s][1] for s in sorted(outcome) if not outcome[s][0]}
    return results, failed
