"""TAC tables: per-frame moments of every label of every map, in hedyPET's columns.

:func:`label_tacs` runs on plain arrays: erosion levels of every map become more maps, and
one streamed pass (:func:`~petzarr.analytics.kernels.frame_moments.frame_moments`) gives the
per-frame count, mean and std of all of them at once; :func:`moments_table` lays them out
as a long table; :func:`finish_tac_table` gives it hedyPET's ``input_function_tacs`` columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from petzarr.analytics.kernels.frame_moments import BLOCK_BYTES, frame_moments
from petzarr.analytics.kernels.label_rows import parse_spacing
from petzarr.analytics.kernels.moments import LabelMoments
from petzarr.analytics.tables.label_stats import erosion_levels, parse_erosion
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "LABEL_TAC_COLUMNS",
    "TAC_COLUMNS",
    "concat_sorted",
    "finish_tac_table",
    "label_tacs",
    "moments_table",
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
    >>> from petzarr.analytics.kernels.moments import label_moments
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


def label_tacs(
    values: Any,
    label_maps: Mapping[str, Any],
    *,
    frame_mid_s: ArrayLike,
    spacing_mm: Iterable[float],
    erosion: Iterable[int] = (0,),
    n_labels: int | None = None,
    frames_per_block: int | None = None,
    block_bytes: int | None = None,
) -> pd.DataFrame:
    """TACs (per-frame mean, std, count) of every non-zero label of every map, in one pass.

    Parameters
    ----------
    values : zarr.Array or ndarray, shape (t, z, y, x)
        The dynamic series (a store's ``pet_dynamic/pet``); read a block of frames of one
        slab at a time.
    label_maps : mapping of str to arrays, shape (z, y, x)
        Label maps by task name (numpy or Dask arrays; wrap a zarr array in
        ``dask.array.from_zarr``).
    frame_mid_s : array_like, shape (t,)
        Frame middle times [s].
    spacing_mm : (dz, dy, dx)
        Voxel size [mm], for the volumes.
    erosion : iterable of int
        Erosion levels: 0 is the map itself, ``n`` is ``scipy.ndimage.binary_erosion(seg == k,
        iterations=n)`` for every label ``k``
        (:func:`~petzarr.analytics.kernels.erosion.erode_labels`).
    n_labels : int, optional
        Label slots (max label + 1); default 256 for uint8 maps.
    frames_per_block : int, optional
        Frames read at once per slab (default: as many as fit in ``block_bytes``, at least
        one).
    block_bytes : int, optional
        Bytes of values read at once (default
        :data:`~petzarr.analytics.kernels.frame_moments.BLOCK_BYTES`).

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
    tagged, arrays = erosion_levels(names, [label_maps[name] for name in names], levels)
    moments = frame_moments(
        values,
        arrays,
        n_labels=n_labels,
        frames_per_block=frames_per_block,
        block_bytes=BLOCK_BYTES if block_bytes is None else block_bytes,
    ).compute()
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return moments_table(moments, tagged, frame_mid_s=frame_mid_s, voxel_ml=voxel_ml)


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
