"""The cohort index and run reports: the only way readers find subjects, and what each run did."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from petzarr.cohort import layout
from petzarr.cohort.storage import filesystem, is_remote, join

__all__ = ["read_index", "update_index", "write_report"]


def read_index(cohort: str, options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The published subjects, one row each (empty when nothing is published yet)."""
    fs, path = filesystem(join(cohort, layout.INDEX), options)
    if not fs.exists(path):
        return pd.DataFrame({"subject": pd.Series(dtype=str), "store": pd.Series(dtype=str)})
    with fs.open(path, "rb") as f:
        return pd.read_parquet(io.BytesIO(f.read()))


def update_index(
    cohort: str, rows: Iterable[Mapping[str, Any]], options: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Add or replace rows by ``subject`` and write the index in one put (atomic per object)."""
    new = pd.DataFrame([dict(r) for r in rows])
    old = read_index(cohort, options)
    if new.empty:
        return old
    kept = old[~old["subject"].isin(new["subject"])]
    index = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    index = index.sort_values("subject", kind="stable").reset_index(drop=True)
    for col in index.columns:  # mixed object columns (e.g. numbers and text) -> text
        if index[col].dtype == object and index[col].map(type).nunique() > 1:
            index[col] = index[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    _put(cohort, layout.INDEX, index.to_parquet(index=False), options)
    return index


def write_report(
    cohort: str, name: str, report: Mapping[str, Any], options: Mapping[str, Any] | None = None
) -> str:
    """Write ``reports/<name>.json``; return its URL."""
    return _put(
        cohort,
        f"{layout.REPORTS}/{name}.json",
        json.dumps(report, indent=2, default=str).encode(),
        options,
    )


def _put(cohort: str, relpath: str, data: bytes, options: Mapping[str, Any] | None) -> str:
    url = join(cohort, relpath)
    fs, path = filesystem(url, options)
    if is_remote(url):  # one object put: readers see the old object or the new one
        fs.pipe_file(path, data)
        return url
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    tmp = f"{path}.tmp"
    with fs.open(tmp, "wb") as f:
        f.write(data)
    fs.mv(tmp, path)  # a rename: atomic on one file system
    return url
