"""Building one subject's store at its new, run-unique URL: every group, array and attribute.

Order of work:

1. sidecars: the static PET's fields join the subject's metadata; the dynamic series'
   header is read and its frame count checked against its sidecar's frame times, so a bad
   series fails the subject before any voxel is written;
2. CT, PET and each segmentation — written on the CT grid, resampled once onto the PET
   grid and the dynamic grid — then any extra images, each on its own grid. The next
   volume is read and gunzipped in a background thread while the current one is written;
   each static image's pyramid and each map's OME image-label
   (:mod:`petzarr.convert.pyramid`) are written by another, behind level 0 (which leaves
   a core idle a third of the time), one volume behind at most: so at most three volumes
   are in memory at once;
3. the dynamic series, streamed slab by slab into ``pet_dynamic`` (a few slabs in memory).

Then :func:`seal_store`, once the store is verified, writes the root attributes and the
consolidated metadata. Nothing here knows about verification or publication: see
:mod:`petzarr.convert.writer`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import zarr

from petzarr.cohort import layout
from petzarr.cohort.config import get_float, get_int
from petzarr.cohort.errors import GridMismatchError, InvalidInputError
from petzarr.cohort.executor import task_threads
from petzarr.cohort.format import group_attrs, label_attrs, subject_attrs, write_nifti_header
from petzarr.cohort.metadata import SourceFile, plain_value
from petzarr.cohort.storage import zarr_store
from petzarr.cohort.zarr_io import Stored, write_array
from petzarr.convert.bids import frame_times, metadata_fields, read_sidecar
from petzarr.convert.dynamic import (
    DynamicSeries,
    create_dynamic_group,
    open_series,
    stream_frames,
)
from petzarr.convert.label_values import label_values, unnamed_labels
from petzarr.convert.nifti import Grid, NiftiVolume, read_nifti
from petzarr.convert.plan import SubjectSource, SubjectTask
from petzarr.convert.pyramid import level_grids, write_image_levels, write_label_image
from petzarr.convert.resample import resample_nearest

__all__ = ["StagedStore", "input_files", "pet_units", "seal_store", "write_store"]

SIDECAR_PREFIX = "sidecar_"


@dataclass(frozen=True)
class StagedStore:
    """What :func:`write_store` wrote: the index row, sources, metadata, each array's CRC32."""

    row: dict[str, Any]
    sources: dict[str, SourceFile]
    metadata: dict[str, Any]
    crcs: dict[str, Stored]  # "group/array" -> the CRC32 of each chunk stored
    warnings: tuple[str, ...] = ()  # what converted but deserves a look (unnamed labels)


def input_files(task: SubjectTask) -> dict[str, str | None]:
    """Every file the subject's store is made from, by role (``None``: missing).

    Roles: ``ct``, ``pet``, ``seg_<group>``, ``pet_dynamic``, ``sidecar_<image role>``,
    and each extra image's group name when ``task.options.extra_images``.
    """
    src = task.source
    files: dict[str, str | None] = {"ct": src.ct, "pet": src.pet}
    files |= {layout.SEG_PREFIX + g: u for g, u in src.segs.items()}
    if src.pet_dynamic:
        files[layout.PET_DYNAMIC_GROUP] = src.pet_dynamic
    files |= {SIDECAR_PREFIX + role: u for role, u in src.sidecars.items() if role in files}
    if task.options.extra_images:
        files |= src.images
    return files


