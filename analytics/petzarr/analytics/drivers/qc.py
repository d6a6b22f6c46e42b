"""Quality control of a cohort: every subject's PET/CT offset and figure, one task each,
then one table (``qc.parquet`` and ``qc.csv``) and an HTML page of all figures, the
flagged subjects first."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from petzarr.analytics.drivers.subjects import CohortRun, run_subjects
from petzarr.analytics.jobs.qc import FLAG_MM, subject_qc
from petzarr.cohort.executor import Run
from petzarr.cohort.storage import filesystem, is_remote
from petzarr.cohort.storage import storage_options as options_of

__all__ = ["QC_COLUMNS", "cohort_qc"]

QC_COLUMNS = ("Subject", "PET-CT Offset [mm]", "Offset z [mm]", "Offset y [mm]",
              "Offset x [mm]", "Flagged", "Reason", "Organs", "Figure")  # fmt: skip


def cohort_qc(
    cohort_url: str,
    out_dir: str,
    *,
    subjects: Sequence[str] | None = None,
    run: Run | None = None,
    storage_options: Mapping[str, Any] | None = None,
    anon: bool = False,
    flag_mm: float = FLAG_MM,
) -> CohortRun:
    """QC of every (or the chosen) subject into ``out_dir`` (a folder or ``s3://`` prefix).

    Writes ``<subject>.png`` per subject, ``qc.parquet``, ``qc.csv`` and ``index.html``.
    The table (:data:`QC_COLUMNS`) is sorted flagged first, then by offset, largest first.
    """
    if not is_remote(out_dir):  # workers may run elsewhere in the file system
        out_dir = os.path.abspath(out_dir)
    out_options = options_of(out_dir)
    fs, root = filesystem(out_dir, out_options)
    fs.makedirs(root, exist_ok=True)
    results, failed = run_subjects(
        subject_qc,
        cohort_url,
        desc="qc",
        subjects=subjects,
        run=run,
        storage_options=dict(storage_options) if storage_options is not None else None,
        anon=anon,
        kwargs={"out_dir": out_dir, "flag_mm": flag_mm, "out_options": out_options},
        per_subject=lambda row: {"index_row": row},
    )
    table = pd.DataFrame(list(results.values()), columns=list(QC_COLUMNS))
    if not table.empty:
        table = table.sort_values(
            ["Flagged", "PET-CT Offset [mm]", "Subject"], ascending=[False, False, True]
        ).reset_index(drop=True)
    with fs.open(f"{root}/qc.parquet", "wb") as f:
        table.to_parquet(f, index=False)
    with fs.open(f"{root}/qc.csv", "w") as f:
        table.to_csv(f, index=False)
    with fs.open(f"{root}/index.html", "w") as f:
        f.write(index_page(table, failed, cohort_url, flag_mm))
    return CohortRun(table=table, failed=failed)


def index_page(table: pd.DataFrame, failed: Mapping[str, str], cohort: str, flag_mm: float) -> str:
    """The HTML page of every subject's figure, flagged subjects first."""
    n_flag = int(table["Flagged"].sum()) if len(table) else 0
    rows = []
    for r in table.to_dict("records"):
        offset = r["PET-CT Offset [mm]"]
        said = f"{offset:.1f} mm" if pd.notna(offset) else "not estimated"
        cls = ' class="flagged"' if r["Flagged"] else ""
        rows.append(
            f'<section{cls} id="s-{html.escape(r["Subject"])}"><h2>{html.escape(r["Subject"])}'
            f" — PET-CT offset {said}</h2><p>{html.escape(str(r['Reason']))}</p>"
            f'<img src="{html.escape(r["Figure"])}" alt="QC figure of {html.escape(r["Subject"])}"'
            ' loading="lazy"></section>'
        )
    errors = "".join(
        f"<li><b>{html.escape(s)}</b>: {html.escape(e)}</li>" for s, e in failed.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>petzarr QC</title><style>"
        "body{font-family:sans-serif;margin:2em} section{margin-bottom:2em}"
        " .flagged h2{color:#b00} img{max-width:100%}</style></head><body>"
        f"<h1>QC of {html.escape(cohort)}</h1><p>{len(table)} subjects, {n_flag} flagged "
        f"(PET-CT offset above {flag_mm:g} mm), {len(failed)} failed.</p>"
        + (f"<h2>Failed</h2><ul>{errors}</ul>" if errors else "")
        + "".join(rows)
        + "</body></html>"
    )
