"""The Dask layer of conversion: map :func:`run_task` over tasks, report as they finish.

As little logic as possible: which subjects, how and where they are written is decided
elsewhere; here tasks go out and results come back, with a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from distributed import Client, as_completed
from tqdm.auto import tqdm

from petzarr.convert.plan import SubjectTask
from petzarr.convert.writer import SubjectResult, run_task

__all__ = ["run_distributed", "run_serial"]


def run_serial(tasks: Sequence[SubjectTask], *, progress: bool = True) -> Iterator[SubjectResult]:
    """Convert subjects one after another in this process (debugging, tiny cohorts)."""
    for task in tqdm(tasks, desc="convert", unit="subject", disable=not progress):
        yield run_task(task)


def run_distributed(
    tasks: Sequence[SubjectTask],
    client: Client,
    *,
    progress: bool = True,
    fn: Callable[[SubjectTask], SubjectResult] = run_task,
) -> Iterator[SubjectResult]:
    """Convert subjects as one Dask task each; yield results in completion order."""
    if not tasks:
        return
    keys = [f"convert-{t.subject}-{t.run_id}" for t in tasks]
    futures = client.map(fn, tasks, key=keys, pure=False, retries=0)
    subject_of = {f.key: t.subject for f, t in zip(futures, tasks, strict=True)}
    bar = tqdm(total=len(tasks), desc="convert", unit="subject", disable=not progress)
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # the worker died (memory, signal): this subject fails alone
                result = SubjectResult(
                    subject_of[future.key], "failed", error=f"worker lost: {exc!r}"
                )
            bar.update()
            bar.set_postfix_str(f"{result.subject} {result.status}", refresh=False)
            yield result
    finally:
        bar.close()
        client.cancel(futures)