def write_store(task: SubjectTask, url: str) -> StagedStore:
    """Write the subject's whole store at ``url`` (a fresh location); see the module doc."""
    src = task.source
    root = zarr.open_group(zarr_store(url, task.dest_options), mode="w", zarr_format=3)
    crcs: dict[str, Stored] = {}
    sources: dict[str, SourceFile] = {}
    metadata = _metadata(task, sources)
    dynamic = _start_dynamic(task, root, metadata, sources)

    seg_dtype = {
        g: np.uint8 if (t := task.labels.get(g)) and max(t) <= 255 else np.uint16 for g in src.segs
    }
    reads: list[tuple[str, str, Any]] = [
        ("ct", str(src.ct), np.int16),
        ("pet", str(src.pet), np.float32),
    ]
    reads += [(layout.SEG_PREFIX + g, str(uri), seg_dtype[g]) for g, uri in src.segs.items()]
    if task.options.extra_images:
        reads += [(name, uri, None) for name, uri in src.images.items()]

    notes: list[str] = []
    if not metadata:
        notes.append(
            "no metadata for this subject (no row in the source's details spreadsheet or "
            "participants table): its SUV and SUL will be NaN"
        )
    threads = task_threads(task.options.write_threads)
    with _Behind() as behind:
        for role, uri, vol, values in _read_ahead(task, reads):
            sources[role] = vol.source
            if role == "ct":
                ct_grid = vol.grid
                ct_group = _image_group(root, layout.CT_GROUP, vol, task, crcs, behind, units="HU")
            elif role == "pet":
                pet_grid = vol.grid
                units = pet_units(metadata)
                pet_group = _image_group(
                    root, layout.PET_GROUP, vol, task, crcs, behind, units=units
                )
            elif role.startswith(layout.SEG_PREFIX):
                _check_same_grid(vol.grid, ct_grid, uri, src)
                group = role.removeprefix(layout.SEG_PREFIX)
                unnamed = unnamed_labels(values, task.labels.get(group, {}))
                if unnamed:
                    notes.append(
                        f"{uri}: label value(s) {', '.join(map(str, unnamed[:10]))} are not named "
                        f"in labels.json group {group!r}; their statistics will have no name"
                    )
                table = task.labels.get(group, {})
                attrs = label_attrs(group, table)
                crcs[f"ct/{role}"] = _write(ct_group, role, vol.data, attrs, task)
                _label_image(ct_group, role, vol.data, table, ct_grid, task, behind, crcs)
                targets = [(layout.PET_GROUP, pet_group, pet_grid)]
                if dynamic is not None:
                    targets.append((layout.PET_DYNAMIC_GROUP, dynamic.group, dynamic.series.grid))
                for name, target, grid in targets:
                    on_grid = resample_nearest(vol.data, ct_grid, grid, threads=threads)
                    crcs[f"{name}/{role}"] = _write(target, role, on_grid, attrs, task)
                    if name != layout.PET_DYNAMIC_GROUP:  # the 4-D series has no pyramid yet
                        _label_image(target, role, on_grid, table, grid, task, behind, crcs)
                    del on_grid
            else:  # an extra image, its own group on its own grid
                if vol.data.ndim != 3:
                    raise InvalidInputError(
                        f"subject {src.subject}: {uri} is {vol.data.ndim}D; extra images must be 3D"
                    )
                array = role.split("_", 1)[0]
                _image_group(root, role, vol, task, crcs, behind, units=None, array=array)
            del vol
        for written in behind.results():
            crcs |= written

    if dynamic is not None:  # last: the series streams through on its own
        crc, source = stream_frames(
            dynamic.array,
            dynamic.series,
            task.source_options,
            allow_oblique=task.options.allow_oblique,
            threads=task_threads(task.options.write_threads),
        )
        crcs[f"{layout.PET_DYNAMIC_GROUP}/{dynamic.array.basename}"] = crc
        sources[layout.PET_DYNAMIC_GROUP] = source

    dynamic_shape = dynamic.series.shape if dynamic else None
    row = _index_row(task, metadata, ct_grid, pet_grid, dynamic_shape)
    return StagedStore(row, sources, metadata, crcs, tuple(notes))


def seal_store(task: SubjectTask, url: str, staged: StagedStore) -> None:
    """Write the root attributes and consolidate the metadata: the store's last write.

    Done after verification, so a store whose root names its ``index_row`` is complete
    and verified (a re-run may adopt it: :func:`petzarr.convert.writer.convert_subject`).
    """
    root = zarr.open_group(zarr_store(url, task.dest_options), mode="r+")
    attrs = subject_attrs(
        task.subject, sources=staged.sources, metadata=staged.metadata, index_row=staged.row
    )
    root.attrs.update(attrs)
    with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec yet; we want it
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(root.store)


@dataclass(frozen=True)
class _Dynamic:
    """The dynamic series of a subject, its group laid out, its frames still to stream."""

    series: DynamicSeries
    group: zarr.Group
    array: zarr.Array


def _metadata(task: SubjectTask, sources: dict[str, SourceFile]) -> dict[str, Any]:
    """The subject's metadata row, then its static PET sidecar's fields (BIDS names)."""
    src = task.source
    metadata = dict(src.metadata)
    if "pet" in src.sidecars:
        sidecar = read_sidecar(src.sidecars["pet"], task.source_options, subject=src.subject)
        sources[SIDECAR_PREFIX + "pet"] = sidecar.source
        for key, value in metadata_fields(sidecar.fields).items():
            metadata.setdefault(key, value)  # participants.tsv first, then the sidecar
    return metadata


