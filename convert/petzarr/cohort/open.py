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
from petzarr.cohort.labels import load_labels
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

    def last_run(self) -> dict[str, Any] | None:
        """The newest conversion report (``reports/convert-<utc>.json``), or None."""
        fs, root = filesystem(self.url, self.storage_options)
        found = sorted(fs.glob(f"{root.rstrip('/')}/{layout.REPORTS}/convert-*.json"))
        if not found:
            return None
        with fs.open(found[-1], "rb") as f:
            report: dict[str, Any] = json.load(f)
        return report

    def describe(self) -> str:
        """A few lines saying what is in the cohort: subjects, the last run, groups and grids
        (of the first subject), label tables, metadata columns."""
        n = len(self.index)
        lines = [f"cohort {self.url}: {n} published subject(s)"]
        if n:
            shown = ", ".join(self.subjects[:8]) + (" ..." if n > 8 else "")
            lines.append(f"  subjects: {shown}")
        run = self.last_run()
        if run:
            counts = ", ".join(f"{v} {k}" for k, v in sorted(run.get("counts", {}).items()))
            lines.append(f"  last run: {run.get('finished', '?')}, {counts or 'no subjects'}")
        if n:
            lines.append(f"  groups of {self.subjects[0]}:")
            lines += [f"    {line}" for line in self._groups(self.subjects[0])]
        n_labels = sum(len(t) for t in self.labels.values())
        groups = ", ".join(f"{g} ({len(t)})" for g, t in self.labels.items())
        lines.append(f"  label groups: {len(self.labels)}, {n_labels} classes: {groups}")
        extra = [c for c in self.index.columns if c not in layout.BOOKKEEPING_COLUMNS]
        if extra:
            lines.append(f"  index columns: {', '.join(extra)}")
        return "\n".join(lines)

    def _groups(self, subject: str) -> list[str]:
        from petzarr.cohort.subject import open_subject

        store = open_subject(self.store_url(subject), storage_options=self.storage_options)
        lines = []
        for name in store.groups:
            group = store.group(name)
            try:
                grid = group.grid
            except InvalidInputError as exc:
                lines.append(f"{name}: {exc}")
                continue
            size = " x ".join(f"{s:g}" for s in grid.spacing)
            text = f"{name}: {tuple(group.image.shape)} at {size} mm"
            if name == layout.PET_DYNAMIC_GROUP:
                frames = group.frames
                end = frames.start_s[-1] + frames.duration_s[-1]
                text += f", {len(frames.mid_s)} frames over {end / 60:g} min"
                if "patlak_ki" in group.group:
                    text += ", Patlak Ki map"
            maps = group.map_names
            text += f"; label maps: {', '.join(maps)}" if maps else "; no label maps"
            lines.append(text)
        return lines


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
    fs, root = filesystem(url, opts)
    root = root.rstrip("/")
    if not any(fs.exists(f"{root}/{name}") for name in (layout.INDEX, layout.REPORTS)):
        if not fs.exists(root):
            raise InvalidInputError(f"{url}: does not exist")
        raise InvalidInputError(
            f"{url}: not a petzarr cohort (no {layout.INDEX}); "
            f"make one with: petzarr convert SOURCE {url}"
        )
    labels: dict[str, dict[int, str]] = {}
    where = join(url, layout.LABELS)
    if fs.exists(f"{root}/{layout.LABELS}"):
        with fs.open(f"{root}/{layout.LABELS}", "rb") as f:
            labels = load_labels(f, where=where)
    return Cohort(url=url, index=read_index(url, opts), labels=labels, storage_options=opts)
