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

__all__ = ["collect_garbage", "commit", "sweep_staging", "unindexed"]


def commit(
    dest: str, rows: Iterable[Mapping[str, Any]], options: Mapping[str, Any], run_id: str
) -> list[str]:
    """Write ``rows`` to the index, then delete their subjects' unindexed versions.

    Deleted: the version each row replaces, and versions of earlier runs (or this one)
    that were never indexed — a worker or driver killed before the index caught up. Later
    runs' versions are left alone. Returns the deleted store paths (relative to ``dest``).
    """
    rows = [dict(r) for r in rows]
    if not rows:
        return []
    old = read_index(dest, options)
    before = dict(zip(old["subject"], old["store"], strict=True))
    update_index(dest, rows, options)
    fs, root = filesystem(dest, options)
    root = root.rstrip("/")
    fs.invalidate_cache()
    deleted = []
    for row in rows:
        subject, store = row["subject"], row["store"]
        stale = set(_versions(fs, root, subject)) - {store}
        stale = {s for s in stale if layout.version_run(s) <= run_id}
        if before.get(subject) not in (None, store):
            stale.add(before[subject])  # e.g. a format-1 store, subjects/<id>.zarr
        for path in sorted(stale):
            if fs.exists(f"{root}/{path}"):
                fs.rm(f"{root}/{path}", recursive=True)
                deleted.append(path)
    return deleted


def _versions(fs: Any, root: str, subject: str) -> list[str]:
    folder = layout.subject_versions(subject)
    try:
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(f"{root}/{folder}", detail=False)]
    except FileNotFoundError:
        return []
    return [f"{folder}/{n}" for n in names if n.endswith(".zarr")]


def unindexed(dest: str, options: Mapping[str, Any] | None = None) -> list[str]:
    """Every store under ``subjects/`` (format 1 or 2) and ``staging/`` the index does not name."""
    fs, root = filesystem(dest, options)
    root = root.rstrip("/")
    fs.invalidate_cache()
    indexed = set(read_index(dest, options)["store"])
    found: list[str] = []
    subjects = f"{root}/{layout.SUBJECTS}"
    if fs.exists(subjects):
        for entry in fs.ls(subjects, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.endswith(".zarr"):  # format 1: subjects/<id>.zarr
                found.append(f"{layout.SUBJECTS}/{name}")
            else:
                found += _versions(fs, root, name)
    staging = f"{root}/{layout.STAGING}"
    if fs.exists(staging):
        found += [f"{layout.STAGING}/{p.rstrip('/').rsplit('/', 1)[-1]}" for p in fs.ls(staging)]
    return sorted(p for p in found if p not in indexed)


def collect_garbage(
    dest: str, options: Mapping[str, Any] | None = None, *, dry_run: bool = False
) -> list[str]:
    """Delete every store the index does not name (``petzarr gc``); return their paths.

    Not while a conversion into ``dest`` runs: its new versions are not indexed yet.
    """
    fs, root = filesystem(dest, options)
    root = root.rstrip("/")
    stale = unindexed(dest, options)
    if not dry_run:
        for path in stale:
            fs.rm(f"{root}/{path}", recursive=True)
        if isinstance(fs, LocalFileSystem):  # local disk keeps empty subject folders
            for folder in {p.rsplit("/", 1)[0] for p in stale if p.count("/") == 2}:
                if fs.exists(f"{root}/{folder}") and not fs.ls(f"{root}/{folder}"):
                    fs.rmdir(f"{root}/{folder}")
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
