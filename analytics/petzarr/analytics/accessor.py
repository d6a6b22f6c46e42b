"""``ds.petzarr``: a subject's label maps by name, masks and organ statistics, on xarray.

A thin labelled layer over :func:`~petzarr.analytics.tables.label_stats.label_statistics`
(as flox wraps its core): names instead of integer ids, the voxel spacing from the ``z, y, x``
coordinates, and the same long table as ``petzarr stats``. Importing this module registers
the accessor on every :class:`xarray.Dataset`::

    import xarray as xr
    import petzarr.analytics.accessor  # noqa: F401  (registers ds.petzarr)

    ds = xr.open_zarr("cohort/subjects/0001.zarr", group="pet")
    ds.petzarr.mask("liver")                 # lazy boolean DataArray
    ds.petzarr.stats(by="organs")            # one row per label

It works on numpy-backed and dask-backed datasets alike (``xr.open_zarr`` gives dask).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError

__all__ = ["PetzarrAccessor"]

#: Image variables the accessor reduces, in the order it looks for them.
IMAGE_VARIABLES = (layout.PET_GROUP, layout.CT_GROUP)


class PetzarrAccessor:
    """Label maps by name, masks and organ statistics of one subject's image group.

    The Dataset is one group of a subject store (``pet`` or ``ct``): an image variable
    ``(z, y, x)``, label maps ``seg_<map>`` with a ``labels`` attribute ``{"id": "name"}``,
    and ``z, y, x`` coordinates in mm.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import petzarr.analytics.accessor
    >>> seg = np.zeros((2, 2, 3), np.uint8)
    >>> seg[..., 1:] = 8
    >>> ds = xr.Dataset(
    ...     {
    ...         "pet": (("z", "y", "x"), np.arange(12.0).reshape(2, 2, 3)),
    ...         "seg_organs": (("z", "y", "x"), seg, {"labels": {"8": "liver"}}),
    ...     },
    ...     coords={"z": [0.0, 2.0], "y": [0.0, 1.0], "x": [0.0, 1.0, 2.0]},
    ... )
    >>> ds.petzarr.maps, ds.petzarr.labels("Organs"), ds.petzarr.spacing_mm
    (['organs'], {8: 'liver'}, (2.0, 1.0, 1.0))
    >>> int(ds.petzarr.mask("liver").sum())
    8
    >>> ds.petzarr.stats(subject="s1", median=False, peak=False)[
    ...     ["Subject", "Task", "Label Name", "Voxel Count", "Volume [mL]", "Mean", "Max"]
    ... ]
      Subject    Task Label Name  Voxel Count  Volume [mL]  Mean   Max
    0      s1  organs      liver            8        0.016   6.0  11.0
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def maps(self) -> list[str]:
        """Names of the label maps (``seg_organs`` -> ``organs``), sorted."""
        return sorted(
            str(k).removeprefix(layout.SEG_PREFIX)
            for k in self._ds.data_vars
            if str(k).startswith(layout.SEG_PREFIX)
        )

    def labels(self, group: str) -> dict[int, str]:
        """``{id: name}`` of a label map.

        ``group`` is the map's name (``"organs"``), its variable (``"seg_organs"``) or its
        ENHANCE folder (``"Organs"``, ``"Peripheral-Bones"``).
        """
        return _label_table(self._map(group).attrs)

    def mask(self, label: str | int, *, group: str | None = None) -> xr.DataArray:
        """Boolean DataArray, True where ``label`` is (lazy when the map is dask-backed).

        ``label`` is a label name (``"liver"``) or, with ``group``, an integer id. ``group``
        is needed when the name is in several maps.
        """
        name, ids = self._find(label, group)
        seg = self._map(name)
        # one id is the common case, and ``==`` is what users would have written by hand
        hit = seg == ids[0] if len(ids) == 1 else seg.isin(ids)
        return hit.rename(str(label)).assign_attrs(group=name, label_ids=ids)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing (dz, dy, dx) in mm of the image variable, from its coordinates."""
        return _spacing(self._ds, self._image(None))

    def stats(
        self,
        by: str | Sequence[str] | None = None,
        *,
        erosion: Iterable[int] = (0,),
        median: bool = True,
        peak: bool = True,
        variable: str | None = None,
        subject: str | None = None,
    ) -> pd.DataFrame:
        """Statistics of the image for every label of the maps ``by``, one row per label.

        Parameters
        ----------
        by : str or sequence of str, optional
            Label map(s), as :meth:`labels` takes them (default: every ``seg_*`` map).
        erosion, median, peak
            As :func:`~petzarr.analytics.tables.label_stats.label_statistics`.
        variable : str, optional
            The image variable (default ``pet``, else ``ct``).
        subject : str, optional
            The ``Subject`` column (default: the store's folder name, from
            ``ds.encoding["source"]``, else empty).

        Returns
        -------
        pandas.DataFrame
            The long table of ``label_statistics`` (``Mean, STD, Min, Max, Median, Peak``
            in the image's unit: Bq/mL, HU) with ``Subject`` and ``Label Name``
            (:func:`~petzarr.analytics.tables.label_stats.name_labels`). A dask-backed
            Dataset is computed once, here.
        """
        # numba loads on the first statistics, not when the accessor is registered
        from petzarr.analytics.tables.label_stats import label_statistics, name_labels

        image = self._image(variable)
        names = self._map_names(by)
        maps = {name: self._on_grid(name, image).data for name in names}
        table = label_statistics(
            image.data,
            maps,
            spacing_mm=_spacing(self._ds, image),
            erosion=erosion,
            median=median,
            peak=peak,
        )
        return name_labels(
            table, self._subject(subject), {name: self.labels(name) for name in names}
        )

    # -- helpers ------------------------------------------------------------------------

    def _map(self, group: str) -> xr.DataArray:
        name = layout.group_name(group)
        key = layout.SEG_PREFIX + name
        if key not in self._ds.data_vars:
            have = ", ".join(self.maps) or "none"
            raise InvalidInputError(f"no label map {key!r} ({group!r}) in the dataset: {have}")
        return self._ds[key]

    def _map_names(self, by: str | Sequence[str] | None) -> list[str]:
        if by is None:
            names = self.maps
        else:
            names = [layout.group_name(g) for g in ([by] if isinstance(by, str) else by)]
            for name in names:
                self._map(name)  # a clear error for a map that is not there
        if not names:
            raise InvalidInputError("the dataset has no label map (no seg_* variable)")
        return list(dict.fromkeys(names))

    def _find(self, label: str | int, group: str | None) -> tuple[str, list[int]]:
        """The map and the id(s) of ``label``."""
        if group is not None:
            name = layout.group_name(group)
            table = self.labels(name)
            if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
                return name, [int(label)]
            ids = [k for k, v in table.items() if v == label]
            if not ids:
                raise InvalidInputError(
                    f"no label {label!r} in map {name!r}{_close(label, table.values())}"
                )
            return name, ids
        if not isinstance(label, str):
            raise InvalidInputError(
                f"label {label!r} is an id: pass group= (one of {', '.join(self.maps)})"
            )
        hits: dict[str, list[int]] = {}
        for name in self.maps:
            ids = [k for k, v in self.labels(name).items() if v == label]
            if ids:
                hits[name] = ids
        if not hits:
            every = [v for name in self.maps for v in self.labels(name).values()]
            raise InvalidInputError(
                f"no label {label!r} in any label map of the dataset "
                f"(maps: {', '.join(self.maps) or 'none'}){_close(label, every)}"
            )
        if len(hits) > 1:
            raise InvalidInputError(
                f"label {label!r} is in several maps ({', '.join(hits)}): pass group="
            )
        ((name, ids),) = hits.items()
        return name, ids

    def _image(self, variable: str | None) -> xr.DataArray:
        if variable is None:
            found = [v for v in IMAGE_VARIABLES if v in self._ds.data_vars]
            if not found:
                raise InvalidInputError(
                    "the dataset has no image variable (pet or ct): pass variable="
                )
            variable = found[0]
        if variable not in self._ds.data_vars:
            raise InvalidInputError(f"no variable {variable!r} in the dataset")
        image = self._ds[variable]
        if image.ndim != 3:
            raise InvalidInputError(
                f"{variable} has dims {image.dims}; stats take a (z, y, x) volume"
            )
        return image

    def _on_grid(self, name: str, image: xr.DataArray) -> xr.DataArray:
        seg = self._map(name)
        if seg.dims != image.dims or seg.shape != image.shape:
            raise InvalidInputError(
                f"seg_{name} {dict(seg.sizes)} is not on the grid of {image.name} "
                f"{dict(image.sizes)}"
            )
        return seg

    def _subject(self, subject: str | None) -> str:
        if subject is not None:
            return subject
        source = str(self._ds.encoding.get("source", ""))
        # the store's folder name, as petzarr.cohort.subject.open_subject names a subject
        return layout.store_subject(source)


def _label_table(attrs: Mapping[str, Any]) -> dict[int, str]:
    """``{id: name}`` from a map's ``labels`` attribute, else its CF flags."""
    labels = attrs.get("labels")
    if isinstance(labels, Mapping):
        return {int(k): str(v) for k, v in labels.items()}
    values, meanings = attrs.get("flag_values"), attrs.get("flag_meanings")
    if isinstance(values, Iterable) and isinstance(meanings, str):
        return {int(v): m for v, m in zip(values, meanings.split(), strict=False)}
    return {}


def _spacing(ds: xr.Dataset, image: xr.DataArray) -> tuple[float, float, float]:
    """Spacing along each dim of ``image`` from evenly spaced coordinates [mm]."""
    spacing = []
    for dim in image.dims:
        if dim not in ds.coords:
            raise InvalidInputError(f"no {dim!r} coordinate [mm]: the voxel size is unknown")
        c = np.asarray(ds[dim].values, np.float64)
        if c.size < 2:
            raise InvalidInputError(
                f"a single voxel along {dim!r}: its spacing is unknown (select a range, "
                "not one slice)"
            )
        step = float(c[-1] - c[0]) / (c.size - 1)
        if step == 0 or not np.allclose(np.diff(c), step, rtol=1e-6, atol=1e-6):
            raise InvalidInputError(f"the {dim!r} coordinates are not evenly spaced")
        spacing.append(abs(step))
    return spacing[0], spacing[1], spacing[2]


def _close(label: object, names: Iterable[str]) -> str:
    """``"; did you mean ...?"`` for a misspelt label, else nothing."""
    near = difflib.get_close_matches(str(label), list(names), n=3)
    return f"; did you mean {', '.join(map(repr, near))}?" if near else ""


xr.register_dataset_accessor("petzarr")(PetzarrAccessor)
