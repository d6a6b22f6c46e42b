"""Publishing subjects: the index is the commit point; old versions go only after it moves.

A run writes each subject to a store path of its own (``subjects/<id>/<run>.zarr``), so
publishing is one index write, on local disk and object stores alike: no rename, no copy.
:func:`commit` writes rows to the index and then deletes the versions it no longer names;
:func:`collect_garbage` (``petzarr gc``) deletes every version the index does not name.
Readers find stores only through the index, so they never see a version come or go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from petzarr.cohort import layout
from petzarr.cohort.index import read_index, update_index
from petzarr.cohort.storage import filesystem, join

__all__ = [
    "collect_garbage",
    "commit",
    "remove_store",
    "sweep_staging",
    "unindexed",
    "versions",
]


def commit(
    dest: str,
    rows: Iterable[Mapping[str, Any]],
    options: Mapping[str, Any],
    run_id: str,
    previous: Mapping[str, str],
) -> list[str]:
    """Write ``rows`` to the index, then delete their subjects' unindexed versions.

    Deleted: the version each row replaces (``previous``: subject -> the store the index
    named before), and versions of earlier runs (or this one) that were never indexed — a
    worker or driver killed before the index caught up. Later runs' versions are left
    alone. Returns the deleted store paths (relative to ``dest``).
    """
    rows = [dict(r) for r in rows]
    if not rows:
        return []
    update_index(dest, rows, options)
    fs, root = filesystem(dest, options)
    fs.invalidate_cache()
    deleted = []
    for row in rows:
        subject, store = row["subject"], row["store"]
        stale = {v for v in versions(dest, subject, options) if layout.version_run(v) <= run_id}
        if previous.get(subject):
            stale.add(previous[subject])  # e.g. a format-1 store, subjects/<id>.zarr
        for path in sorted(stale - {store}):
            if remove_store(fs, f"{root.rstrip('/')}/{path}"):
                deleted.append(path)
    return deleted


def versions(dest: str, subject: str, options: Mapping[str, Any] | None = None) -> list[str]:
    """Every format-2 store of ``subject`` under ``dest``, relative paths, oldest first."""
    folder = layout.subject_versions(subject)
    fs, path = filesystem(join(dest, folder), options)
    try:
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    except FileNotFoundError:
        return []
    return sorted(f"{folder}/{n}" for n in names if n.endswith(".zarr"))


def remove_store(fs: Any, path: str) -> bool:
    """Delete the store at ``path`` (and, on local disk, its emptied subject folder).

    Returns whether there was one.
    """
    fs.invalidate_cache()
    found = fs.exists(path)
    if found:
        fs.rm(path, recursive=True)
    if isinstance(fs, LocalFileSystem) and layout.version_run(path):
        folder = path.rstrip("/").rsplit("/", 1)[0]  # subjects/<id>
        if fs.exists(folder) and not fs.ls(folder):
            fs.rmdir(folder)
    return bool(found)


def unindexed(dest: str, options: Mapping[str, Any] | None = None) -> list[str]:
    """Every store under ``subjects/`` (format 1 or 2) and ``staging/`` the index does not name."""
    fs, root = filesystem(dest, options)
    fs.invalidate_cache()
    indexed = set(read_index(dest, options)["store"])
    found: list[str] = []
    for folder in (layout.SUBJECTS, layout.STAGING):
        path = f"{root.rstrip('/')}/{folder}"
        if not fs.exists(path):
            continue
        for name in (p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)):
            if folder == layout.SUBJECTS and not name.endswith(".zarr"):
                found += versions(dest, name, options)  # format 2: subjects/<id>/<run>.zarr
            else:  # format 1: subjects/<id>.zarr, staging/<id>.<run>.zarr
                found.append(f"{folder}/{name}")
    return sorted(p for p in found if p not in indexed)


def collect_garbage(
    dest: str, options: Mapping[str, Any] | None = None, *, dry_run: bool = False
) -> list[str]:
    """Delete every store the index does not name (``petzarr gc``); return their paths.

    Not while a conversion into ``dest`` runs: its new versions are not indexed yet.
    """
    fs, root = filesystem(dest, options)
    stale = unindexed(dest, options)
    if not dry_run:
        for path in stale:
            remove_store(fs, f"{root.rstrip('/')}/{path}")
    return stale


def sweep_staging(dest: str, options: Mapping[str, Any]) -> list[str]:
    """Delete what format-1 runs left in ``staging/`` (a killed driver or worker); return it.

    Format 2 builds no store there, so everything in it is a leftover.
    """
    fs, root = filesystem(join(dest, layout.STAGING), options)
    if not fs.exists(root):
        return []
    fs.invalidate_cache()
    names = sorted(path.rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(root, detail=False))
    fs.rm(root, recursive=True)
    return names
