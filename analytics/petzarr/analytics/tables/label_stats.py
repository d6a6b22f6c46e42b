"""Organ statistics of one subject as a long table: every label of every map, per erosion.

:func:`label_statistics` ties the kernels together on plain arrays (no xarray, no cohort
format): erosion (:mod:`~petzarr.analytics.kernels.erosion`), the fused moments pass
(:mod:`~petzarr.analytics.kernels.moments`), exact medians
(:mod:`~petzarr.analytics.kernels.median`) and SUVpeak (:mod:`~petzarr.analytics.kernels.suvpeak`).
Eroded maps are just more maps: every erosion level of every map goes through one moments
pass, one median pass and one peak pass.

Values stay in their raw unit; ``scale`` multiplies the results (an SUV factor, say). The
cohort layer renames the columns (``Mean`` -> ``PET Mean [Bq/mL]``, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from petzarr.analytics.kernels.erosion import erode_labels
from petzarr.analytics.kernels.label_rows import parse_spacing
from petzarr.analytics.kernels.median import label_medians
from petzarr.analytics.kernels.moments import LabelMoments, default_n_labels, label_moments
from petzarr.analytics.kernels.suvpeak import PEAK_RADIUS_MM, label_peaks
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "COLUMNS",
    "TASK_NAMES",
    "erosion_levels",
    "label_statistics",
    "name_labels",
    "parse_erosion",
]

#: hedyPET's task names of TotalSegmentator's maps, as in its published tables.
TASK_NAMES = {"total": "ts_total", "tissue": "ts_tissue", "body": "ts_body"}

#: Columns of the table, in order.
COLUMNS: tuple[str, ...] = (
    "Task",
    "Label Index",
    "Erosion Iterations",
    "Voxel Count",
    "Non-finite Voxels",
    "Volume [mL]",
    "Mean",
    "STD",
    "Min",
    "Max",
    "Median",
    "Peak",
)


def label_statistics(
    values: Any,
    label_maps: Mapping[str, Any],
    *,
    spacing_mm: Iterable[float],
    erosion: Iterable[int] = (0,),
    median: bool = False,
    peak: bool = False,
    scale: float = 1.0,
    n_labels: int | None = None,
    peak_radius_mm: float = PEAK_RADIUS_MM,
    split_every: int | None = None,
) -> pd.DataFrame:
    """Statistics of ``values`` for every non-zero label of every map, one row each.

    Parameters
    ----------
    values : ndarray or dask.array.Array, shape (z, y, x)
        A static volume (PET in Bq/mL, CT in HU, ...). For dynamic PET use
        :func:`~petzarr.analytics.kernels.moments.label_moments` on the (t, z, y, x) array.
    label_maps : mapping of str to arrays, shape (z, y, x)
        Integer label maps on the grid of ``values``, by task name (``"organs"``, ...).
    spacing_mm : (dz, dy, dx)
        Voxel spacing in mm, in array axis order (volumes and the SUVpeak sphere).
    erosion : iterable of int
        Erosion levels; 0 is the map itself, ``n`` is ``n`` steps of the 6-connected cross
        per label (``scipy.ndimage.binary_erosion(seg == k, iterations=n)``).
    median : bool
        Add the exact median (else the column is NaN).
    peak : bool
        Add the peak: the highest mean over a sphere of radius ``peak_radius_mm`` (1 mL
        by default, PERCIST's SUVpeak) centred on a voxel of the label (else NaN).
    scale : float
        Positive factor applied to Mean, STD, Min, Max, Median and Peak.
    n_labels : int, optional
        Label slots (max label + 1) for all maps; default 256 for uint8, else the maximum.
    peak_radius_mm : float
        Radius of the peak sphere.
    split_every : int, optional
        Fan-in of the Dask tree reduction.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: ``Task`` (str), ``Label Index``, ``Erosion Iterations``,
        ``Voxel Count`` (int64: the voxels the statistics describe), ``Non-finite Voxels``
        (int64: voxels of the label whose value is NaN or infinite, left out of every
        statistic), ``Volume [mL]`` (of the voxels counted), ``Mean``, ``STD``
        (population, ddof 0), ``Min``, ``Max``, ``Median``, ``Peak`` (float64). One row per
        (task, erosion, label) with at least one voxel, ordered that way; labels that are
        absent, or vanish after erosion, have no row.

    Notes
    -----
    Dask input: without ``median``/``peak`` everything stays lazy until one compute —
    erosion by ``map_overlap`` and moments by a tree reduction over aligned blocks. The
    median and the peak need the whole subject, so with either of them the arrays are
    computed once into memory and the numpy path runs (one subject fits in memory).

    Examples
    --------
    >>> v = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    >>> seg = np.zeros(v.shape, np.uint8)
    >>> seg[:, :, :2] = 1
    >>> seg[:, :, 2] = 2
    >>> table = label_statistics(v, {"organs": seg}, spacing_mm=(2.0, 1.0, 1.0), median=True)
    >>> table[["Task", "Label Index", "Voxel Count", "Volume [mL]", "Mean", "Median"]]
         Task  Label Index  Voxel Count  Volume [mL]  Mean  Median
    0  organs            1           18        0.036  12.5    12.5
    1  organs            2            9        0.018  14.0    14.0
    """
    names = list(label_maps)
    if not names:
        raise InvalidInputError("label_maps is empty: pass at least one label map by name")
    if values.ndim != 3:
        raise InvalidInputError(
            f"values have shape {tuple(values.shape)}; label_statistics takes a (z, y, x) "
            "volume (use label_moments for (t, z, y, x) dynamic PET)"
        )
    spacing = parse_spacing(spacing_mm)
    levels = parse_erosion(erosion)
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise InvalidInputError(f"scale must be a positive finite number, not {scale}")
    maps = [label_maps[name] for name in names]
    lazy = not isinstance(values, np.ndarray) or any(not isinstance(m, np.ndarray) for m in maps)
    if n_labels is None:
        n_labels = _n_labels(maps, lazy)
    if lazy and (median or peak):
        import dask

        values, *maps = dask.compute(values, *maps)
        lazy = False
    tagged, arrays = erosion_levels(names, maps, levels)
    values, arrays, nonfinite = exclude_nonfinite(values, arrays, n_labels)
    moments = label_moments(values, arrays, n_labels=n_labels, split_every=split_every)
    if lazy:  # one compute: the moments' fields and the non-finite counts
        import dask

        names = [f.name for f in dataclasses.fields(moments)]
        *parts, nonfinite = dask.compute(*(getattr(moments, f) for f in names), nonfinite)
        moments = LabelMoments(*parts)
    med = pk = None
    if median:
        med = label_medians(values, arrays, n_labels=n_labels, counts=moments.count)
    if peak:
        pk = label_peaks(
            values, arrays, spacing_mm=spacing, n_labels=n_labels, radius_mm=peak_radius_mm
        ).value
    voxel_ml = float(np.prod(spacing)) / 1000.0
    # (maps, labels); lazily one vector per block column, summed here
    nonfinite = np.asarray(nonfinite).reshape(len(arrays), -1, n_labels).sum(axis=1)
    return _table(tagged, moments, med, pk, nonfinite, voxel_ml=voxel_ml, scale=scale)


def exclude_nonfinite(values: Any, maps: list[Any], n_labels: int) -> tuple[Any, list[Any], Any]:
    """Leave NaN and infinite values out of every label: ``(values, maps, counts)``.

    Such voxels are moved to the background (label 0) of each map, and infinities become
    NaN, so no sum, extreme, median or peak sphere of a label takes them in; ``counts``
    ``(n_maps, n_labels)`` says how many each label lost. A volume without them (the
    usual case) is passed through untouched, at the cost of one ``isfinite`` pass.

    >>> v = np.array([[[1.0, np.nan, np.inf, 4.0]]])
    >>> m = np.array([[[1, 1, 2, 2]]], np.uint8)
    >>> _, (clean,), counts = exclude_nonfinite(v, [m], 3)
    >>> clean.tolist(), counts.tolist()
    ([[[1, 0, 0, 2]]], [[0, 1, 1]])
    """
    if isinstance(values, np.ndarray):
        bad = ~np.isfinite(values)
        if not bad.any():
            return values, maps, np.zeros((len(maps), n_labels), np.int64)
        counts = np.stack([np.bincount(m[bad], minlength=n_labels) for m in maps])
        clean = [np.where(bad, np.zeros((), m.dtype), m) for m in maps]
        return np.where(bad, np.nan, values).astype(values.dtype, copy=False), clean, counts
    import dask.array as da

    bad = ~da.isfinite(values)
    # one count vector per block, laid along the last axis: (1, 1, n_labels) each
    counts = da.stack(
        [
            da.map_blocks(
                _block_counts,
                m,
                bad,
                n_labels,
                dtype=np.int64,
                chunks=(*((1,) * n for n in m.numblocks[:2]), (n_labels,) * m.numblocks[2]),
            ).sum(axis=(0, 1))
            for m in maps
        ]
    )
    clean = [da.where(bad, np.zeros((), m.dtype), m) for m in maps]
    return da.where(bad, np.nan, values).astype(values.dtype), clean, counts


def _block_counts(labels: np.ndarray, bad: np.ndarray, n_labels: int) -> np.ndarray:
    return np.bincount(labels[bad], minlength=n_labels)[None, None, :]


def parse_erosion(erosion: Iterable[int]) -> list[int]:
    """Erosion levels as sorted distinct ints >= 0, or InvalidInputError.

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


def _n_labels(maps: list[Any], lazy: bool) -> int:
    if not lazy or all(np.dtype(m.dtype).itemsize == 1 for m in maps):
        return default_n_labels(maps)
    import dask

    # the table is computed now anyway: one small extra reduction is cheaper than asking
    highest = dask.compute(*(m.max() for m in maps))
    return int(max(highest)) + 1


def erosion_levels(
    names: list[str], maps: list[Any], levels: list[int]
) -> tuple[list[tuple[str, int]], list[Any]]:
    """Every (task, level) map; each level erodes the previous one (cheaper, same result)."""
    tagged, arrays = [], []
    for name, seg in zip(names, maps):
        done, current = 0, seg
        for n in levels:
            if n > done:
                current = erode_labels(current, n - done)
                done = n
            tagged.append((name, n))
            arrays.append(current)
    return tagged, arrays


def _table(
    tagged: list[tuple[str, int]],
    moments: LabelMoments,
    med: Any,
    pk: Any,
    nonfinite: np.ndarray,
    *,
    voxel_ml: float,
    scale: float,
) -> pd.DataFrame:
    count = np.array(moments.count)  # a copy: the caller's moments stay as they are
    count[:, 0] = 0  # label 0 is the background
    rows_m, rows_k = np.nonzero(count)  # row-major: map order, then label order
    n = count[rows_m, rows_k]
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.asarray(moments.m2)[rows_m, rows_k] / n)

    def pick(arr: Any) -> np.ndarray:
        if arr is None:
            return np.full(len(n), np.nan)
        return np.asarray(arr, np.float64)[rows_m, rows_k] * scale

    table = pd.DataFrame(
        {
            "Task": pd.Series([tagged[i][0] for i in rows_m], dtype=object),
            "Label Index": rows_k.astype(np.int64),
            "Erosion Iterations": np.array([tagged[i][1] for i in rows_m], np.int64),
            "Voxel Count": n.astype(np.int64),
            "Non-finite Voxels": nonfinite[rows_m, rows_k].astype(np.int64),
            "Volume [mL]": n * voxel_ml,
            "Mean": pick(moments.mean),
            "STD": std * scale,
            "Min": pick(moments.min),
            "Max": pick(moments.max),
            "Median": pick(med),
            "Peak": pick(pk),
        },
        columns=list(COLUMNS),
    )
    return table


def name_labels(
    table: pd.DataFrame, subject: str, names: Mapping[str, Mapping[int, str]]
) -> pd.DataFrame:
    """Add ``Subject`` and ``Label Name`` (from each map's ``{id: name}``) and give
    TotalSegmentator's maps hedyPET's task names (:data:`TASK_NAMES`), in place.

    >>> t = pd.DataFrame({"Task": ["total", "organs"], "Label Index": [5, 9]})
    >>> name_labels(t, "s1", {"total": {5: "liver"}, "organs": {}})
      Subject      Task  Label Index Label Name
    0      s1  ts_total            5      liver
    1      s1    organs            9          9
    """
    label = [
        names[t].get(int(i), str(i))
        for t, i in zip(table["Task"], table["Label Index"], strict=True)
    ]
    table.insert(0, "Subject", subject)
    table.insert(3, "Label Name", label)
    table["Task"] = table["Task"].map(lambda t: TASK_NAMES.get(t, t))
    return table
