"""``petzarr pyramid``: pyramid levels and OME image-labels for subjects converted without.

One task per subject (:func:`add_pyramid`) reads each static image group's level 0 and label
maps, writes what :mod:`petzarr.convert.pyramid` writes during conversion, reads it back,
and only then names the levels in the group's ``multiscales`` and re-consolidates the
metadata. Level 0 is never touched, so readers of a published store see no change until
the levels are complete; a failed or killed task leaves at most unnamed arrays, which the
next run replaces.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from petzarr.cohort import layout, open_cohort
from petzarr.cohort.config import get_int
from petzarr.cohort.executor import Run, task_threads
from petzarr.cohort.format import group_attrs
from petzarr.cohort.storage import storage_options as options_of
from petzarr.cohort.storage import zarr_store
from petzarr.cohort.subject import ImageGroup, open_subject
from petzarr.cohort.zarr_io import stored_crcs
from petzarr.convert.pyramid import level_grids, write_image_levels, write_label_image
from petzarr.convert.writer import check_written

__all__ = ["PyramidTask", "add_pyramid", "add_pyramids"]

STATIC_GROUPS = (layout.CT_GROUP, layout.PET_GROUP)


@dataclass(frozen=True)
class PyramidTask:
    """One subject's store to give a pyramid."""

    store: str
    options: dict[str, Any]
    min_size: int


def add_pyramid(task: PyramidTask) -> list[str]:
    """Add the pyramid and image-labels to each static group lacking them; the groups done."""
    subject = open_subject(task.store, storage_options=task.options).subject
    root = zarr.open_group(zarr_store(task.store, task.options), mode="r+", use_consolidated=False)
    done = []
    for name in STATIC_GROUPS:
        node = root.get(name)
        if not isinstance(node, zarr.Group) or _has_pyramid(node):
            continue
        group = ImageGroup(subject, name, node)
        levels = level_grids(group.grid, task.min_size)
        if not levels:
            continue
        for stale in (layout.LEVELS_GROUP, layout.LABELS_GROUP):  # an earlier, killed attempt
            if stale in node:
                del node[stale]
        threads = task_threads(get_int("convert.write_threads"))
        image = layout.IMAGE_ARRAY[name]
        crcs = write_image_levels(
            node, image, np.asarray(group.image[...]), levels, slabs=layout.CHUNK_SLABS,
            threads=threads,
        )  # fmt: skip
        for m in group.map_names:
            array = layout.SEG_PREFIX + m
            crcs |= write_label_image(
                node, array, np.asarray(group.label_map(m)[...]), group.label_names(m),
                group.grid, levels, stored_crcs(node, array), slabs=layout.CHUNK_SLABS,
                threads=threads,
            )  # fmt: skip
        check_written(node, crcs, where=f"subject {subject}: {name}/")
        node.attrs["ome"] = group_attrs(image, group.grid, levels=[g for g, _ in levels])["ome"]
        done.append(name)
    if done:
        with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec yet
            warnings.simplefilter("ignore", category=UserWarning)
            zarr.consolidate_metadata(root.store)
    return done


def add_pyramids(
    cohort_url: str,
    *,
    subjects: list[str] | None = None,
    run: Run | None = None,
    storage_options: dict[str, Any] | None = None,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """:func:`add_pyramid` of every (or the chosen) subject of a cohort, one task each.

    Returns the groups each subject gained (empty: it had them) and the failures.
    """
    options = options_of(cohort_url) if storage_options is None else storage_options
    cohort = open_cohort(cohort_url, storage_options=options)
    chosen = subjects or cohort.subjects
    tasks = [PyramidTask(cohort.store_url(s), options, get_int("pyramid.min_size")) for s in chosen]
    done: dict[str, list[str]] = {}
    failed: dict[str, str] = {}
    for outcome in (run or Run()).map(add_pyramid, tasks, desc="pyramid", names=chosen):
        subject = chosen[outcome.position]
        if outcome.failure is None:
            done[subject] = outcome.value
        else:
            failed[subject] = outcome.failure.error
    return done, failed


def _has_pyramid(group: zarr.Group) -> bool:
    ome: Any = group.attrs.get("ome", {})
    multiscales = ome.get("multiscales", [{}]) if isinstance(ome, dict) else [{}]
    return len(multiscales[0].get("datasets", [])) > 1
