"""One subject's time-activity curves: its ``pet_dynamic`` group in, hedyPET's TAC table out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dask.array as da
import pandas as pd
import zarr

from petzarr.analytics.tables.label_stats import name_labels
from petzarr.analytics.tables.tacs import finish_tac_table, label_tacs
from petzarr.cohort import layout
from petzarr.cohort.config import get_int
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import threaded
from petzarr.cohort.subject import ImageGroup, SubjectStore, open_subject, read_config

__all__ = ["dynamic_tacs", "subject_tacs"]


def subject_tacs(
    store: str | SubjectStore,
    *,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    frames_per_block: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """TACs of every label of the requested maps of one subject's dynamic PET.

    Parameters
    ----------
    store : str or SubjectStore
        The subject store's URL (folder or ``s3://...``), or the store already open.
    groups : sequence of str, optional
        Label maps (``total``, ``tissue``, ``body``, ...); default every ``seg_*`` map of the
        ``pet_dynamic`` group.
    erosion : iterable of int
        Erosion levels (0 = none).
    frames_per_block : int, optional
        Frames read at once per slab.
    storage_options : dict, optional
        fsspec options for a remote store.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~petzarr.analytics.tables.tacs.TAC_COLUMNS`; ``Task`` is hedyPET's name
        (``ts_total``, ``ts_tissue``, ``ts_body``) for TotalSegmentator's maps, else the
        group name.

    Examples
    --------
    See :func:`~petzarr.analytics.drivers.tacs.cohort_tacs`; the per-subject table is one
    subject's part of it.
    """
    # a missing chunk fails the subject; chunks decode in the reading thread (read_config)
    with (
        zarr.config.set(read_config()),
        threaded(),
    ):
        subject = open_subject(store, storage_options=storage_options)
        dyn = subject.group(layout.PET_DYNAMIC_GROUP)
        return dynamic_tacs(dyn, groups=groups, erosion=erosion, frames_per_block=frames_per_block)


def dynamic_tacs(
    dyn: ImageGroup,
    *,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    frames_per_block: int | None = None,
) -> pd.DataFrame:
    """:func:`subject_tacs` of an open ``pet_dynamic`` group (the Patlak job shares it)."""
    wanted = [layout.group_name(g) for g in groups] if groups else dyn.map_names
    if not wanted:
        raise InvalidInputError(
            f"subject {dyn.subject}: no label maps (seg_*) in its {layout.PET_DYNAMIC_GROUP} group"
        )
    maps = {name: da.from_zarr(dyn.label_map(name)) for name in wanted}
    try:
        table = label_tacs(
            dyn.image,
            maps,
            frame_mid_s=dyn.frames.mid_s,
            spacing_mm=dyn.spacing_mm,
            erosion=erosion,
            n_labels=max(dyn.n_labels(name) for name in wanted),
            frames_per_block=frames_per_block,
            block_bytes=get_int("tacs.block_bytes"),
        )
    except InvalidInputError as exc:
        raise InvalidInputError(f"subject {dyn.subject}: {exc}") from exc
    names = {name: dyn.label_names(name) for name in wanted}
    return finish_tac_table(name_labels(table, dyn.subject, names))
