"""Subjects in demographic groups, and each group's mean with confidence and prediction bands.

hedyPET reports its normal values by sex and four age bands (18-34, 35-49, 50-69, 70-99) with
the mean's 95 % confidence interval (where the group's mean lies) and the 95 % prediction
interval (where a new healthy subject's value lies): :func:`demographics` puts a cohort's
subjects in those groups from its index, :func:`group_bands` summarises any value per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from petzarr.analytics.tables.metadata_columns import parse_sex, resolve_columns
from petzarr.cohort.errors import InvalidInputError

__all__ = ["HEDYPET_AGE_BANDS", "demographics", "group_bands"]

#: hedyPET's age bands [years], both ends included.
HEDYPET_AGE_BANDS: tuple[tuple[int, int], ...] = ((18, 34), (35, 49), (50, 69), (70, 99))


def demographics(
    index: pd.DataFrame, bands: Sequence[tuple[int, int]] = HEDYPET_AGE_BANDS
) -> pd.DataFrame:
    """``Subject``, ``Sex``, ``Age``, ``Age Group`` ("50-69") of each subject of an index.

    Sex is read as :func:`~petzarr.analytics.tables.metadata_columns.parse_sex` reads it, age
    from an ``Age``/``age`` column; a subject outside every band, or an index without ages,
    gets no age group (its subjects still group by sex).

    >>> index = pd.DataFrame({"subject": ["a", "b"], "Sex": ["F", "male"], "Age": [30, 71]})
    >>> demographics(index).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'Subject': 'a', 'Sex': 'F', 'Age': 30.0, 'Age Group': '18-34'},
     {'Subject': 'b', 'Sex': 'M', 'Age': 71.0, 'Age Group': '70-99'}]
    """
    cols = resolve_columns(index.columns)
    subject = cols.subject or "subject"
    age = next((c for c in index.columns if str(c).strip().lower() in ("age", "age [y]")), None)
    if subject not in index:
        raise InvalidInputError(f"cohort index: no subject column in {list(index.columns)}")
    ages = index[age] if age is not None else pd.Series(np.nan, index=index.index)
    years = pd.to_numeric(ages, errors="coerce").astype(np.float64)
    group = pd.Series(pd.NA, index=index.index, dtype="string")
    for lo, hi in bands:
        group[(years >= lo) & (years <= hi)] = f"{lo}-{hi}"
    return pd.DataFrame({
        "Subject": index[subject].astype(str),
        "Sex": [parse_sex(v, where=f"{subject} {s}") for s, v in
                zip(index[subject], index[cols.sex] if cols.sex else [None] * len(index),
                    strict=True)],
        "Age": years,
        "Age Group": group,
    })  # fmt: skip


def group_bands(
    table: pd.DataFrame, value: str, by: Sequence[str], *, level: float = 0.95
) -> pd.DataFrame:
    """Per group of ``by``: ``N``, ``Mean``, ``SD`` of ``value``, and its bands.

    ``CI Low``/``CI High``: the mean's confidence interval, ``mean ± t sd / sqrt(n)``;
    ``PI Low``/``PI High``: the prediction interval of one more subject,
    ``mean ± t sd sqrt(1 + 1/n)`` (Student's t with n - 1 degrees of freedom, normal
    values assumed). Groups of one subject get NaN bands.

    >>> t = pd.DataFrame({"Sex": ["F", "F", "F", "M"], "SUV": [1.0, 2.0, 3.0, 5.0]})
    >>> bands = group_bands(t, "SUV", ["Sex"]).round(3)
    >>> bands.iloc[0].to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'Sex': 'F', 'N': 3, 'Mean': 2.0, 'SD': 1.0, 'CI Low': -0.484, 'CI High': 4.484,
     'PI Low': -2.968, 'PI High': 6.968}
    >>> int(bands.iloc[1]["N"]), bool(np.isnan(bands.iloc[1]["PI Low"]))
    (1, True)
    """
    if not 0 < level < 1:
        raise InvalidInputError(f"level must be in (0, 1), not {level!r}")
    grouped = table.dropna(subset=[value]).groupby(list(by), observed=True)[value]
    out = grouped.agg(N="count", Mean="mean", SD="std").reset_index()
    n = out["N"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.5 + level / 2, n - 1)
        half_ci = t * out["SD"] / np.sqrt(n)
        half_pi = t * out["SD"] * np.sqrt(1 + 1 / n)
    return out.assign(**{
        "CI Low": out["Mean"] - half_ci, "CI High": out["Mean"] + half_ci,
        "PI Low": out["Mean"] - half_pi, "PI High": out["Mean"] + half_pi,
    })  # fmt: skip
