"""The Dask layer of conversion: map :func:`run_task` over tasks, report as they finish.

As little logic as possible: which subjects, how and where they are written is decided
elsewhere; here tasks go out and results come back, with a progress bar.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from distributed import Client
from tqdm.auto import tqdm

from petzarr.cohort.cluster import map_as_completed
from petzarr.convert.plan import SubjectTask
from petzarr.convert.writer import SubjectResult, run_task

__all__ = ["run_distributed", "run_serial"]


def run_serial(tasks: Sequence[SubjectTask], *, progress: bool = True) -> Iterator[SubjectResult]:
    """Convert subjects one after another in this process (debugging, tiny cohorts)."""
    for task in tqdm(tasks, desc="convert", unit="subject", disable=not progress):
        yield run_task(task)


def run_distributed(
    tasks: Sequence[SubjectTask], client: Client, *, progress: bool = True
) -> Iterator[SubjectResult]:
    """Convert subjects as one Dask task each; yield results in completion order."""
    keys = [f"convert-{t.subject}-{t.run_id}" for t in tasks]
    for i, result, lost in map_as_completed(
        client, run_task, tasks, keys=keys, desc="convert", progress=progress
    ):
        if result is None:  # the worker died (memory, signal): this subject fails alone
            result = SubjectResult(tasks[i].subject, "failed", error=f"worker lost: {lost!r}")
        yield result
