"""Converting one subject: the whole per-subject job in one plain function.

:func:`convert_subject` reads a subject's NIfTI files and writes ``subjects/<id>.zarr``:
staged under ``staging/``, read back and checked, then moved into place. It raises on any
problem; :func:`run_task` wraps it into a :class:`SubjectResult` so an executor can carry
on with the other subjects. Nothing here knows about Dask.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import zarr
from fsspec.implementations.local import LocalFileSystem

from petzarr.cohort import layout
from petzarr.cohort.errors import (
    GridMismatchError,
    MissingSourceError,
    PetZarrError,
    VerificationError,
)
from petzarr.cohort.format import group_attrs, label_attrs, subject_attrs, write_nifti_header
from petzarr.cohort.metadata import SourceFile, plain_value
from petzarr.cohort.storage import filesystem, join, zarr_store
from petzarr.cohort.zarr_io import array_crc, write_array
from petzarr.convert.nifti import Grid, NiftiVolume, read_nifti, source_file
from petzarr.convert.plan import SubjectTask
from petzarr.convert.resample import resample_nearest

__all__ = ["SubjectResult", "convert_subject", "run_task"]

GRID_ATOL_MM = 1e-3


@dataclass(frozen=True)
class SubjectResult:
    """The outcome of one subject: ``converted``, ``skipped`` or ``failed`` (with the error)."""

    subject: str
    status: str
    row: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    bytes_read: int = 0


def run_task(task: SubjectTask) -> SubjectResult:
    """Convert one subject, turning its failure into a ``failed`` result (never raising)."""
    start = time.perf_counter()
    try:
        result = convert_subject(task)
    except (PetZarrError, OSError, ValueError) as exc:
        return SubjectResult(
            task.subject, "failed", error=_describe(exc), seconds=time.perf_counter() - start
        )
    except Exception as exc:  # a bug, not bad input: keep the traceback for the report
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return SubjectResult(
            task.subject,
            "failed",
            error=f"unexpected {detail}",
            seconds=time.perf_counter() - start,
        )
    return result


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if isinstance(exc, PetZarrError) else f"{type(exc).__name__}: {text}"


def convert_subject(task: SubjectTask) -> SubjectResult:
    """Convert one subject into ``<dest>/subjects/<id>.zarr`` and return its index row.

    Skips the subject (status ``skipped``) when a published store exists whose recorded
    sources match the current ones, unless ``task.options.overwrite``.
    """
    start = time.perf_counter()
    src = task.source
    missing = [role for role in ("ct", "pet") if not getattr(src, role)]
    missing += [f"segmentation {g}" for g, uri in src.segs.items() if not uri]
    if missing:
        raise MissingSourceError(f"subject {src.subject}: no {', '.join(missing)} in the source")
    inputs = {"ct": src.ct, "pet": src.pet} | {
        layout.SEG_PREFIX + g: u for g, u in src.segs.items()
    }
    current = {role: source_file(str(uri), task.source_options) for role, uri in inputs.items()}

    final = join(task.dest, layout.subject_store(src.subject))
    if not task.options.overwrite:
        published = _published_attrs(final, task.dest_options)
        if published is not None and _same_sources(published, current):
            return SubjectResult(src.subject, "skipped", row=published["index_row"])

    staging = join(task.dest, layout.STAGING, f"{src.subject}.{task.run_id}.zarr")
    fs, staging_path = filesystem(staging, task.dest_options)
    if fs.exists(staging_path):
        fs.rm(staging_path, recursive=True)
    try:
        row, sources, crcs = _write_staged(task, staging)
        _verify(staging, task, crcs)
    except BaseException:
        if fs.exists(staging_path):
            fs.rm(staging_path, recursive=True)  # never leave a half-written store behind
        raise
    _publish(staging, final, task)
    return SubjectResult(
        src.subject,
        "converted",
        row=row,
        seconds=time.perf_counter() - start,
        bytes_read=sum(s.size for s in sources.values()),
    )


def _write_staged(
    task: SubjectTask, staging: str
) -> tuple[dict[str, Any], dict[str, SourceFile], dict[str, int]]:
    """Write the whole store at ``staging``; return its index row, sources and array CRCs.

    Volumes are processed in turn — CT, PET, then each segmentation (written on the CT
    grid, resampled once onto the PET grid, written again) — while the next one is read
    and gunzipped in a background thread: at most two volumes are in memory at once.
    """
    src = task.source
    root = zarr.open_group(zarr_store(staging, task.dest_options), mode="w", zarr_format=3)
    crcs: dict[str, int] = {}
    sources: dict[str, SourceFile] = {}
    seg_dtype = {
        g: np.uint8 if (t := task.labels.get(g)) and max(t) <= 255 else np.uint16 for g in src.segs
    }
    reads = [("ct", str(src.ct), np.int16), ("pet", str(src.pet), np.float32)]
    reads += [(layout.SEG_PREFIX + g, str(uri), seg_dtype[g]) for g, uri in src.segs.items()]

    for role, uri, vol in _read_ahead(task, reads):
        sources[role] = vol.source
        if role == "ct":
            ct_grid = vol.grid
            ct_group = _image_group(root, layout.CT_GROUP, vol, task, crcs)
        elif role == "pet":
            pet_grid = vol.grid
            pet_group = _image_group(root, layout.PET_GROUP, vol, task, crcs)
        else:
            _check_same_grid(vol.grid, ct_grid, uri, src)
            group = role.removeprefix(layout.SEG_PREFIX)
            attrs = label_attrs(group, task.labels.get(group, {}))
            crcs[f"ct/{role}"] = _write(ct_group, role, vol.data, attrs, task)
            on_pet = resample_nearest(vol.data, ct_grid, pet_grid)
            crcs[f"pet/{role}"] = _write(pet_group, role, on_pet, attrs, task)
        del vol

    row = _index_row(task, ct_grid, pet_grid)
    root.attrs.update(
        subject_attrs(src.subject, sources=sources, metadata=src.metadata, index_row=row)
    )
    with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec yet; we want it
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(root.store)
    return row, sources, crcs


def _write(
    group: zarr.Group, name: str, data: np.ndarray, attrs: dict[str, Any], task: SubjectTask
) -> int:
    return write_array(
        group,
        name,
        data,
        dims=layout.SPATIAL_DIMS,
        attrs=attrs,
        slabs=task.options.chunk_slabs,
        threads=task.options.write_threads,
    )


def _read_ahead(
    task: SubjectTask, reads: list[tuple[str, str, Any]]
) -> Iterator[tuple[str, str, NiftiVolume]]:
    """Yield ``(role, uri, volume)`` in order, reading the next file while the caller works.

    Gunzip (ISA-L) releases the GIL, so reading overlaps with compressing the previous volume.
    """

    def read(item: tuple[str, str, Any]) -> NiftiVolume:
        _, uri, dtype = item
        opts = task.source_options
        return read_nifti(uri, opts, dtype=dtype, allow_oblique=task.options.allow_oblique)

    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(read, reads[0])
        for i, (role, uri, _) in enumerate(reads):
            vol = pending.result()
            if i + 1 < len(reads):
                pending = reader.submit(read, reads[i + 1])
            yield role, uri, vol
            del vol


def _image_group(
    root: zarr.Group, name: str, vol: NiftiVolume, task: SubjectTask, crcs: dict[str, int]
) -> zarr.Group:
    """Create group ``name`` with its image array, 1-D coordinates and NIfTI header."""
    grid = vol.grid
    image = layout.IMAGE_ARRAY[name]
    group = root.create_group(name, attributes=group_attrs(image, grid, vol.header))
    attrs = {"units": "HU" if name == layout.CT_GROUP else pet_units(task.source.metadata)}
    crcs[f"{name}/{image}"] = _write(group, image, vol.data, attrs, task)
    for dim, values in grid.coords().items():
        write_array(group, dim, values, dims=(dim,), attrs={"units": "mm", "axis": dim.upper()})
    write_nifti_header(group, vol.header)
    return group


def pet_units(metadata: dict[str, Any]) -> str:
    """The PET's units as the source states them (e.g. ``CNTS``), else ``Bq/mL``.

    NIfTI has no field for intensity units, so a spreadsheet or sidecar column is the only
    witness; analytics refuse SUVs for anything not in Bq/mL.
    """
    for key in layout.PET_UNITS_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "Bq/mL"


def _check_same_grid(seg: Grid, ct: Grid, uri: str, src: Any) -> None:
    same = seg.shape == ct.shape and np.allclose(
        seg.spacing + seg.origin, ct.spacing + ct.origin, atol=GRID_ATOL_MM, rtol=0
    )
    if not same:
        raise GridMismatchError(
            f"subject {src.subject}: segmentation {uri} is on grid {seg.shape} spacing "
            f"{seg.spacing} origin {seg.origin}, not its CT's {ct.shape} spacing {ct.spacing} "
            f"origin {ct.origin}; segmentations must be on the CT grid"
        )


def _index_row(task: SubjectTask, ct: Grid, pet: Grid) -> dict[str, Any]:
    src = task.source
    row: dict[str, Any] = {
        "subject": src.subject,
        "store": layout.subject_store(src.subject),
        "format_version": layout.FORMAT_VERSION,
        "converted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ct_shape": "x".join(map(str, ct.shape)),
        "pet_shape": "x".join(map(str, pet.shape)),
        "groups": ",".join(sorted(src.segs)),
    }
    for key, value in src.metadata.items():
        row.setdefault(key, plain_value(value))
    return row


def _published_attrs(final: str, options: dict[str, Any]) -> dict[str, Any] | None:
    try:
        group = zarr.open_group(zarr_store(final, options, read_only=True), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        return None
    attrs = group.attrs.get("petzarr")
    if not isinstance(attrs, dict):
        return None
    return attrs if "sources" in attrs and "index_row" in attrs else None


def _same_sources(published: dict[str, Any], current: dict[str, SourceFile]) -> bool:
    recorded = {role: SourceFile.from_dict(d) for role, d in published["sources"].items()}
    return recorded.keys() == current.keys() and all(
        recorded[role].same_source(current[role]) for role in current
    )


def _verify(staging: str, task: SubjectTask, crcs: dict[str, int]) -> None:
    """Read the staged store back and compare every image and label array's CRC32."""
    root = zarr.open_group(
        zarr_store(staging, task.dest_options, read_only=True), mode="r", use_consolidated=True
    )
    for path, expected in crcs.items():
        array = root[path]
        if not isinstance(array, zarr.Array):
            raise VerificationError(
                f"subject {task.subject}: {path} is missing from the staged store"
            )
        found = array_crc(array)
        if found != expected:
            raise VerificationError(
                f"subject {task.subject}: {path} read back differently from what was written "
                f"(crc32 {found:#010x} != {expected:#010x}); the store was not published"
            )


def _publish(staging: str, final: str, task: SubjectTask) -> None:
    """Move the verified store into place, replacing an older version of the subject."""
    fs, staging_path = filesystem(staging, task.dest_options)
    _, final_path = filesystem(final, task.dest_options)
    fs.invalidate_cache()  # zarr wrote through another handle: listings here may be stale
    if fs.exists(final_path):
        fs.rm(final_path, recursive=True)
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(final_path.rsplit("/", 1)[0], exist_ok=True)
        fs.mv(staging_path, final_path, recursive=True)  # one rename
    else:  # object stores have no rename: copy every object, then drop the staged ones
        files = fs.find(staging_path)
        fs.copy(files, [final_path + f.removeprefix(staging_path) for f in files])
        fs.rm(staging_path, recursive=True)
    fs.invalidate_cache()
    if not fs.exists(f"{final_path}/zarr.json"):
        raise PetZarrError(f"subject {task.subject}: could not move {staging} to {final}")
