"""Patlak tables: region TACs x input functions -> one row per (region, input function, window).

Table layer over :mod:`petzarr.analytics.kernels.patlak`. Long tables are pivoted once into
``(curves, frames)`` arrays, every region is paired with every input function of its subject,
and the kernels run on all pairs and all regression windows in one vectorised call.

Accepted layouts (detected from the columns):

- region TACs, hedyPET ``region_tacs_80``: ``Subject, Erosion Iterations, mu, region,
  Volume [mL], Frame Index, t`` (``t`` = frame middle, s);
- TACs as petzarr writes them (also hedyPET's ``input_function_tacs_80``): ``Subject, Task,
  Label Index, Label Name, Erosion Iterations, Frame Index, Frame Time Middle [s],
  PET Mean [Bq/mL], ..., Volume [mL]``; as input functions their identifier is
  ``<Task>_<Label Name>``;
- a user input function, :func:`read_input_function`: ``Time [s], Activity`` plus optional
  ``Subject`` (absent: the curve applies to every subject) and ``Input Function Identifier``.

Erosion pairing: every region TAC, whatever its erosion, is paired with the input functions
of one erosion, ``input_function_erosion`` (default 0). That is what hedyPET published: its
input-function table holds erosion 0 only, and region TACs of erosions 0 and 1 both reproduce
the published slopes with it. ``input_function_erosion=None`` pairs like with like instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from petzarr.analytics.kernels.patlak import (
    DEFAULT_REGRESSION_FRAMES,
    frames_from,
    ols_last_frames,
    patlak_x,
    patlak_y,
)
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "INPUT_FUNCTION_ID",
    "PATLAK_COLUMNS",
    "patlak_from_files",
    "patlak_table",
    "read_input_function",
    "read_table",
]

INPUT_FUNCTION_ID = "Input Function Identifier"
#: Columns after the region key columns (``Region`` or ``Task, Label Name``).
PATLAK_COLUMNS = (
    "Volume [mL]",
    INPUT_FUNCTION_ID,
    "Regression Frames",
    "Patlak Ki",
    "Patlak Intercept",
)

_EROSION = "Erosion Iterations"
_TIME, _VALUE = "_time_s", "_value"
_HEDYPET_REGION = frozenset({"Subject", _EROSION, "mu", "region", "t"})
_PETZARR_TAC = frozenset(
    {"Subject", "Task", "Label Name", _EROSION, "Frame Time Middle [s]", "PET Mean [Bq/mL]"}
)
_USER_IF = frozenset({"Time [s]", "Activity"})


def patlak_table(
    tacs: pd.DataFrame,
    input_functions: pd.DataFrame | Sequence[pd.DataFrame],
    *,
    n_frames: Sequence[int] | None = None,
    t_star: float | None = None,
    from_injection: bool = False,
    input_function_erosion: int | None = 0,
) -> pd.DataFrame:
    """Patlak Ki for every region x input function x regression window of every subject.

    Parameters
    ----------
    tacs : DataFrame
        Region TACs in either hedyPET's ``region_tacs_80`` layout or petzarr's TAC layout.
    input_functions : DataFrame or sequence of DataFrame
        Input functions: petzarr/hedyPET TAC layout (``input_function_tacs_80``) and/or
        time/activity tables from :func:`read_input_function`. Sampled at the same frame
        middles as the subject's TACs.
    n_frames : sequence of int, optional
        Regression windows, each the last that many frames. Default (2, ..., 8), hedyPET's.
    t_star : float, optional
        Instead of ``n_frames``: regress over every frame whose middle is at or after
        ``t_star`` minutes (one window per subject, reported in ``Regression Frames``).
    from_injection : bool, default False
        Integrate the input function from injection (t = 0, input 0) rather than from the
        first frame middle (hedyPET).
    input_function_erosion : int or None, default 0
        Erosion of the input functions paired with every region TAC; None pairs each region
        TAC with the input functions of its own erosion.

    Returns
    -------
    DataFrame
        ``Subject, Erosion Iterations, <region keys>, Volume [mL], Input Function Identifier,
        Regression Frames, Patlak Ki, Patlak Intercept`` (Ki in 1/min, i.e. mL/cm3/min),
        plus ``t* [min]`` when ``t_star`` is given. Region keys are ``Region`` for hedyPET
        TACs and ``Task, Label Name`` for petzarr TACs. Sorted by those keys.

    Notes
    -----
    Every curve in one call has the same number of frames (frame times may differ between
    subjects); each region TAC and its subject's input functions share frame middles.
    Frames where the input function is 0 give non-finite X and Y; a window that includes
    one gives a NaN Ki.

    Examples
    --------
    A liver that traps 0.05 mL/cm3/min of the input and holds 0.2 of it free:

    >>> from petzarr.analytics.kernels.patlak import cumulative_simpson
    >>> t = np.array([30.0, 90.0, 300.0, 900.0, 1800.0, 2700.0, 3600.0])  # frame middles, s
    >>> cp = 1e4 * np.exp(-t / 600) + 2e3
    >>> mu = 0.05 * cumulative_simpson(cp, t / 60) + 0.2 * cp
    >>> tacs = pd.DataFrame({"Subject": "sub-1", "Erosion Iterations": 0, "region": "Liver",
    ...                      "Volume [mL]": 1500.0, "t": t, "mu": mu})
    >>> aif = pd.DataFrame({"Time [s]": t, "Activity": cp, "Input Function Identifier": "aif"})
    >>> out = patlak_table(tacs, aif, n_frames=[3, 4])
    >>> out.columns[:4].tolist()
    ['Subject', 'Erosion Iterations', 'Region', 'Volume [mL]']
    >>> out[["Regression Frames", "Patlak Ki", "Patlak Intercept"]].to_numpy().round(9).tolist()
    [[3.0, 0.05, 0.2], [4.0, 0.05, 0.2]]
    """
    if n_frames is not None and t_star is not None:
        raise InvalidInputError("give either n_frames or t_star, not both")
    windows = tuple(DEFAULT_REGRESSION_FRAMES if n_frames is None else n_frames)
    if not windows:
        raise InvalidInputError("n_frames is empty: give at least one regression window")
    tac, region_keys = _canonical_tacs(tacs)
    ifs = _canonical_input_functions(input_functions, input_function_erosion)
    if tac.empty or ifs.empty:
        raise InvalidInputError("the region TAC or input-function table has no rows")
    ifs = _expand_to_subjects(ifs, tac["Subject"].unique())

    case_keys = ["Subject", _EROSION, *region_keys]
    if_keys = ["Subject", INPUT_FUNCTION_ID] + ([_EROSION] if _EROSION in ifs else [])
    cases, tac_t, tac_v = _curves(tac, case_keys, what="region TAC", extra=["Volume [mL]"])
    curves, if_t, if_v = _curves(ifs, if_keys, what="input function")

    pairs = _pair(cases, curves, erosion_matched=_EROSION in ifs)
    # Each pair regresses its region's TAC on its input function's X; every curve of one
    # pair must therefore sit on the same frames.
    c, k = pairs["_case"].to_numpy(), pairs["_curve"].to_numpy()
    if tac_t.shape[1] != if_t.shape[1] or not np.allclose(tac_t[c], if_t[k], rtol=1e-9, atol=1e-6):
        bad = _first_time_mismatch(pairs, tac_t, if_t)
        raise InvalidInputError(
            f"{bad}: the region TAC and input function are not sampled at the same frame "
            "middles; resample the input function onto the TAC's frames"
        )

    t_min = if_t / 60.0  # Ki per minute, as hedyPET publishes it
    if t_star is None:
        n_per_pair = np.broadcast_to(
            np.asarray(windows, dtype=np.int64), (len(pairs), len(windows))
        )
    else:
        n_per_pair = frames_from(t_min, t_star)[k][:, None]
    ki, intercept = _fit_pairs(tac_v[c], if_v, k, t_min, n_per_pair, from_injection)

    out = pairs.drop(columns=["_case", "_curve"]).loc[np.repeat(pairs.index, n_per_pair.shape[1])]
    out = out.reset_index(drop=True)
    out["Regression Frames"] = n_per_pair.ravel()
    if t_star is not None:
        out["t* [min]"] = float(t_star)
    out["Patlak Ki"] = ki.ravel()
    out["Patlak Intercept"] = intercept.ravel()
    columns = [*case_keys, *PATLAK_COLUMNS] + (["t* [min]"] if t_star is not None else [])
    out = out[columns].sort_values([*case_keys, INPUT_FUNCTION_ID, "Regression Frames"])
    return out.reset_index(drop=True)


def _fit_pairs(tissue, plasma, curve_of_pair, t_min, n_per_pair, from_injection):
    """Ki and intercept, shape of ``n_per_pair``: X once per input function, then gathered."""
    n_frames = tissue.shape[1]
    if n_per_pair.size and not (2 <= n_per_pair.min() and n_per_pair.max() <= n_frames):
        raise InvalidInputError(
            f"a regression window needs 2 to {n_frames} frames, got "
            f"{sorted(set(n_per_pair.ravel().tolist()))} (check n_frames or t_star)"
        )
    x_all = patlak_x(plasma, t_min, from_injection=from_injection)
    w = int(n_per_pair.max(initial=2))
    x = x_all[curve_of_pair, -w:]
    y = patlak_y(tissue[:, -w:], plasma[curve_of_pair, -w:])
    ki = np.full(n_per_pair.shape, np.nan)
    intercept = np.full(n_per_pair.shape, np.nan)
    for n in np.unique(n_per_pair):
        rows, cols = np.nonzero(n_per_pair == n)
        ki[rows, cols], intercept[rows, cols] = ols_last_frames(x[rows], y[rows], int(n))
    return ki, intercept


def _canonical_tacs(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Region TACs as ``Subject, Erosion Iterations, <keys>, Volume [mL], _time_s, _value``."""
    cols = set(table.columns)
    if _HEDYPET_REGION <= cols:
        keys = ["Region"]
        out = table.rename(columns={"region": "Region", "t": _TIME, "mu": _VALUE})
    elif _PETZARR_TAC <= cols:
        keys = ["Task", "Label Name"]
        out = table.rename(columns={"Frame Time Middle [s]": _TIME, "PET Mean [Bq/mL]": _VALUE})
    else:
        raise InvalidInputError(
            f"region TAC table has columns {sorted(cols)}; expected hedyPET region TACs "
            "(Subject, Erosion Iterations, mu, region, Volume [mL], t) or petzarr TACs "
            "(Subject, Task, Label Name, Erosion Iterations, Frame Time Middle [s], "
            "PET Mean [Bq/mL], Volume [mL])"
        )
    if "Volume [mL]" not in out:
        out = out.assign(**{"Volume [mL]": np.nan})
    out = out[["Subject", _EROSION, *keys, "Volume [mL]", _TIME, _VALUE]]
    # hedyPET's region table repeats some curves row for row (White matter, every subject);
    # identical rows carry no information, conflicting ones are refused in _curves.
    return out.drop_duplicates(ignore_index=True), keys


