"""Time-activity curves of a converted cohort: every label of every map, per frame, one table.

Three layers, as for the static statistics (:mod:`petzarr.analytics.stats`):

- :func:`label_tacs` on plain arrays: erosion levels of every map become more maps, and one
  streamed pass (:func:`~petzarr.analytics.framemoments.frame_moments`) gives the per-frame
  count, mean and std of all of them at once;
- :func:`subject_tacs`, the per-subject job: a store's ``pet_dynamic`` group in, hedyPET's
  TAC table out (the layout of ``input_function_tacs_80.csv.gz``);
- :func:`cohort_tacs`: one Dask task per subject, failures collected, not fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd
import zarr
from numpy.typing import ArrayLike

from petzarr.analytics._labelrows import parse_spacing
from petzarr.analytics.cohort_run import CohortRun, run_subjects
from petzarr.analytics.dynamic_group import open_dynamic, read_config
from petzarr.analytics.erosion import erode_labels
from petzarr.analytics.framemoments import frame_moments
from petzarr.analytics.labelstats import LabelMoments
from petzarr.analytics.stats import TASK_NAMES
from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "LABEL_TAC_COLUMNS",
    "TAC_COLUMNS",
    "cohort_tacs",
    "concat_sorted",
    "finish_tac_table",
    "label_tacs",
    "moments_table",
    "parse_erosion",
    "subject_tacs",
]

#: Columns of a subject's/cohort's TAC table (hedyPET's ``input_function_tacs`` layout).
TAC_COLUMNS: tuple[str, ...] = (
    "Subject",
    "Task",
    "Label Index",
    "Label Name",
    "Erosion Iterations",
    "Frame Index",
    "Frame Time Middle [s]",
    "PET Mean [Bq/mL]",
    "PET STD [Bq/mL]",
    "Voxel Count",
    "Volume [mL]",
)
#: Columns of :func:`label_tacs` (values in the caller's unit).
LABEL_TAC_COLUMNS: tuple[str, ...] = (
    "Task",
    "Label Index",
    "Erosion Iterations",
    "Frame Index",
    "Frame Time Middle [s]",
    "Mean",
    "STD",
    "Voxel Count",
    "Volume [mL]",
)
_ORDER = ["Subject", "Task", "Erosion Iterations", "Label Index", "Frame Index"]


def moments_table(
    moments: LabelMoments,
    tagged: Sequence[tuple[str, int]],
    *,
    frame_mid_s: ArrayLike,
    voxel_ml: float,
) -> pd.DataFrame:
    """Long TAC table from per-frame moments ``(t, n_maps, n_labels)`` (numpy fields).

    ``tagged[m]`` is ``(task, erosion)`` of map ``m``. One row per frame of every non-zero
    label with voxels, ordered by map, label, frame; columns :data:`LABEL_TAC_COLUMNS`.

    Examples
    --------
    >>> from petzarr.analytics.labelstats import label_moments
    >>> pet = np.array([[[[1.0, 3.0, 5.0]]], [[[2.0, 4.0, 6.0]]]], np.float32)
    >>> mom = label_moments(pet, [np.array([[[0, 2, 2]]], np.uint8)], n_labels=3)
    >>> moments_table(mom, [("organs", 0)], frame_mid_s=[5.0, 15.0], voxel_ml=0.5)
         Task  Label Index  Erosion Iterations  ...  STD  Voxel Count  Volume [mL]
    0  organs            2                   0  ...  1.0            2          1.0
    1  organs            2                   0  ...  1.0            2          1.0
    <BLANKLINE>
    [2 rows x 9 columns]
    """
    count = np.asarray(moments.count)
    nt = count.shape[0]
    t_mid = np.asarray(frame_mid_s, dtype=np.float64)
    if t_mid.shape != (nt,):
        raise InvalidInputError(f"{t_mid.size} frame times for {nt} frames")
    present = count.max(axis=0) > 0  # (maps, labels); a label has the same count every frame
    present[:, 0] = False  # label 0 is the background
    rows_m, rows_k = np.nonzero(present)
    n = count[:, rows_m, rows_k].T  # (rows, t)
    mean = np.asarray(moments.mean)[:, rows_m, rows_k].T
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.asarray(moments.m2)[:, rows_m, rows_k].T / n)
    rep = np.repeat
    return pd.DataFrame(
        {
            "Task": pd.Series(rep([tagged[int(m)][0] for m in rows_m], nt), dtype=object),
            "Label Index": rep(rows_k.astype(np.int64), nt),
            "Erosion Iterations": rep(np.array([tagged[int(m)][1] for m in rows_m], np.int64), nt),
            "Frame Index": np.tile(np.arange(nt, dtype=np.int64), len(rows_m)),
            "Frame Time Middle [s]": np.tile(t_mid, len(rows_m)),
            "Mean": mean.ravel(),
            "STD": std.ravel(),
            "Voxel Count": n.ravel().astype(np.int64),
            "Volume [mL]": n.ravel() * float(voxel_ml),
        },
        columns=list(LABEL_TAC_COLUMNS),
    )


def parse_erosion(erosion: Iterable[int]) -> list[int]:
    """Erosion levels as sorted distinct ints >= 0, or InvalidInputError.

    Examples
    --------
    >>> parse_erosion([1, 0, 1])
    [0, 1]
    """
    try:
        levels = sorted({int(n) for n in erosion})
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"erosion must be an iterable of ints >= 0, not {erosion!r}"
        ) from None
    if not levels or levels[0] < 0:
        raise InvalidInputError(f"erosion must hold at least one int >= 0, not {erosion!r}")
    return levels


def label_tacs(
    values: Any,
    label_maps: Mapping[str, Any],
    *,
    frame_mid_s: ArrayLike,
    spacing_mm: Iterable[float],
    erosion: Iterable[int] = (0,),
    n_labels: int | None = None,
    frames_per_block: int | None = None,
) -> pd.DataFrame:
    """TACs (per-frame mean, std, count) of every non-zero label of every map, in one pass.

    Parameters
    ----------
    values : zarr.Array or ndarray, shape (t, z, y, x)
        The dynamic series (a store's ``pet_dynamic/pet``); read a block of frames of one
        slab at a time.
    label_maps : mapping of str to arrays, shape (z, y, x)
        Label maps by task name (numpy, Dask or zarr arrays).
    frame_mid_s : array_like, shape (t,)
        Frame middle times [s].
    spacing_mm : (dz, dy, dx)
        Voxel size [mm], for the volumes.
    erosion : iterable of int
        Erosion levels: 0 is the map itself, ``n`` is ``scipy.ndimage.binary_erosion(seg == k,
        iterations=n)`` for every label ``k`` (:func:`~petzarr.analytics.erosion.erode_labels`).
    n_labels : int, optional
        Label slots (max label + 1); default 256 for uint8 maps.
    frames_per_block : int, optional
        Frames read at once per slab (default: about 64 MB of values, at least one).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LABEL_TAC_COLUMNS`; STD is the population std (ddof 0). Labels that are
        absent, or vanish after erosion, have no rows.

    Examples
    --------
    >>> pet = np.stack([np.full((4, 4, 4), f, np.float32) for f in (1.0, 2.0, 4.0)])
    >>> seg = np.zeros((4, 4, 4), np.uint8)
    >>> seg[:, :2] = 3
    >>> tacs = label_tacs(pet, {"organs": seg}, frame_mid_s=[1.0, 3.0, 5.0],
    ...                   spacing_mm=(2.0, 2.0, 2.0))
    >>> tacs[["Label Index", "Frame Index", "Mean", "Voxel Count", "Volume [mL]"]]
       Label Index  Frame Index  Mean  Voxel Count  Volume [mL]
    0            3            0   1.0           32        0.256
    1            3            1   2.0           32        0.256
    2            3            2   4.0           32        0.256
    """
    names = list(label_maps)
    if not names:
        raise InvalidInputError("label_maps is empty: pass at least one label map by name")
    spacing = parse_spacing(spacing_mm)
    levels = parse_erosion(erosion)
    tagged: list[tuple[str, int]] = []
    arrays: list[Any] = []
    for name in names:
        seg = label_maps[name]
        if isinstance(seg, zarr.Array):
            import dask.array as da

            seg = da.from_zarr(seg)
        done, current = 0, seg
        for n in levels:
            if n > done:  # each level erodes the previous one: cheaper, same result
                current = erode_labels(current, n - done)
                done = n
            tagged.append((name, n))
            arrays.append(current)
    moments = frame_moments(
        values, arrays, n_labels=n_labels, frames_per_block=frames_per_block
    ).compute()
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return moments_table(moments, tagged, frame_mid_s=frame_mid_s, voxel_ml=voxel_ml)


def subject_tacs(
    cohort_url: str,
    subject: str,
    *,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    frames_per_block: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """TACs of every label of the requested maps of one subject's dynamic PET.

    Parameters
    ----------
    cohort_url : str
        Cohort root (folder or ``s3://bucket/prefix``).
    subject : str
        Subject id (as in ``index.parquet``).
    groups : sequence of str, optional
        Label maps (``total``, ``tissue``, ``body``, ...); default every ``seg_*`` map of the
        ``pet_dynamic`` group.
    erosion : iterable of int
        Erosion levels (0 = none).
    frames_per_block : int, optional
        Frames read at once per slab.
    storage_options : dict, optional
        fsspec options for a remote cohort.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TAC_COLUMNS`; ``Task`` is hedyPET's name (``ts_total``, ``ts_tissue``,
        ``ts_body``) for TotalSegmentator's maps, else the group name.

    Examples
    --------
    See :func:`cohort_tacs`; the per-subject table is one subject's part of it.
    """
    # a missing chunk fails the subject; chunks decode in the reading thread (read_config)
    with (
        zarr.config.set(read_config()),
        dask.config.set(scheduler="threads"),  # inside a cluster task: stay on its threads
    ):
        try:
            return _subject_tacs(
                cohort_url, subject, groups, erosion, frames_per_block, storage_options
            )
        except InvalidInputError as exc:
            if f"subject {subject}" in str(exc):
                raise
            raise InvalidInputError(f"subject {subject}: {exc}") from exc


def _subject_tacs(
    cohort_url: str,
    subject: str,
    groups: Sequence[str] | None,
    erosion: Iterable[int],
    frames_per_block: int | None,
    storage_options: dict[str, Any] | None,
) -> pd.DataFrame:
    dyn = open_dynamic(cohort_url, subject, storage_options=storage_options)
    wanted = [layout.group_name(g) for g in groups] if groups else dyn.map_names
    if not wanted:
        raise InvalidInputError(
            f"subject {subject}: no label maps (seg_*) in its {layout.PET_DYNAMIC_GROUP} group"
        )
    maps = {name: dyn.label_map(name) for name in wanted}
    table = label_tacs(
        dyn.pet,
        maps,
        frame_mid_s=dyn.frame_mid_s,
        spacing_mm=dyn.spacing_mm,
        erosion=erosion,
        n_labels=max(dyn.n_labels(name) for name in wanted),
        frames_per_block=frames_per_block,
    )
    names = {name: dyn.label_names(name) for name in wanted}
    label_name = [names[t].get(int(i), str(i)) for t, i in zip(table["Task"], table["Label Index"])]
    table.insert(0, "Subject", subject)
    table.insert(3, "Label Name", label_name)
    table["Task"] = table["Task"].map(lambda t: TASK_NAMES.get(t, t))
    return finish_tac_table(table)


def cohort_tacs(
    cohort_url: str,
    *,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    subjects: Sequence[str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
    frames_per_block: int | None = None,
) -> CohortRun:
    """:func:`subject_tacs` for every (or the chosen) subject, one Dask task each.

    Parameters
    ----------
    cohort_url : str
        Cohort root (folder or ``s3://bucket/prefix``).
    groups, erosion, frames_per_block
        As :func:`subject_tacs`.
    subjects : sequence of str, optional
        Subject ids (default: every subject of the index).
    client : distributed.Client, optional
        Run on this client; else ``scheduler`` (an address), the configured scheduler or a
        new local cluster of ``workers`` processes (:meth:`petzarr.cohort.executor.Run.connect`).
    serial : bool
        Run in this process, without Dask's distributed scheduler.
    progress : bool
        Show a progress bar over subjects.
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
    >>> run = cohort_tacs(root, serial=True, progress=False)
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
        client=client,
        scheduler=scheduler,
        workers=workers,
        serial=serial,
        progress=progress,
        storage_options=storage_options,
        anon=anon,
        kwargs={
            "groups": list(groups) if groups else None,
            "erosion": parse_erosion(erosion),
            "frames_per_block": frames_per_block,
        },
    )
    return CohortRun(table=concat_sorted(list(results.values()), TAC_COLUMNS), failed=failed)


def finish_tac_table(table: pd.DataFrame) -> pd.DataFrame:
    """A :func:`label_tacs` table with ``Subject`` and ``Label Name`` as :data:`TAC_COLUMNS`.

    Renames ``Mean``/``STD`` to hedyPET's names and gives the text columns pandas' string
    dtype, so a table compares equal to itself read back from Parquet.
    """
    table = table.rename(columns={"Mean": "PET Mean [Bq/mL]", "STD": "PET STD [Bq/mL]"})
    return table[list(TAC_COLUMNS)].astype({"Subject": str, "Task": str, "Label Name": str})


def concat_sorted(tables: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    """Concatenate per-subject TAC tables, sorted by subject, task, erosion, label, frame."""
    if not tables:
        return pd.DataFrame(columns=list(columns))
    table = pd.concat(tables, ignore_index=True)
    return table.sort_values(_ORDER, kind="stable").reset_index(drop=True)
