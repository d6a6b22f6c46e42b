"""The one reader of a converted subject: its groups, arrays, grid, label maps and frames.

Every analytics job opens its subject here, from the store URL its driver resolved once (a
task never reads the cohort's index). Nothing is read beyond root attributes and 1-D
coordinates until asked; arrays are lazy zarr arrays. Errors name the subject and the group.

>>> import tempfile
>>> from petzarr.synth import write_enhance_cohort
>>> from petzarr.cohort.executor import Run
>>> from petzarr.convert.job import convert_cohort
>>> src, dst = tempfile.mkdtemp(), tempfile.mkdtemp()
>>> _ = write_enhance_cohort(src, subjects=1, size="tiny", seed=2)
>>> _ = convert_cohort(src, dst, run=Run(serial=True, progress=False))
>>> from petzarr.cohort import open_cohort
>>> cohort = open_cohort(dst)
>>> store = open_subject(cohort.store_url(cohort.subjects[0]))
>>> pet = store.group("pet")
>>> store.groups, pet.image.shape == pet.grid.shape, pet.map_names[:2]
(['ct', 'pet'], True, ['body_composition', 'cardiac'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.grid import Grid
from petzarr.cohort.storage import zarr_store

__all__ = [
    "Frames",
    "ImageGroup",
    "SubjectStore",
    "label_table",
    "open_subject",
    "read_config",
]


def read_config() -> dict[str, Any]:
    """zarr settings for reading a store's series; pass to ``zarr.config.set`` before opening.

    - ``array.read_missing_chunks`` False: every chunk of a petzarr store exists, so a
      missing one is damage and must fail the subject, not read as zeros.
    - zarr's synchronous ``FusedCodecPipeline`` (where this zarr has it) decoding in the
      calling thread (``max_workers`` 1): the callers read from several Dask threads at
      once, and the default pipeline's one coroutine per chunk costs more CPU than the
      Blosc decode itself on a dynamic series (measured: 2.6 vs 1.7 CPU-s for 1.5 GB).
    """
    config: dict[str, Any] = {"array.read_missing_chunks": False}
    from zarr.core import codec_pipeline

    if hasattr(codec_pipeline, "FusedCodecPipeline"):
        config["codec_pipeline.path"] = "zarr.core.codec_pipeline.FusedCodecPipeline"
        config["codec_pipeline.max_workers"] = 1
    return config


def label_table(array: zarr.Array) -> dict[int, str]:
    """``{id: name}`` of a label map, from its ``labels`` attribute (else CF flags)."""
    attrs = array.attrs.asdict()
    labels = attrs.get("labels")
    if isinstance(labels, Mapping):
        return {int(k): str(v) for k, v in labels.items()}
    values, meanings = attrs.get("flag_values"), attrs.get("flag_meanings")
    if isinstance(values, list) and isinstance(meanings, str):
        return {int(v): m for v, m in zip(values, meanings.split(), strict=False)}
    return {}


@dataclass(frozen=True)
class Frames:
    """Frame times of a dynamic series [s]: start, duration and middle, one value per frame."""

    start_s: NDArray[np.float64]
    duration_s: NDArray[np.float64]
    mid_s: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ImageGroup:
    """One image group of a subject store (``ct``, ``pet`` or ``pet_dynamic``)."""

    subject: str
    name: str
    group: zarr.Group

    def _where(self) -> str:
        return f"subject {self.subject}: {self.name}"

    def array(self, key: str) -> zarr.Array:
        """The member array ``key``, checked to be an array."""
        node = self.group.get(key)
        if not isinstance(node, zarr.Array):
            raise InvalidInputError(f"{self._where()}/{key} is missing or not an array")
        return node

    @cached_property
    def image(self) -> zarr.Array:
        """The group's image (``ct``, ``pet``; ``(t, z, y, x)`` for ``pet_dynamic``)."""
        arr = self.array(layout.IMAGE_ARRAY.get(self.name, self.name))
        want = 4 if self.name == layout.PET_DYNAMIC_GROUP else 3
        if arr.ndim != want:
            dims = "(t, z, y, x)" if want == 4 else "(z, y, x)"
            raise InvalidInputError(f"{self._where()} image must be a {dims} array: {arr.shape}")
        return arr

    @cached_property
    def grid(self) -> Grid:
        """Shape, spacing and origin from the ``z, y, x`` coordinates [mm].

        The one check of a grid: every axis needs two or more evenly spaced voxel centres,
        else the voxel size (and every volume) is unknown.
        """
        spacing, origin = [], []
        for dim in layout.SPATIAL_DIMS:
            c = self._vector(dim)
            if c is None or c.size < 2:
                raise InvalidInputError(
                    f"{self._where()} needs a {dim!r} coordinate of at least two voxel "
                    "centres [mm]: with one voxel along an axis its spacing is unknown"
                )
            step = float(c[-1] - c[0]) / (c.size - 1)
            if step == 0 or not np.allclose(np.diff(c), step, rtol=1e-6, atol=1e-6):
                raise InvalidInputError(
                    f"{self._where()}: the {dim} coordinates are not evenly spaced"
                )
            spacing.append(abs(step))
            origin.append(float(min(c[0], c[-1])))
        shape = self.image.shape[-3:]
        return Grid(
            (int(shape[0]), int(shape[1]), int(shape[2])),
            (spacing[0], spacing[1], spacing[2]),
            (origin[0], origin[1], origin[2]),
        )

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return self.grid.spacing

    @property
    def voxel_ml(self) -> float:
        """Voxel volume [mL]."""
        return self.grid.voxel_volume_ml

    @property
    def map_names(self) -> list[str]:
        """Label map groups in this group (``total``, ``organs``, ...), sorted."""
        return sorted(
            k.removeprefix(layout.SEG_PREFIX)
            for k in self.group.array_keys()
            if k.startswith(layout.SEG_PREFIX)
        )

    def label_map(self, name: str) -> zarr.Array:
        """The label map ``seg_<name>`` on this group's grid (a lazy zarr array)."""
        key = layout.SEG_PREFIX + layout.group_name(name)
        if key not in self.group:
            have = ", ".join(self.map_names) or "none"
            raise InvalidInputError(
                f"subject {self.subject}: no label map {key!r} in its {self.name} group "
                f"(it has: {have})"
            )
        arr = self.array(key)
        if arr.shape != self.image.shape[-3:]:
            raise InvalidInputError(
                f"{self._where()}/{key} is not a label map on the image grid "
                f"{self.image.shape[-3:]}: {arr.shape}"
            )
        return arr

    def label_names(self, name: str) -> dict[int, str]:
        """``{id: name}`` of a label map (from its ``labels`` attribute)."""
        return label_table(self.label_map(name))

    def n_labels(self, name: str) -> int:
        """Label slots of a map: 256 for uint8, else its highest named id + 1."""
        arr = self.label_map(name)
        if np.dtype(arr.dtype).itemsize == 1:
            return 256
        return max(self.label_names(name), default=0) + 1

    @cached_property
    def frames(self) -> Frames:
        """Frame times of the series (``t`` = middle, ``frame_start``, ``frame_duration``)."""
        nt = self.image.shape[0] if self.image.ndim == 4 else 0
        start, duration, mid = (self._vector(k) for k in ("frame_start", "frame_duration", "t"))
        if mid is None and start is not None and duration is not None:
            mid = start + duration / 2
        if start is None and mid is not None and duration is not None:
            start = mid - duration / 2
        if mid is None or start is None or duration is None or not nt:
            raise InvalidInputError(
                f"{self._where()} needs frame times: 't' (frame middle) or 'frame_start', "
                "and 'frame_duration' [s]"
            )
        for what, v in (("t", mid), ("frame_start", start), ("frame_duration", duration)):
            if v.shape != (nt,):
                raise InvalidInputError(
                    f"{self._where()}: {what} has {v.size} values for {nt} frames"
                )
        if not np.all(np.isfinite(mid)) or np.any(np.diff(mid) <= 0):
            raise InvalidInputError(f"{self._where()}: frame middle times must increase strictly")
        return Frames(start, duration, mid)

    def _vector(self, key: str) -> NDArray[np.float64] | None:
        if key not in self.group:
            return None
        arr = self.array(key)
        if arr.ndim != 1:
            raise InvalidInputError(f"{self._where()}/{key} is not 1-D")
        return np.asarray(arr[:], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class SubjectStore:
    """One subject store, opened read-only: its root attributes and its image groups."""

    url: str
    subject: str
    root: zarr.Group
    storage_options: dict[str, Any]

    @property
    def attrs(self) -> dict[str, Any]:
        """The store's ``petzarr`` root attributes (subject, sources, metadata ...)."""
        attrs = self.root.attrs.asdict().get("petzarr", {})
        return dict(attrs) if isinstance(attrs, Mapping) else {}

    @property
    def metadata(self) -> dict[str, Any]:
        """The subject's metadata as the converter read it (empty when none was given)."""
        meta = self.attrs.get("metadata")
        return dict(meta) if isinstance(meta, Mapping) else {}

    @property
    def groups(self) -> list[str]:
        """The image groups present, sorted."""
        return sorted(k for k in self.root.group_keys() if k in layout.IMAGE_ARRAY)

    def has(self, name: str) -> bool:
        return isinstance(self.root.get(name), zarr.Group)

    def group(self, name: str) -> ImageGroup:
        """The image group ``name``; a clear error when the store has none."""
        node = self.root.get(name)
        if not isinstance(node, zarr.Group):
            what = " (no dynamic PET was converted)" if name == layout.PET_DYNAMIC_GROUP else ""
            have = ", ".join(self.groups) or "none"
            raise InvalidInputError(
                f"subject {self.subject}: its store has no {name!r} group{what} (it has: {have})"
            )
        return ImageGroup(self.subject, name, node)


def open_subject(
    store: str | SubjectStore, *, storage_options: Mapping[str, Any] | None = None
) -> SubjectStore:
    """Open the subject store at URL ``store`` (an open :class:`SubjectStore` passes through).

    The subject id is the store's ``petzarr.subject`` attribute, else its path's
    (``subjects/<id>/<run>.zarr``, or ``subjects/<id>.zarr`` in format 1).
    """
    if isinstance(store, SubjectStore):
        return store
    options = dict(storage_options or {})
    name = layout.store_subject(store)
    try:
        root = zarr.open_group(
            zarr_store(store, options, read_only=True),
            mode="r",
            zarr_format=3,
        )
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise InvalidInputError(f"subject {name}: no subject store at {store}") from exc
    attrs = root.attrs.asdict().get("petzarr", {})
    subject = attrs.get("subject") if isinstance(attrs, Mapping) else None
    return SubjectStore(store, str(subject or name), root, options)
