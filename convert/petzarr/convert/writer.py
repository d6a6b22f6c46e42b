"""Converting one subject: the whole per-subject job in one plain function.

:func:`convert_subject` writes ``subjects/<id>/<run>.zarr`` from a subject's files: built
(:mod:`petzarr.convert.build`), read back and checked, then sealed; the driver publishes it
with its index row (:mod:`petzarr.convert.publish`), so nothing is ever copied. It raises
on any problem; :func:`run_task` wraps it into a :class:`SubjectResult` so an executor
can carry on with the other subjects. Nothing here knows about Dask.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import zarr

from petzarr.cohort import layout
from petzarr.cohort.errors import MissingSourceError, PetZarrError, VerificationError
from petzarr.cohort.metadata import SourceFile
from petzarr.cohort.storage import filesystem, join, zarr_store
from petzarr.cohort.zarr_io import Stored, stored_crcs
from petzarr.convert.build import SIDECAR_PREFIX, input_files, pet_units, seal_store, write_store
from petzarr.convert.nifti import source_file
from petzarr.convert.plan import SubjectTask
from petzarr.convert.publish import remove_store, versions

__all__ = ["SubjectResult", "convert_subject", "pet_units", "run_task"]


@dataclass(frozen=True)
class SubjectResult:
    """The outcome of one subject: ``converted``, ``skipped`` or ``failed`` (with the error)."""

    subject: str
    status: str
    row: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""  # for failures that are bugs, not bad input
    seconds: float = 0.0
    bytes_read: int = 0
    retries: int = 0  # S3 requests retried by the task's process while it ran (executor's)
    warnings: tuple[str, ...] = ()  # converted, but worth a look (e.g. unnamed labels)


def run_task(task: SubjectTask) -> SubjectResult:
    """Convert one subject, turning its failure into a ``failed`` result (never raising)."""
    start = time.perf_counter()
    try:
        result = convert_subject(task)
    except (PetZarrError, OSError, ValueError) as exc:
        return SubjectResult(
            task.subject, "failed", error=_describe(exc), seconds=time.perf_counter() - start
        )
    except Exception as exc:  # a bug, not bad input: keep the traceback for the report
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return SubjectResult(
            task.subject,
            "failed",
            error=f"unexpected {detail}",
            traceback="".join(traceback.format_exception(exc)),
            seconds=time.perf_counter() - start,
        )
    return result


def _role_name(role: str) -> str:
    if role.startswith(layout.SEG_PREFIX):
        return "segmentation " + role.removeprefix(layout.SEG_PREFIX)
    if role.startswith(SIDECAR_PREFIX):
        return "sidecar of " + role.removeprefix(SIDECAR_PREFIX)
    return role


def _listed(task: SubjectTask, role: str, uri: str) -> SourceFile:
    try:
        return source_file(uri, task.source_options)
    except MissingSourceError:
        raise MissingSourceError(
            f"subject {task.subject}: {uri} ({_role_name(role)}) does not exist"
        ) from None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if isinstance(exc, PetZarrError) else f"{type(exc).__name__}: {text}"


def convert_subject(task: SubjectTask) -> SubjectResult:
    """Write run ``task.run_id``'s version of a subject's store and return its index row.

    The subject is ``skipped`` when a complete version with the current sources exists —
    the one the index names, else (a run killed before its index caught up) the newest
    sealed one — unless ``task.options.overwrite``. Otherwise it is written to its own
    path (:func:`~petzarr.cohort.layout.subject_store`), verified, then sealed; the driver
    publishes it by writing its row to the index. On any failure the new version is
    deleted: nothing half-written is left behind.
    """
    start = time.perf_counter()
    src = task.source
    inputs = input_files(task)
    missing = [_role_name(r) for r, uri in inputs.items() if not uri]
    if missing:
        raise MissingSourceError(f"subject {src.subject}: no {', '.join(missing)} in the source")
    current = {role: _listed(task, role, str(uri)) for role, uri in inputs.items()}

    if not task.options.overwrite:
        for store in _complete_versions(task):
            published = _published_attrs(join(task.dest, store), task.dest_options)
            if published is not None and _same_sources(published, current):
                row = {**published["index_row"], "store": store}  # where it is, now
                return SubjectResult(src.subject, "skipped", row=row)

    url = join(task.dest, layout.subject_store(src.subject, task.run_id))
    fs, path = filesystem(url, task.dest_options)
    if fs.exists(path):  # an earlier attempt of this run, on a worker that was lost
        fs.rm(path, recursive=True)
    try:
        staged = write_store(task, url)
        _verify(url, task, staged.crcs)
        seal_store(task, url, staged)
    except BaseException:
        remove_store(fs, path)  # never leave a half-written store behind
        raise
    return SubjectResult(
        src.subject,
        "converted",
        row=staged.row,
        seconds=time.perf_counter() - start,
        bytes_read=sum(s.size for s in staged.sources.values()),
        warnings=staged.warnings,
    )


def _complete_versions(task: SubjectTask) -> list[str]:
    """Store paths that may hold the subject: the indexed one, else sealed ones, newest first."""
    if task.published:
        return [task.published]
    found = versions(task.dest, task.subject, task.dest_options)
    return [v for v in reversed(found) if layout.version_run(v) < task.run_id]


def _published_attrs(final: str, options: dict[str, Any]) -> dict[str, Any] | None:
    try:
        group = zarr.open_group(zarr_store(final, options, read_only=True), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        return None
    attrs = group.attrs.get("petzarr")
    if not isinstance(attrs, dict):
        return None
    return attrs if "sources" in attrs and "index_row" in attrs else None


def _same_sources(published: dict[str, Any], current: dict[str, SourceFile]) -> bool:
    recorded = {role: SourceFile.from_dict(d) for role, d in published["sources"].items()}
    return recorded.keys() == current.keys() and all(
        recorded[role].same_source(current[role]) for role in current
    )


def _verify(url: str, task: SubjectTask, crcs: Mapping[str, Stored]) -> None:
    """Read the new store back and check every array written (:func:`check_written`).

    The metadata is not consolidated yet: each array's is read.
    """
    root = zarr.open_group(
        zarr_store(url, task.dest_options, read_only=True), mode="r", use_consolidated=False
    )
    check_written(
        root, crcs, where=f"subject {task.subject}: ", after="; the store was not published"
    )


def check_written(
    group: zarr.Group, crcs: Mapping[str, Stored], *, where: str, after: str = ""
) -> None:
    """Compare the stored chunks of each array (paths relative to ``group``) with the CRC32
    of the bytes written (:func:`~petzarr.cohort.zarr_io.put_chunk`, which checked that
    they decode to the voxels): every chunk there, none other, each byte as written.
    """
    for path, expected in crcs.items():
        found = stored_crcs(group, path)
        if not found:
            raise VerificationError(f"{where}{path} is missing from the new store{after}")
        if found != expected:
            bad = sorted(
                k for k in found.keys() | expected.keys() if found.get(k) != expected.get(k)
            )
            raise VerificationError(
                f"{where}{path} read back differently from what was written: chunk(s) "
                f"{', '.join(bad[:5])} {'missing or ' if expected.keys() - found.keys() else ''}"
                f"changed{after}"
            )
