"""Time-activity curves of a converted cohort: every label of every map, per frame, one table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from petzarr.analytics.drivers.subjects import CohortRun, run_subjects
from petzarr.analytics.jobs.tacs import subject_tacs
from petzarr.analytics.tables.label_stats import parse_erosion
from petzarr.analytics.tables.tacs import TAC_COLUMNS, concat_sorted
from petzarr.cohort.executor import Run

__all__ = ["cohort_tacs"]


def cohort_tacs(
    cohort_url: str,
    *,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    subjects: Sequence[str] | None = None,
    run: Run | None = None,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
    frames_per_block: int | None = None,
) -> CohortRun:
    """TACs of every (or the chosen) subject, one task each.

    The per-subject job is :func:`~petzarr.analytics.jobs.tacs.subject_tacs`.

    Parameters
    ----------
    cohort_url : str
        Cohort root (folder or ``s3://bucket/prefix``).
    groups, erosion, frames_per_block
        As :func:`~petzarr.analytics.jobs.tacs.subject_tacs`.
    subjects : sequence of str, optional
        Subject ids (default: every subject of the index).
    run : Run, optional
        Where the tasks run and whether a progress bar shows
        (:class:`petzarr.cohort.executor.Run`; default a local cluster, or the client
        already made).
    storage_options : dict, optional
        fsspec options; ``anon=True`` for public buckets.

    Returns
    -------
    CohortRun
        ``table`` (columns :data:`TAC_COLUMNS`, sorted by subject, task, erosion, label,
        frame) and ``failed`` (subject -> error).

    Examples
    --------
    >>> import tempfile, zarr
    >>> import numpy as np
    >>> from petzarr.cohort.executor import Run
    >>> from petzarr.cohort.index import update_index
    >>> root = tempfile.mkdtemp()
    >>> g = zarr.open_group(f"{root}/subjects/s1.zarr", mode="w").create_group("pet_dynamic")
    >>> _ = g.create_array("pet", data=np.ones((2, 3, 4, 4), np.float32))
    >>> seg = g.create_array("seg_total", data=np.ones((3, 4, 4), np.uint8))
    >>> seg.attrs["labels"] = {"1": "liver"}
    >>> for dim in "zyx":
    ...     _ = g.create_array(dim, data=np.arange(4.0)[: 3 if dim == "z" else 4] * 2)
    >>> _ = g.create_array("t", data=np.array([5.0, 15.0]))
    >>> _ = g.create_array("frame_duration", data=np.array([10.0, 10.0]))
    >>> _ = update_index(root, [{"subject": "s1", "store": "subjects/s1.zarr"}])
    >>> run = cohort_tacs(root, run=Run(serial=True, progress=False))
    >>> run.table[["Subject", "Task", "Label Name", "Frame Index", "PET Mean [Bq/mL]"]]
      Subject      Task Label Name  Frame Index  PET Mean [Bq/mL]
    0      s1  ts_total      liver            0               1.0
    1      s1  ts_total      liver            1               1.0
    """
    results, failed = run_subjects(
        subject_tacs,
        cohort_url,
        desc="tacs",
        subjects=subjects,
        run=run,
        storage_options=storage_options,
        anon=anon,
        kwargs={
            "groups": list(groups) if groups else None,
            "erosion": parse_erosion(erosion),
            "frames_per_block": frames_per_block,
        },
    )
    return CohortRun(table=concat_sorted(list(results.values()), TAC_COLUMNS), failed=failed)
