"""The tables the explorer shows: ``petzarr stats``, ``qc``, and for dynamic PET ``tacs``,
``input-functions`` and ``patlak``, as those commands write them."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pandas as pd

from petzarr.analytics.tables.groups import demographics
from petzarr.analytics.tables.patlak import INPUT_FUNCTION_ID
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.storage import storage_options as options_of

VALUES = ("SUV Mean", "SUV Peak", "SUL Mean (James)")  # all in g/mL
KI = "Patlak Ki"  # mL/cm3/min, from petzarr patlak's table
UNITS = dict.fromkeys(VALUES, "g/mL") | {KI: "mL/cm³/min"}
STATS_COLUMNS = ("Subject", "Task", "Label Name", "Erosion Iterations", "Volume [mL]",
                 "SUV Mean", "SUV Max", "SUV Peak", "SUL Mean (James)")  # fmt: skip


@dataclass(frozen=True)
class Kinetics:
    """A dynamic cohort's tables, as ``petzarr tacs``, ``input-functions`` and ``patlak``
    write them (each may be missing: the views that need it are left out)."""

    tacs: pd.DataFrame | None = None
    input_functions: pd.DataFrame | None = None
    patlak: pd.DataFrame | None = None

    @property
    def input_function_ids(self) -> list[str]:
        """The input functions, named as Patlak's ``Input Function Identifier``."""
        if self.patlak is not None:
            return sorted(self.patlak[INPUT_FUNCTION_ID].unique())
        if self.input_functions is not None:
            return sorted(set(_if_ids(self.input_functions)))
        return []

    @property
    def frames(self) -> list[int]:
        """The regression windows (trailing frames) the Patlak table holds fits for."""
        if self.patlak is None:
            return []
        return sorted(int(n) for n in self.patlak["Regression Frames"].unique())

    def fits(self, if_id: str, frames: int) -> pd.DataFrame:
        """The Patlak rows of one input function and regression window."""
        assert self.patlak is not None
        p = self.patlak
        return p[(p[INPUT_FUNCTION_ID] == if_id) & (p["Regression Frames"] == frames)]

    def blood(self, if_id: str) -> pd.DataFrame:
        """Every subject's input function ``if_id`` (erosion 0), frame by frame."""
        assert self.input_functions is not None
        table = self.input_functions
        return table[(_if_ids(table) == if_id) & (table["Erosion Iterations"] == 0)]


def _if_ids(table: pd.DataFrame) -> pd.Series:
    return table["Task"].astype(str) + "_" + table["Label Name"].astype(str)


def read_table(path: str, *, anon: bool = False) -> pd.DataFrame:
    """A table ``petzarr stats``/``qc`` wrote (.parquet, .csv; a QC folder means its
    qc.parquet), local or on S3."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not path.endswith((".parquet", ".csv", ".csv.gz")):
        if "." in name:  # a file, but not a table petzarr writes
            raise InvalidInputError(f"{path}: not a .parquet or .csv table, nor a QC folder")
        path = path.rstrip("/") + "/qc.parquet"
    opts = options_of(path, anon=anon) or None
    if path.endswith(".parquet"):
        return pd.read_parquet(path, storage_options=opts)
    return pd.read_csv(path, storage_options=opts, dtype={"Subject": str})


def computed_stats(cohort_url: str, storage_options: dict[str, Any] | None) -> pd.DataFrame:
    from petzarr.analytics.drivers.stats import cohort_stats
    from petzarr.cohort.executor import Run

    print(f"petzarr explore: no --stats table given: computing the organ statistics of "
          f"{cohort_url} now (petzarr stats COHORT -o stats.parquet --erosion 0,1 saves them)",
          file=sys.stderr)  # fmt: skip
    run = cohort_stats(cohort_url, erosion=(0, 1), run=Run(serial=True, progress=True),
                       storage_options=storage_options)  # fmt: skip
    for subject, error in run.failed.items():
        print(f"petzarr explore: subject {subject}: {error}", file=sys.stderr)
    return run.table


def checked_stats(stats: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in STATS_COLUMNS[:4] if c not in stats]
    if missing or not any(v in stats for v in VALUES):
        raise InvalidInputError(
            f"the stats table has no {missing or list(VALUES)} columns: give the long table "
            "of petzarr stats (not --wide)"
        )
    if not stats[[v for v in VALUES if v in stats]].notna().any().any():
        raise InvalidInputError("the stats table has no values (no rows, or all NaN)")
    return stats


def cohort_groups(index: pd.DataFrame) -> pd.DataFrame:
    """Subject, Sex, Age Group ("?" when unknown)."""
    people = demographics(index)[["Subject", "Sex", "Age Group"]]
    return people.astype({"Sex": object, "Age Group": object}).fillna("?")
