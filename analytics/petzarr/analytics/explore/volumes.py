"""A cohort's images at view resolution: the pyramid level that fits, read lazily and
cached per subject (the PET as its MIP, CT and label slices one at a time)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from petzarr.analytics.jobs.norms import subject_norms
from petzarr.analytics.tables.suv_norms import SUV
from petzarr.cohort import layout, open_cohort
from petzarr.cohort.grid import Grid
from petzarr.cohort.subject import ImageGroup, SubjectStore, open_subject

VIEW_SIZE = 256  # in-plane voxels a view needs: a ~500 px figure shows no more


def view_level(group: ImageGroup, view_size: int = VIEW_SIZE) -> tuple[int, ImageGroup]:
    """The coarsest level (index, group) of ``group`` still ``view_size`` voxels across."""
    ome: Any = group.group.attrs.asdict().get("ome", {})
    sets = ome.get("multiscales", [{}])[0].get("datasets", [])  # [0] is level 0 itself
    levels = [(0, group)]
    for k, d in enumerate(sets[1:], start=1):  # levels/<k>/ct: the image and its coordinates
        node = group.group.get(d["path"].rsplit("/", 1)[0])
        if isinstance(node, zarr.Group):
            levels.append((k, ImageGroup(group.subject, group.name, node)))
    fits = [(k, g) for k, g in levels if min(g.image.shape[-2:]) >= view_size]
    return fits[-1] if fits else levels[0]


@dataclass(frozen=True)
class PetView:
    """What the views need of a subject's PET: its MIP, colour top, unit, level and scale."""

    mip: np.ndarray  # (z, 1, x): the maximum along y, as coronal_mip takes a volume
    top: float  # the 99.9th percentile: the colour scale's top
    unit: str  # "SUV" when the metadata give the SUV denominator, else the stored units
    per_unit: float  # stored value of one ``unit``
    grid: Grid


class SubjectVolumes:
    """One cohort's images at view resolution, read on demand and cached per subject."""

    def __init__(self, cohort_url: str, storage_options: dict[str, Any] | None = None,
                 view_size: int = VIEW_SIZE) -> None:  # fmt: skip
        self.cohort = open_cohort(cohort_url, storage_options=storage_options)
        self.view_size = view_size
        # per instance, not on the methods: one cache per cohort, freed with it; the PET is
        # kept as its MIP, slices are read one at a time (a whole 440^2 PET is ~0.5 GB)
        self.store = functools.lru_cache(maxsize=16)(self._store)
        self.levels = functools.lru_cache(maxsize=16)(self._levels)
        self.pet = functools.lru_cache(maxsize=16)(self._pet)
        self.slice = functools.lru_cache(maxsize=512)(self._slice)
        self.label_slice = functools.lru_cache(maxsize=256)(self._label_slice)

    def _store(self, subject: str) -> SubjectStore:
        return open_subject(self.cohort.store_url(subject),
                            storage_options=self.cohort.storage_options)  # fmt: skip

    def _levels(self, subject: str) -> dict[str, tuple[int, ImageGroup, ImageGroup]]:
        """Per group: the view level's index, that level, and level 0 (its labels' home)."""
        groups = {g: self.store(subject).group(g) for g in ("ct", "pet")}
        return {g: (*view_level(group, self.view_size), group) for g, group in groups.items()}

    def _pet(self, subject: str) -> PetView:
        """The PET at view level, read whole once: its MIP and colour scale, in SUV when the
        metadata allow (as ``petzarr qc`` shows it)."""
        _, pet, base = self.levels(subject)["pet"]
        row = self.cohort.index[self.cohort.index["subject"] == subject].iloc[0].to_dict()
        norms = subject_norms(self.store(subject), index_row=row)
        per_suv = float(norms.get(SUV, np.nan)) / float(norms.get("PET to Bq/mL", np.nan))
        suv = bool(np.isfinite(per_suv) and per_suv > 0)
        per_unit = per_suv if suv else 1.0
        volume = np.nan_to_num(np.asarray(pet.image[...], np.float32) / per_unit, nan=0.0,
                               posinf=0.0, neginf=0.0)  # fmt: skip
        top = float(np.percentile(volume, 99.9)) or 1.0
        unit = "SUV" if suv else str(base.image.attrs.get("units", "Bq/mL"))
        return PetView(volume.max(axis=1, keepdims=True), top, unit, per_unit, pet.grid)

    def _slice(self, group: str, subject: str, k: int) -> np.ndarray:
        """Axial slice ``k`` of the ``ct`` or ``pet`` image at its view level."""
        return np.asarray(self.levels(subject)[group][1].image[k], np.float32)

    def _label_slice(self, subject: str, name: str, k: int) -> np.ndarray | None:
        """Slice ``k`` of label map ``name`` at the CT's view level (None: no such map)."""
        level, _, base = self.levels(subject)["ct"]
        if name not in base.map_names:
            return None
        if level == 0:
            return np.asarray(base.label_map(name)[k])
        # OME image-labels: level k of seg_<map> is labels/seg_<map>/<k> beside level 0
        key = f"{layout.LABELS_GROUP}/{layout.SEG_PREFIX}{layout.group_name(name)}/{level}"
        node = base.group.get(key)
        return np.asarray(node[k]) if isinstance(node, zarr.Array) else None

    def label_ids(self, subject: str, name: str) -> dict[str, int]:
        """``{name: id}`` of a CT label map of a subject (empty: no such map)."""
        base = self.levels(subject)["ct"][2]
        return {} if name not in base.map_names else {
            n: v for v, n in base.label_names(name).items()}  # fmt: skip


def cohort_volumes(
    cohort_url: str, storage_options: dict[str, Any] | None = None
) -> SubjectVolumes:
    """The reader of a cohort's images, one per cohort, shared by every browser session."""
    return _volumes(cohort_url, json.dumps(storage_options or {}, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _volumes(cohort_url: str, options: str) -> SubjectVolumes:
    return SubjectVolumes(cohort_url, json.loads(options) or None)
