"""``PT-details.xlsx`` and ``CT-details.xlsx`` of a synthetic cohort (pandas + openpyxl)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["CT_COLUMNS", "PT_COLUMNS", "write_details"]

PT_COLUMNS = (
    "Patient",
    "Age",
    "Sex",
    "Weight [kg]",
    "Height [m]",
    "Data-Source",
    "Injected Activity [MBq]",
    "Injection Time",
    "Acquisition Time",
    "Radiopharmaceutical",
    "Manufacturer",
)
CT_COLUMNS = (
    "Patient",
    "Data-Source",
    "Manufacturer",
    "kVp",
    "Exposure [mAs]",
    "Slice Thickness [mm]",
)


def _write(
    path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> None:
    df = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=list(columns))
    df["Patient"] = df["Patient"].astype(str)  # "0001" stays text in Excel
    df.to_excel(path, index=False, engine="openpyxl")


def write_details(
    root: str | os.PathLike[str],
    pt_rows: Sequence[Mapping[str, Any]],
    ct_rows: Sequence[Mapping[str, Any]],
) -> None:
    """Write ``PT-details.xlsx`` and ``CT-details.xlsx`` under ``root``, one row per subject.

    Each row needs every column of :data:`PT_COLUMNS` / :data:`CT_COLUMNS`.
    """
    _write(os.path.join(root, "PT-details.xlsx"), pt_rows, PT_COLUMNS)
    _write(os.path.join(root, "CT-details.xlsx"), ct_rows, CT_COLUMNS)