def _start_dynamic(
    task: SubjectTask,
    root: zarr.Group,
    metadata: dict[str, Any],
    sources: dict[str, SourceFile],
) -> _Dynamic | None:
    """Check the dynamic series against its sidecar and lay out ``pet_dynamic``."""
    src = task.source
    if not src.pet_dynamic:
        return None
    where = src.sidecars.get(layout.PET_DYNAMIC_GROUP)
    if not where:
        raise InvalidInputError(
            f"subject {src.subject}: {src.pet_dynamic} has no JSON sidecar, so its frame "
            "times are unknown"
        )
    sidecar = read_sidecar(where, task.source_options, subject=src.subject)
    sources[SIDECAR_PREFIX + layout.PET_DYNAMIC_GROUP] = sidecar.source
    times = frame_times(sidecar.fields, where=f"subject {src.subject}: sidecar {where}")
    series = open_series(
        src.pet_dynamic,
        task.source_options,
        subject=src.subject,
        times=times,
        allow_oblique=task.options.allow_oblique,
    )
    group, array = create_dynamic_group(
        root,
        series,
        times,
        units=pet_units(metadata | metadata_fields(sidecar.fields)),  # its own Units first
        sidecar=sidecar.fields,
        slabs=task.options.chunk_slabs,
    )
    return _Dynamic(series=series, group=group, array=array)


def pet_units(metadata: dict[str, Any]) -> str:
    """The PET's units as the source states them (e.g. ``CNTS``), else ``Bq/mL``.

    NIfTI has no field for intensity units, so a spreadsheet or sidecar column is the only
    witness; analytics refuse SUVs for anything not in Bq/mL.

    >>> pet_units({"Units": "Bq/mL"}), pet_units({"PET Units": "CNTS"}), pet_units({})
    ('Bq/mL', 'CNTS', 'Bq/mL')
    """
    for key in layout.PET_UNITS_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "Bq/mL"


def _write(
    group: zarr.Group, name: str, data: np.ndarray, attrs: dict[str, Any], task: SubjectTask
) -> Stored:
    return write_array(
        group,
        name,
        data,
        dims=layout.SPATIAL_DIMS,
        attrs=attrs,
        slabs=task.options.chunk_slabs,
        threads=task_threads(task.options.write_threads),
    )


def _read_ahead(
    task: SubjectTask, reads: list[tuple[str, str, Any]]
) -> Iterator[tuple[str, str, NiftiVolume, Any]]:
    """Yield ``(role, uri, volume, label values)`` in order (values of segmentations only),
    reading the next file while the caller works.

    Gunzip (ISA-L) and the label scan release the GIL, so reading overlaps with
    compressing the previous volume.
    """

    def read(item: tuple[str, str, Any]) -> tuple[NiftiVolume, Any]:
        role, uri, dtype = item
        opts = task.source_options
        vol = read_nifti(
            uri, opts, dtype=dtype, allow_oblique=task.options.allow_oblique, volume=True
        )
        return vol, label_values(vol.data) if role.startswith(layout.SEG_PREFIX) else None

    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(read, reads[0])
        for i, (role, uri, _) in enumerate(reads):
            vol, values = pending.result()
            if i + 1 < len(reads):
                pending = reader.submit(read, reads[i + 1])
            yield role, uri, vol, values
            del vol


class _Behind:
    """Pyramid work on a thread of its own, at most ``depth`` jobs behind the level-0 writes
    (so memory stays bounded); :meth:`results` waits for every job, in order.

    A job returns the chunks' CRC32 of the arrays it wrote, by path. Every job is a
    separate set of arrays, and the OME ``labels`` list is only updated here, one job at a
    time.
    """

    def __init__(self, depth: int = 1) -> None:
        self.depth = depth
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="pyramid")
        self.jobs: list[Future[Any]] = []

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        if len(self.jobs) >= self.depth:
            self.jobs[-self.depth].result()  # an error surfaces now, not after every write
        self.jobs.append(self.pool.submit(fn, *args, **kwargs))

    def results(self) -> Iterator[dict[str, Stored]]:
        return (job.result() for job in self.jobs)

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, *exc: object) -> None:
        # on an error too: nothing writes into the store once write_store has returned
        self.pool.shutdown(wait=True, cancel_futures=True)


