"""One row per subject, as TotalSegmentator's statistics are read: the long table pivoted.

The long table of ``petzarr stats`` (:func:`~petzarr.analytics.jobs.stats.subject_stats`,
or ``ds.petzarr.stats()``) has one row per subject, map, erosion and label. The wide table
has one row per subject and a column per map, label, erosion and statistic:

- ``<map>/<label>/<statistic>`` for the map itself (``organs/liver/SUV Mean``);
- ``<map>/<label>/e<n>/<statistic>`` for ``n`` erosion iterations (``organs/liver/e1/SUV
  Mean``): the unmarked name stays the plain map's, so a table without erosion reads like
  TotalSegmentator's, and the eroded columns of a label sort right after its own.

``<map>`` is the long table's ``Task`` (``ts_total`` for TotalSegmentator's ``total``) and
``<label>`` its ``Label Name``. Statistic names may hold a ``/`` of their own (``PET Mean
[Bq/mL]``): read a name back with ``name.split("/", 2)`` (map, label, the rest), or match
its end (``name.endswith("/SUV Mean")``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from petzarr.cohort.errors import InvalidInputError

__all__ = ["KEY_COLUMNS", "wide_table"]

#: Columns of the long table that say which row it is; they become the wide column names.
KEY_COLUMNS = ("Subject", "Task", "Label Index", "Label Name", "Erosion Iterations")


def wide_table(long: pd.DataFrame, *, statistics: Sequence[str] | None = None) -> pd.DataFrame:
    """The long statistics table as one row per subject.

    Parameters
    ----------
    long : pandas.DataFrame
        A long table with ``Subject``, ``Task``, ``Label Name`` (or ``Label Index``) and
        optionally ``Erosion Iterations``; one row per subject, map, label and erosion.
    statistics : sequence of str, optional
        The statistic columns to spread (default: every numeric column but the keys
        ``Label Index`` and ``Erosion Iterations``, in the long table's order).

    Returns
    -------
    pandas.DataFrame
        Column ``Subject`` (subjects in the long table's order, a plain RangeIndex so the
        table writes to Parquet/CSV as it is), then each non-numeric column that is
        constant within every subject, once (``Note``: why the SUVs are NaN); then
        ``<map>/<label>[/e<n>]/<statistic>`` in float64, by map (long-table order),
        label, erosion, statistic. A label a subject lacks is NaN there. Non-numeric
        columns that vary within a subject are dropped.

    Examples
    --------
    >>> long = pd.DataFrame(
    ...     {
    ...         "Subject": ["s1", "s1", "s2"],
    ...         "Task": "organs",
    ...         "Label Index": [8, 8, 8],
    ...         "Label Name": "liver",
    ...         "Erosion Iterations": [0, 1, 0],
    ...         "SUV Mean": [2.0, 2.1, 1.5],
    ...         "Note": ["", "", "no weight"],
    ...     }
    ... )
    >>> wide_table(long)
      Subject       Note  organs/liver/SUV Mean  organs/liver/e1/SUV Mean
    0      s1                               2.0                       2.1
    1      s2  no weight                    1.5                       NaN
    """
    if long.empty and "Subject" not in long:  # a run whose every subject failed
        return pd.DataFrame({"Subject": pd.Series(dtype=object)})
    stats = _statistics(long, statistics)
    prefix = _prefixes(long)
    _check_unique(long["Subject"], prefix)
    values = long[stats].astype(np.float64)
    values.index = pd.MultiIndex.from_arrays([long["Subject"], prefix], names=["Subject", None])
    spread = values.unstack()  # columns (statistic, prefix), sorted: reordered below
    order = [(s, p) for p in _prefix_order(long, prefix) for s in stats]
    spread = spread.reindex(
        index=pd.unique(long["Subject"]), columns=pd.MultiIndex.from_tuples(order)
    )
    spread.columns = [f"{p}/{s}" for s, p in order]
    once = _per_subject(long, stats)
    return pd.concat([once.reindex(spread.index), spread], axis=1).reset_index()


def _statistics(long: pd.DataFrame, statistics: Sequence[str] | None) -> list[str]:
    missing = [c for c in ("Subject", "Task") if c not in long]
    if "Label Name" not in long and "Label Index" not in long:
        missing.append("Label Name")
    if missing:
        raise InvalidInputError(
            f"not a long statistics table: no column(s) {', '.join(missing)} "
            f"(it has: {', '.join(map(str, long.columns))})"
        )
    if statistics is None:
        return [c for c in long if c not in KEY_COLUMNS and _numeric(long[c])]
    stats = list(dict.fromkeys(statistics))
    bad = [c for c in stats if c not in long or c in KEY_COLUMNS or not _numeric(long[c])]
    if bad:
        choices = ", ".join(c for c in long if c not in KEY_COLUMNS and _numeric(long[c]))
        raise InvalidInputError(
            f"not a numeric statistic of the table: {', '.join(map(str, bad))} "
            f"(choose from: {choices})"
        )
    return stats


def _numeric(column: pd.Series) -> bool:
    return is_numeric_dtype(column) and not is_bool_dtype(column)


def _prefixes(long: pd.DataFrame) -> pd.Series:
    """``<map>/<label>`` per row, ``/e<n>`` added for ``n`` > 0 erosion iterations."""
    label = long["Label Name"] if "Label Name" in long else long["Label Index"]
    prefix = long["Task"].astype(str) + "/" + label.astype(str)
    if "Erosion Iterations" in long:
        n = long["Erosion Iterations"].astype(np.int64)
        prefix = prefix.where(n == 0, prefix + "/e" + n.astype(str))
    return prefix


def _check_unique(subject: pd.Series, prefix: pd.Series) -> None:
    twice = pd.DataFrame({"s": subject, "p": prefix}).duplicated()
    if twice.any():
        s, p = subject[twice].iloc[0], prefix[twice].iloc[0]
        raise InvalidInputError(
            f"subject {s} has more than one row for {p}: the wide table needs one row per "
            "subject, map, label and erosion (two labels of one map named alike?)"
        )


def _prefix_order(long: pd.DataFrame, prefix: pd.Series) -> list[str]:
    """Prefixes by map (first appearance), label id (else first appearance), erosion."""
    keys = pd.DataFrame(
        {
            "task": pd.factorize(long["Task"])[0],
            "erosion": long.get("Erosion Iterations", pd.Series(0, index=long.index)),
            "label": long["Label Index"] if "Label Index" in long else pd.factorize(prefix)[0],
            "prefix": prefix,
        }
    )
    keys = keys.drop_duplicates("prefix").sort_values(["task", "label", "erosion"], kind="stable")
    return list(keys["prefix"])


def _per_subject(long: pd.DataFrame, stats: list[str]) -> pd.DataFrame:
    """Non-numeric columns with one value per subject (``Note``), once per subject."""
    rest = [c for c in long if c not in KEY_COLUMNS and c not in stats and not _numeric(long[c])]
    groups = long.groupby("Subject", sort=False)
    kept = [c for c in rest if (groups[c].nunique(dropna=False) <= 1).all()]
    return groups[kept].first()
