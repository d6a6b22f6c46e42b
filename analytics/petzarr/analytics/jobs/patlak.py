"""One subject's kinetics inputs: region TACs, image-derived input functions and its Ki map.

The Patlak driver's per-subject task. The store and its ``pet_dynamic`` group are opened once
and shared by the three steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import zarr

from petzarr.analytics.jobs.input_functions import dynamic_input_functions
from petzarr.analytics.jobs.ki_map import write_ki_map
from petzarr.analytics.jobs.tacs import dynamic_tacs
from petzarr.cohort import layout
from petzarr.cohort.executor import threaded
from petzarr.cohort.subject import open_subject, read_config

__all__ = ["subject_kinetics"]


def subject_kinetics(
    store_url: str,
    *,
    groups: Sequence[str] | None,
    erosion: Sequence[int],
    user_input_functions: list[pd.DataFrame] | None,
    vois: Sequence[tuple[float | None, int]],
    ki_map: dict[str, Any] | None,
    storage_options: dict[str, Any] | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any] | None]:
    """One subject's TACs, its image-derived input functions (unless given) and Ki map.

    ``ki_map`` holds :func:`~petzarr.analytics.jobs.ki_map.write_ki_map`'s options, or is
    None for no map. Returns ``(tacs, input functions or None, Ki-map attributes or None)``.
    """
    with zarr.config.set(read_config()), threaded():
        subject = open_subject(store_url, storage_options=storage_options)
        dyn = subject.group(layout.PET_DYNAMIC_GROUP)
        tacs = dynamic_tacs(dyn, groups=groups, erosion=erosion)
        ifs = None if user_input_functions is not None else dynamic_input_functions(dyn, vois=vois)
        attrs = None
        if ki_map is not None:
            given = ifs if ifs is not None else user_input_functions
            attrs = write_ki_map(subject, input_function=given, **ki_map)
    return tacs, ifs, attrs
