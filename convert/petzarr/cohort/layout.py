"""Names of cohort format version 2: where things live in a cohort and in a subject store.

This module is the format's vocabulary; ``docs/format.md`` is its specification.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

FORMAT_VERSION = 2  # 2: run-unique store paths, the index as commit point

INDEX = "index.parquet"
LABELS = "labels.json"
REPORTS = "reports"
SUBJECTS = "subjects"
STAGING = "staging"  # format 1 only: where stores were built before a move

#: Index columns the converter writes about the store itself; every other column is the
#: subject's metadata.
BOOKKEEPING_COLUMNS = frozenset(
    {
        "subject",
        "store",
        "format_version",
        "converted_at",
        "ct_shape",
        "pet_shape",
        "pet_dynamic_shape",
        "groups",
    }
)

# Groups of a subject store and the image array each holds.
CT_GROUP = "ct"
PET_GROUP = "pet"
PET_DYNAMIC_GROUP = "pet_dynamic"
IMAGE_ARRAY = {CT_GROUP: "ct", PET_GROUP: "pet", PET_DYNAMIC_GROUP: "pet"}
SEG_PREFIX = "seg_"
LEVELS_GROUP = "levels"  # <image group>/levels/<k>/: pyramid level k >= 1 of the image
LABELS_GROUP = "labels"  # <image group>/labels/<seg_name>/<k>: OME-Zarr image-labels
NIFTI_ARRAY = "nifti"
SPATIAL_DIMS = ("z", "y", "x")

# metadata columns that state the PET's units (NIfTI itself cannot)
PET_UNITS_KEYS = ("Units", "PET Units", "Unit", "units", "Pixel Units")

CHUNK_SLABS = 64  # axial slices per chunk
# benchmarks/codecs.py: zstd-2 stores what zstd-3 does at 1.6x its encode speed (docs/format.md)
BLOSC_CNAME: Final = "zstd"
BLOSC_CLEVEL: Final = 2
BLOSC_SHUFFLE: Final = "shuffle"


@dataclass(frozen=True)
class SegGroup:
    """One segmentation group: its ENHANCE.PET folder, its MOOSE model, its store name."""

    folder: str
    model: str
    name: str

    @property
    def array(self) -> str:
        return SEG_PREFIX + self.name


# ENHANCE.PET 1.6k's seven CT segmentation groups, in the dataset's order.
ENHANCE_GROUPS: tuple[SegGroup, ...] = tuple(
    SegGroup(folder, "clin_ct_" + name, name)
    for folder, name in [
        ("Body-Composition", "body_composition"),
        ("Cardiac", "cardiac"),
        ("Muscles", "muscles"),
        ("Organs", "organs"),
        ("Peripheral-Bones", "peripheral_bones"),
        ("Ribs", "ribs"),
        ("Vertebrae", "vertebrae"),
    ]
)


def group_name(key: str) -> str:
    """Normalise a group key to its store name.

    Accepts the ENHANCE folder (``Peripheral-Bones``), the MOOSE model name
    (``clin_ct_peripheral_bones``), the store array (``seg_peripheral_bones``) or the
    name itself, in any case.

    >>> group_name("Body-Composition"), group_name("clin_ct_cardiac"), group_name("seg_ribs")
    ('body_composition', 'cardiac', 'ribs')
    """
    k = key.strip()
    for g in ENHANCE_GROUPS:
        if k in (g.folder, g.model, g.array, g.name):
            return g.name
    k = k.lower()
    for prefix in ("clin_ct_", SEG_PREFIX):
        k = k.removeprefix(prefix)
    return re.sub(r"[^0-9a-z]+", "_", k).strip("_")


#: What subject ids and group names may be: they become parts of store paths, so never
#: a path of their own (no ``/``, no ``..``, nothing hidden); at most 128 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def invalid_names(names: Iterable[str]) -> list[str]:
    """The names that :data:`NAME_PATTERN` refuses, in order.

    >>> invalid_names(["0001", "sub-002", "a.b_c", "../escape", ".hidden", "a/b", ""])
    ['../escape', '.hidden', 'a/b', '']
    """
    return [n for n in names if not NAME_PATTERN.fullmatch(str(n))]


def subject_store(subject: str, run_id: str) -> str:
    """Path, relative to the cohort root, of the store run ``run_id`` writes for ``subject``.

    Every run writes a subject afresh to a path of its own, so publishing is one index
    write, never a copy; the index's ``store`` column says which version is published.

    >>> subject_store("0001", "20261207T061720161488Z")
    'subjects/0001/20261207T061720161488Z.zarr'
    """
    return f"{SUBJECTS}/{subject}/{run_id}.zarr"


def subject_versions(subject: str) -> str:
    """The folder, relative to the cohort root, of every version of a subject's store."""
    return f"{SUBJECTS}/{subject}"


def version_run(path: str) -> str:
    """The run id of a store path ``.../<run>.zarr`` of format 2, else ``""``.

    >>> version_run("subjects/0001/20261207T061720161488Z.zarr"), version_run("subjects/0001.zarr")
    ('20261207T061720161488Z', '')
    """
    parts = path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-3] != SUBJECTS or not parts[-1].endswith(".zarr"):
        return ""
    return parts[-1].removesuffix(".zarr")


def store_subject(path: str) -> str:
    """The subject id a store path names: ``subjects/<id>/<run>.zarr`` or ``<id>.zarr``.

    >>> store_subject("s3://b/subjects/0001/20261207T061720161488Z.zarr"), store_subject("2.zarr")
    ('0001', '2')
    """
    parts = path.rstrip("/").rsplit("/", 2)
    return parts[-2] if version_run(path) else parts[-1].removesuffix(".zarr")