def _image_group(
    root: zarr.Group,
    name: str,
    vol: NiftiVolume,
    task: SubjectTask,
    crcs: dict[str, Stored],
    behind: _Behind,
    *,
    units: str | None,
    array: str | None = None,
) -> zarr.Group:
    """Create group ``name`` with its image array, 1-D coordinates, NIfTI header and pyramid."""
    grid = vol.grid
    image = array or layout.IMAGE_ARRAY[name]
    levels = _levels(grid, task)
    group = root.create_group(
        name, attributes=group_attrs(image, grid, levels=[g for g, _ in levels])
    )
    attrs = {"units": units} if units else {}
    crcs[f"{name}/{image}"] = _write(group, image, vol.data, attrs, task)
    for dim, values in grid.coords().items():
        write_array(group, dim, values, dims=(dim,), attrs={"units": "mm", "axis": dim.upper()})
    write_nifti_header(group, vol.header)
    if levels:
        behind.submit(_image_levels, group, image, vol.data, levels, task)
    return group


def _image_levels(
    group: zarr.Group,
    image: str,
    data: np.ndarray,
    levels: list[tuple[Grid, tuple[int, int, int]]],
    task: SubjectTask,
) -> dict[str, Stored]:
    threads = task_threads(task.options.write_threads)
    written = write_image_levels(
        group, image, data, levels, slabs=task.options.chunk_slabs, threads=threads
    )
    return {f"{group.basename}/{path}": crc for path, crc in written.items()}


def _levels(grid: Grid, task: SubjectTask) -> list[tuple[Grid, tuple[int, int, int]]]:
    if not task.options.pyramid:
        return []
    return level_grids(grid, get_int("pyramid.min_size"))


def _label_image(
    group: zarr.Group,
    role: str,
    data: np.ndarray,
    table: dict[int, str],
    grid: Grid,
    task: SubjectTask,
    behind: _Behind,
    crcs: dict[str, Stored],
) -> None:
    """The OME image-label of a map just written into ``group`` (with the pyramid only)."""
    if task.options.pyramid:
        level0 = crcs[f"{group.basename}/{role}"]
        behind.submit(_label_levels, group, role, data, table, grid, level0, task)


def _label_levels(
    group: zarr.Group,
    role: str,
    data: np.ndarray,
    table: dict[int, str],
    grid: Grid,
    level0: Stored,
    task: SubjectTask,
) -> dict[str, Stored]:
    written = write_label_image(
        group, role, data, table, grid, _levels(grid, task), level0,
        slabs=task.options.chunk_slabs, threads=task_threads(task.options.write_threads),
    )  # fmt: skip
    return {f"{group.basename}/{path}": crc for path, crc in written.items()}


def _check_same_grid(seg: Grid, ct: Grid, uri: str, src: SubjectSource) -> None:
    atol = get_float("convert.grid_atol_mm")
    same = seg.shape == ct.shape and np.allclose(
        seg.spacing + seg.origin, ct.spacing + ct.origin, atol=atol, rtol=0
    )
    if not same:
        raise GridMismatchError(
            f"subject {src.subject}: segmentation {uri} is on grid {seg.shape} spacing "
            f"{seg.spacing} origin {seg.origin}, not its CT's {ct.shape} spacing {ct.spacing} "
            f"origin {ct.origin}; segmentations must be on the CT grid"
        )


def _index_row(
    task: SubjectTask,
    metadata: dict[str, Any],
    ct: Grid,
    pet: Grid,
    dynamic_shape: tuple[int, ...] | None,
) -> dict[str, Any]:
    src = task.source
    row: dict[str, Any] = {
        "subject": src.subject,
        "store": layout.subject_store(src.subject, task.run_id),
        "format_version": layout.FORMAT_VERSION,
        "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ct_shape": "x".join(map(str, ct.shape)),
        "pet_shape": "x".join(map(str, pet.shape)),
        "groups": ",".join(sorted(src.segs)),
    }
    if dynamic_shape is not None:
        row["pet_dynamic_shape"] = "x".join(map(str, dynamic_shape))
    for key, value in metadata.items():
        row.setdefault(key, plain_value(value))
    return row
