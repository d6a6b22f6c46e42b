"""Opening a cohort for reading: the index as a DataFrame, subjects as xarray Datasets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import xarray as xr

from petzarr.cohort import layout, storage
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.index import read_index
from petzarr.cohort.labels import parse_labels
from petzarr.cohort.storage import filesystem, is_remote, join

__all__ = ["Cohort", "open_cohort"]


@dataclass(frozen=True)
class Cohort:
    """A published cohort: its index, its label tables, and lazy access to its subjects."""

    url: str
    index: pd.DataFrame
    labels: dict[str, dict[int, str]]
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def subjects(self) -> list[str]:
        return list(self.index["subject"])

    def store_url(self, subject: str) -> str:
        rows = self.index.loc[self.index["subject"] == subject, "store"]
        if rows.empty:
            raise InvalidInputError(f"{self.url}: subject {subject!r} is not in the index")
        return join(self.url, rows.iloc[0])

    def open(self, subject: str, group: str = layout.PET_GROUP, **kwargs: Any) -> xr.Dataset:
        """Open one subject's group as a lazy, dask-backed :class:`xarray.Dataset`.

        Extra keyword arguments go to :func:`xarray.open_zarr` (``chunks=...``).
        """
        url = self.store_url(subject)
        if is_remote(url):
            kwargs["storage_options"] = self.storage_options
        return xr.open_zarr(url, group=group, zarr_format=3, consolidated=True, **kwargs)

    def describe(self) -> str:
        """A few lines saying what is in the cohort."""
        n = len(self.index)
        lines = [f"cohort {self.url}: {n} published subject(s)"]
        if n:
            shown = ", ".join(self.subjects[:8]) + (" ..." if n > 8 else "")
            lines.append(f"  subjects: {shown}")
            first = self.index.iloc[0]
            for col in ("ct_shape", "pet_shape"):
                if col in self.index:
                    lines.append(f"  {col.replace('_', ' ')} (first subject): {first[col]}")
        n_labels = sum(len(t) for t in self.labels.values())
        groups = ", ".join(f"{g} ({len(t)})" for g, t in self.labels.items())
        lines.append(f"  label groups: {len(self.labels)}, {n_labels} classes: {groups}")
        extra = [c for c in self.index.columns if c not in layout.BOOKKEEPING_COLUMNS]
        if extra:
            lines.append(f"  index columns: {', '.join(extra)}")
        return "\n".join(lines)


def open_cohort(
    url: str, *, storage_options: dict[str, Any] | None = None, anon: bool = False
) -> Cohort:
    """Open a petzarr cohort (local folder or ``s3://`` prefix).

    Examples
    --------
    >>> import tempfile
    >>> from petzarr.synth import write_enhance_cohort
    >>> from petzarr.cohort.executor import Run
    >>> from petzarr.convert.job import convert_cohort
    >>> src, dst = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = write_enhance_cohort(src, subjects=1, size="tiny", seed=2)
    >>> _ = convert_cohort(src, dst, run=Run(serial=True, progress=False))
    >>> cohort = open_cohort(dst)
    >>> ds = cohort.open(cohort.subjects[0], "pet")
    >>> ds.pet.dims, ds.pet.attrs["units"]
    (('z', 'y', 'x'), 'Bq/mL')
    """
    opts = dict(
        storage_options if storage_options is not None else storage.storage_options(url, anon=anon)
    )
    fs, path = filesystem(join(url, layout.LABELS), opts)
    labels: dict[str, dict[int, str]] = {}
    if fs.exists(path):
        with fs.open(path, "rb") as f:
            labels = parse_labels(json.load(f), where=join(url, layout.LABELS))
    return Cohort(url=url, index=read_index(url, opts), labels=labels, storage_options=opts)