def _canonical_input_functions(
    tables: pd.DataFrame | Sequence[pd.DataFrame], erosion: int | None
) -> pd.DataFrame:
    """Input functions as ``[Subject], Input Function Identifier, [Erosion], _time_s, _value``."""
    if isinstance(tables, pd.DataFrame):
        tables = [tables]
    parts = []
    for table in tables:
        cols = set(table.columns)
        if _PETZARR_TAC <= cols:
            part = table.assign(
                **{INPUT_FUNCTION_ID: table["Task"].astype(str) + "_" + table["Label Name"]}
            ).rename(columns={"Frame Time Middle [s]": _TIME, "PET Mean [Bq/mL]": _VALUE})
        elif _USER_IF <= cols:
            part = table.rename(columns={"Time [s]": _TIME, "Activity": _VALUE})
            if INPUT_FUNCTION_ID not in part:
                part = part.assign(**{INPUT_FUNCTION_ID: "input_function"})
        else:
            raise InvalidInputError(
                f"input-function table has columns {sorted(cols)}; expected petzarr/hedyPET "
                "TACs (Subject, Task, Label Name, Erosion Iterations, Frame Time Middle [s], "
                "PET Mean [Bq/mL]) or Time [s], Activity [, Subject]"
            )
        if _EROSION in part and erosion is not None:
            available = sorted(part[_EROSION].unique().tolist())
            part = part[part[_EROSION] == erosion]
            if part.empty:
                raise InvalidInputError(
                    f"no input functions with Erosion Iterations == {erosion} (the table has "
                    f"{available}); pass input_function_erosion= one of those"
                )
        keep = [c for c in ("Subject", INPUT_FUNCTION_ID) if c in part]
        if erosion is None:
            if _EROSION not in part:
                raise InvalidInputError(
                    "input_function_erosion=None pairs erosions like with like, but an "
                    "input-function table has no Erosion Iterations column"
                )
            keep.append(_EROSION)
        parts.append(part[[*keep, _TIME, _VALUE]])
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)


