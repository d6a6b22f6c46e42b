"""A conversion run from end to end: read the source, plan, execute, index, report."""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from petzarr.cohort import layout
from petzarr.cohort.config import get_float
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.cohort.index import read_index, write_report
from petzarr.cohort.labels import dump_labels
from petzarr.cohort.retries import retries_seen
from petzarr.cohort.storage import filesystem, is_remote, join, storage_options
from petzarr.convert.plan import ConvertOptions, SubjectTask, plan_conversion
from petzarr.convert.publish import commit, sweep_staging
from petzarr.convert.sources import read_source
from petzarr.convert.writer import SubjectResult, run_task

__all__ = ["RunReport", "convert_cohort"]


@dataclass(frozen=True)
class RunReport:
    """What a run did: every subject's outcome, and where the report was written."""

    run_id: str
    results: tuple[SubjectResult, ...]
    report_url: str
    retries: int = 0  # S3 requests retried, by this process and the workers
    warnings: tuple[str, ...] = ()  # about the source as a whole (e.g. a missing spreadsheet)

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    @property
    def failed(self) -> tuple[SubjectResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def _warned(self) -> str:
        n = sum(1 for r in self.results if r.warnings)
        return f", {n} with warnings" if n else ""

    @property
    def exit_code(self) -> int:
        """0 when every subject is published, 1 when some failed."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        c = self.counts
        gb = sum(r.bytes_read for r in self.results) / 1e9
        return (
            f"{len(self.results)} subjects: {c['converted']} converted, {c['skipped']} skipped "
            f"(unchanged), {c['failed']} failed{self._warned}; {gb:.2f} GB read; {self.retries} S3 "
            f"requests retried; report {self.report_url}"
        )


def convert_cohort(
    source: str,
    dest: str,
    *,
    subjects: list[str] | None = None,
    run: Run | None = None,
    anon: bool = False,
    source_storage_options: Mapping[str, Any] | None = None,
    dest_storage_options: Mapping[str, Any] | None = None,
    layout_name: str | None = None,
    dynamic_root: str | None = None,
    options: ConvertOptions | None = None,
) -> RunReport:
    """Convert a cohort of NIfTI files into a petzarr cohort at ``dest``.

    Each subject is one task where ``run`` (a :class:`~petzarr.cohort.executor.Run`) says:
    by default the client the caller already made (``Client()`` in a notebook), else the
    configured scheduler (``DASK_SCHEDULER_ADDRESS``), else a new local multi-process
    cluster; ``Run(serial=True)`` converts in this process. The index gains a row for each
    subject as soon as it is published; subjects whose sources are unchanged since their
    last conversion are skipped. ``dynamic_root`` is hedyPET's second BIDS root (the dynamic
    series), when it is not kept under ``source``. Storage options default to
    :func:`petzarr.cohort.storage.storage_options` of each URL (``anon`` for the source).

    Examples
    --------
    >>> import tempfile
    >>> from petzarr.synth import write_enhance_cohort
    >>> from petzarr.cohort.executor import Run
    >>> src, dst = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = write_enhance_cohort(src, subjects=2, size="tiny", seed=1)
    >>> report = convert_cohort(src, dst, run=Run(serial=True, progress=False))
    >>> report.counts["converted"], report.exit_code
    (2, 0)
    """
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
    retries_before = retries_seen()
    run = run or Run()
    src_opts = (
        dict(source_storage_options)
        if source_storage_options is not None
        else storage_options(source, anon=anon)
    )
    dest_opts = (
        dict(dest_storage_options) if dest_storage_options is not None else storage_options(dest)
    )
    fs, dest_path = filesystem(dest, dest_opts)
    if fs.isfile(dest_path):
        raise InvalidInputError(f"{dest}: is a file; DEST must be a folder or an s3:// prefix")
    _check_not_inside(dest, source)
    cohort = read_source(source, src_opts, layout=layout_name, dynamic_root=dynamic_root)
    index = read_index(dest, dest_opts)
    published = dict(zip(index["subject"], index["store"], strict=True))
    tasks = plan_conversion(
        cohort,
        dest,
        run_id=run_id,
        dest_options=dest_opts,
        subjects=subjects,
        options=options,
        published=published,
    )
    if not is_remote(dest):  # the first write: say so plainly if DEST cannot be made
        try:
            fs.makedirs(dest_path, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(
                f"{dest}: DEST is not writable ({exc.strerror or exc}); nothing was written"
            ) from None
    _write_labels(dest, cohort.labels, dest_opts)

    results: list[SubjectResult] = []
    pending: list[dict[str, Any]] = []  # new versions not yet in the index
    deleted: list[str] = []
    last_flush = time.monotonic()
    flush_s = get_float("index.flush_s", minimum=0.0)

    def collect(stream: Any) -> None:
        # The index is rewritten at most every index.flush_s seconds (one put each time); a
        # crash between flushes loses nothing: a re-run adopts the sealed versions it finds.
        nonlocal last_flush
        try:
            for result in stream:
                results.append(result)
                if result.status != "failed" and result.row["store"] != published.get(
                    result.subject
                ):
                    pending.append(result.row)
                if pending and time.monotonic() - last_flush > flush_s:
                    deleted.extend(commit(dest, pending, dest_opts, run_id, published))
                    pending.clear()
                    last_flush = time.monotonic()
        finally:
            deleted.extend(commit(dest, pending, dest_opts, run_id, published))

    planned = retries_seen()  # this process's own retries: listing and planning, ...
    collect(_converted(tasks, run))  # (each subject's come with its outcome)
    collected = retries_seen()
    swept = sweep_staging(dest, dest_opts)

    finished = datetime.now(UTC)
    own = (planned - retries_before) + (retries_seen() - collected)  # ... and the sweep
    retried = own + sum(r.retries for r in results)
    order = {t.subject: i for i, t in enumerate(tasks)}
    results.sort(key=lambda r: order[r.subject])
    report = {
        "run_id": run_id,
        "source": source,
        "dest": dest,
        "layout": cohort.layout,
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "counts": dict(Counter(r.status for r in results)),
        "warnings": list(cohort.warnings),
        "swept": swept,  # format-1 leftovers in staging/
        "deleted": deleted,  # versions the index no longer names (replaced or abandoned)
        "seconds": round((finished - started).total_seconds(), 3),
        "s3_retries": retried,
        "subjects": [
            {
                "subject": r.subject,
                "status": r.status,
                "error": r.error,
                **({"traceback": r.traceback} if r.traceback else {}),
                "seconds": round(r.seconds, 3),
                "s3_retries": r.retries,
                **({"warnings": list(r.warnings)} if r.warnings else {}),
            }
            for r in results
        ],
    }
    url = write_report(dest, f"convert-{run_id}", report, dest_opts)
    return RunReport(run_id, tuple(results), url, retried, cohort.warnings)


def _check_not_inside(dest: str, source: str) -> None:
    """Refuse a DEST inside SOURCE: a later run could list its own output as input. BIDS
    keeps derived data in the dataset's ``derivatives/``, which no reader lists."""

    def norm(url: str) -> str:
        return url.rstrip("/") if is_remote(url) else os.path.realpath(url)

    d, s = norm(dest), norm(source).rstrip("/")
    inside = d == s or d.startswith(s + "/")
    if inside and not d.startswith(s + "/derivatives/"):
        raise InvalidInputError(
            f"{dest}: DEST is inside the source {source}; choose a folder outside it"
        )


def _converted(tasks: list[SubjectTask], run: Run) -> Any:
    """Each subject's result as it finishes; a lost worker fails its subject alone."""
    names = [t.subject for t in tasks]
    for out in run.map(run_task, tasks, desc="convert", names=names):
        if out.failure is None:
            yield dataclasses.replace(out.value, retries=out.retries)
        else:
            yield SubjectResult(
                tasks[out.position].subject,
                "failed",
                error=out.failure.error,
                traceback=out.failure.traceback,
                retries=out.retries,
            )


def _write_labels(dest: str, labels: dict[str, dict[int, str]], options: dict[str, Any]) -> None:
    fs, path = filesystem(join(dest, layout.LABELS), options)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w") as f:
        f.write(dump_labels(labels))