def _expand_to_subjects(ifs: pd.DataFrame, subjects: np.ndarray) -> pd.DataFrame:
    """Give subject-less input functions (a population curve) to every subject."""
    if "Subject" not in ifs:
        ifs = ifs.assign(Subject=np.nan)
    shared = ifs["Subject"].isna()
    if not shared.any():
        return ifs
    broadcast = (
        ifs[shared].drop(columns="Subject").merge(pd.DataFrame({"Subject": subjects}), how="cross")
    )
    return pd.concat([ifs[~shared], broadcast], ignore_index=True)


def _curves(
    long: pd.DataFrame, keys: list[str], *, what: str, extra: Sequence[str] = ()
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Pivot a long table to one row per curve: (key table, times (C, F), values (C, F))."""
    long = long.sort_values([*keys, _TIME], kind="stable")
    dup = long.duplicated([*keys, _TIME])
    if dup.any():
        row = long[dup].iloc[0]
        raise InvalidInputError(
            f"{what} {_name(row, keys)} has two different values at {row[_TIME]} s; "
            "remove the conflicting rows"
        )
    grouped = long.groupby(keys, sort=False, dropna=False)
    sizes = grouped.size()
    if sizes.nunique() > 1:
        short = sizes.idxmin()
        raise InvalidInputError(
            f"{what} {dict(zip(keys, np.atleast_1d(short), strict=True))} has {sizes.min()} "
            f"frames, others {sizes.max()}; every curve needs the same frames"
        )
    n = int(sizes.iloc[0]) if len(sizes) else 0
    table = grouped[list(extra)].first().reset_index() if extra else sizes.reset_index()[keys]
    times = long[_TIME].to_numpy(np.float64).reshape(-1, n)
    values = long[_VALUE].to_numpy(np.float64).reshape(-1, n)
    return table, times, values


def _pair(cases: pd.DataFrame, curves: pd.DataFrame, *, erosion_matched: bool) -> pd.DataFrame:
    """Every region TAC with every input function of its subject (and erosion, if matched)."""
    on = ["Subject", _EROSION] if erosion_matched else ["Subject"]
    left = cases.assign(_case=np.arange(len(cases)))
    right = curves.assign(_curve=np.arange(len(curves)))
    if erosion_matched:
        right = right.astype({_EROSION: left[_EROSION].dtype})
    pairs = left.merge(right, on=on, how="inner")
    missing = set(cases["Subject"].unique()) - set(pairs["Subject"].unique())
    if missing:
        raise InvalidInputError(
            f"no input function for subject(s) {sorted(missing)[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; give one per subject or a subject-less one"
        )
    return pairs


def _first_time_mismatch(pairs: pd.DataFrame, tac_t: np.ndarray, if_t: np.ndarray) -> str:
    if tac_t.shape[1] != if_t.shape[1]:
        return f"region TACs have {tac_t.shape[1]} frames, input functions {if_t.shape[1]}"
    c, k = pairs["_case"].to_numpy(), pairs["_curve"].to_numpy()
    bad = ~np.isclose(tac_t[c], if_t[k], rtol=1e-9, atol=1e-6).all(axis=1)
    row = pairs[bad].iloc[0]
    return f"subject {row['Subject']}, input function {row[INPUT_FUNCTION_ID]}"


def _name(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{k}={row[k]}" for k in keys)


def read_table(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a Parquet (``.parquet``, ``.pq``) or CSV (``.csv``, ``.csv.gz``, ``.tsv``) table.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     pd.DataFrame({"a": [1, 2]}).to_parquet(f"{d}/x.parquet")
    ...     read_table(f"{d}/x.parquet")["a"].tolist()
    [1, 2]
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such file")
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return pd.read_parquet(path)
    if ".tsv" in suffixes:
        return pd.read_csv(path, sep="\t")
    if ".csv" in suffixes:
        return pd.read_csv(path)
    raise InvalidInputError(f"{path}: not a table petzarr reads; use .parquet, .csv or .tsv")


def read_input_function(
    path: str | PathLike[str], *, identifier: str | None = None
) -> pd.DataFrame:
    """Read an input function: a petzarr/hedyPET TAC table, or a time [s], activity CSV.

    A time/activity file has two numeric columns (a header is optional; the column whose name
    contains "time" is the time, else the first) and may add a ``Subject`` column; without
    one the curve is used for every subject. Its identifier is ``identifier``, else its
    ``Input Function Identifier`` column, else the file name without suffixes. Tables in the
    petzarr/hedyPET TAC layout are returned as read (identifiers ``<Task>_<Label Name>``).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = Path(d, "aif.csv").write_text("time [s],activity\\n1.0,0.0\\n3.0,150.0\\n")
    ...     read_input_function(Path(d, "aif.csv")).columns.tolist()
    ['Time [s]', 'Activity', 'Input Function Identifier']
    """
    path = Path(path)
    table = read_table(path)
    name = identifier or path.name.split(".")[0]
    if _PETZARR_TAC <= set(table.columns):
        return table
    if _USER_IF <= set(table.columns):
        if identifier is None and INPUT_FUNCTION_ID in table:
            return table
        return table.assign(**{INPUT_FUNCTION_ID: name})
    if all(_is_number(c) for c in table.columns):  # no header row
        table = pd.read_csv(path, header=None, sep="\t" if ".tsv" in path.suffixes else ",")
    data = [c for c in table.columns if str(c) != "Subject"]
    if len(data) != 2:
        raise InvalidInputError(
            f"{path}: expected two columns, time [s] and activity (plus an optional Subject), "
            f"got {list(table.columns)}"
        )
    time = next((c for c in data if "time" in str(c).lower()), data[0])
    activity = data[1] if time == data[0] else data[0]
    out = table.rename(columns={time: "Time [s]", activity: "Activity"})
    try:
        out = out.astype({"Time [s]": np.float64, "Activity": np.float64})
    except ValueError as exc:
        raise InvalidInputError(f"{path}: time and activity must be numbers ({exc})") from None
    return out.assign(**{INPUT_FUNCTION_ID: name})


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def patlak_from_files(
    tacs: str | PathLike[str],
    input_functions: Sequence[str | PathLike[str]],
    *,
    n_frames: Sequence[int] | None = None,
    t_star: float | None = None,
    from_injection: bool = False,
    input_function_erosion: int | None = 0,
) -> pd.DataFrame:
    """:func:`patlak_table` on files (Parquet or CSV), as the ``petzarr patlak`` command runs it.

    Examples
    --------
    >>> import tempfile
    >>> t = np.array([60.0, 300.0, 900.0, 1800.0, 2700.0, 3600.0])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     pd.DataFrame({"Subject": "s", "Erosion Iterations": 0, "region": "Liver",
    ...                   "Volume [mL]": 1.0, "t": t, "mu": t / 60}).to_csv(f"{d}/tacs.csv")
    ...     pd.DataFrame({"t": t, "a": np.full(6, 2.0)}).to_csv(f"{d}/aif.csv", index=False)
    ...     out = patlak_from_files(f"{d}/tacs.csv", [f"{d}/aif.csv"], n_frames=[4])
    >>> round(float(out["Patlak Ki"].iloc[0]), 12), out[INPUT_FUNCTION_ID].iloc[0]
    (0.5, 'aif')
    """
    return patlak_table(
        read_table(tacs),
        [read_input_function(p) for p in input_functions],
        n_frames=n_frames,
        t_star=t_star,
        from_injection=from_injection,
        input_function_erosion=input_function_erosion,
    )
