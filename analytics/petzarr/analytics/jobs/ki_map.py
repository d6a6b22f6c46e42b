"""A subject's voxel-wise Patlak Ki map, written into its store as ``pet_dynamic/patlak_ki``.

The map is :func:`~petzarr.analytics.kernels.ki_map.patlak_ki_map` of the subject's dynamic PET with
one input function (by default hedyPET's 1 mL x 3 px VOI in the lower descending aorta),
computed chunk by chunk with Dask over the spatial chunks and stored float32 ``(z, y, x)``
with the spatial chunks of ``pet``; its attributes say which input function, frames and
integration were used.

Writing into a published store. The Ki map is the one thing analytics writes into a subject
store, and it does so as follows: an existing ``patlak_ki`` is deleted and the metadata
re-consolidated first (readers stop seeing it); the new array is created with fill value NaN
and every chunk written (each chunk is one object put, atomic on S3 and locally); only then
is the root metadata re-consolidated, in one put. A reader that opens the store through its
consolidated metadata — as :func:`petzarr.cohort.open_cohort` does — sees either no Ki map or
a complete one. Only a reader that lists the store while a map is being written can see it
half done, and then the missing chunks read as NaN, never as a plausible 0. Two writers on
one subject at once are not guarded against: run one Ki-map job per subject.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast

import dask.array as da
import numpy as np
import pandas as pd
import zarr

from petzarr.analytics.jobs.input_functions import dynamic_input_functions
from petzarr.analytics.kernels.ki_map import patlak_ki_map
from petzarr.analytics.kernels.patlak import frames_from
from petzarr.analytics.tables.patlak import INPUT_FUNCTION_ID
from petzarr.cohort import layout
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import threaded
from petzarr.cohort.format import converter_version
from petzarr.cohort.storage import zarr_store
from petzarr.cohort.subject import SubjectStore, open_subject, read_config
from petzarr.cohort.zarr_io import blosc, slab_chunks

__all__ = ["DEFAULT_KI_FRAMES", "DEFAULT_KI_INPUT_FUNCTION", "KI_ARRAY", "write_ki_map"]

#: Name of the Ki map in the ``pet_dynamic`` group.
KI_ARRAY: Final = "patlak_ki"
#: Input function of the Ki map unless told otherwise.
DEFAULT_KI_INPUT_FUNCTION: Final = "aortavois_ml-1_width-3_aorta_descending_lower"
#: Regression frames of the Ki map unless told otherwise (or a t* is given).
DEFAULT_KI_FRAMES: Final = 7


def _plasma(
    tables: pd.DataFrame | Sequence[pd.DataFrame], subject: str, identifier: str, t_mid: np.ndarray
) -> np.ndarray:
    """The input function ``identifier`` of ``subject`` at the frame middles ``t_mid``."""
    parts = [tables] if isinstance(tables, pd.DataFrame) else list(tables)
    found: list[pd.DataFrame] = []
    known: set[str] = set()
    for t in parts:
        if {"Task", "Label Name", "Frame Time Middle [s]", "PET Mean [Bq/mL]"} <= set(t.columns):
            ids = t["Task"].astype(str) + "_" + t["Label Name"].astype(str)
            rows = t[ids == identifier]
            if "Erosion Iterations" in rows:
                rows = rows[rows["Erosion Iterations"] == 0]
            curve = rows.rename(columns={"Frame Time Middle [s]": "_t", "PET Mean [Bq/mL]": "_v"})
            known |= set(ids)
        elif {"Time [s]", "Activity"} <= set(t.columns):
            ids = t.get(INPUT_FUNCTION_ID, pd.Series("input_function", index=t.index))
            curve = t[ids == identifier].rename(columns={"Time [s]": "_t", "Activity": "_v"})
            known |= set(ids.astype(str))
        else:
            raise InvalidInputError(
                f"input-function table has columns {sorted(t.columns)}; expected a TAC table "
                "or Time [s], Activity"
            )
        if "Subject" in curve:
            curve = curve[curve["Subject"].isna() | (curve["Subject"].astype(str) == subject)]
        found.append(curve[["_t", "_v"]])
    curve = pd.concat(found, ignore_index=True).drop_duplicates().sort_values("_t")
    if curve.empty:
        shown = ", ".join(sorted(known)[:8]) or "none"
        raise InvalidInputError(
            f"subject {subject}: no input function {identifier!r} for the Ki map (have: {shown})"
        )
    times = curve["_t"].to_numpy(np.float64)
    if times.shape != t_mid.shape or not np.allclose(times, t_mid, rtol=1e-9, atol=1e-6):
        raise InvalidInputError(
            f"subject {subject}: input function {identifier!r} is not sampled at the "
            f"{t_mid.size} frame middles of the dynamic PET"
        )
    return curve["_v"].to_numpy(np.float64)


def write_ki_map(
    store: str | SubjectStore,
    *,
    input_function: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
    identifier: str = DEFAULT_KI_INPUT_FUNCTION,
    n_frames: int | None = None,
    t_star: float | None = None,
    from_injection: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the voxel-wise Patlak Ki map of one subject as ``pet_dynamic/patlak_ki``.

    Parameters
    ----------
    store : str or SubjectStore
        The subject store's URL (folder or ``s3://...``), or the store already open.
    input_function : DataFrame or sequence of DataFrame, optional
        Tables holding the input function (TAC layout, or Time [s], Activity); default the
        subject's image-derived ones
        (:func:`~petzarr.analytics.jobs.input_functions.subject_input_functions`).
    identifier : str
        Which input function (``<Task>_<Label Name>``, or the identifier of a user curve).
    n_frames : int, optional
        Regression over the last ``n_frames`` frames (default 7).
    t_star : float, optional
        Instead: regress over the frames whose middle is at or after ``t_star`` minutes.
    from_injection : bool
        Integrate the input function from injection instead of the first frame middle.
    storage_options : dict, optional
        fsspec options for a remote store.

    Returns
    -------
    dict
        The attributes written on the array: ``units`` (mL/cm3/min), ``input_function``,
        ``regression_frames``, ``frame_indices``, ``t_star_min``, ``from_injection``, ...

    Examples
    --------
    On a converted Patlak phantom (:mod:`petzarr.synth.patlak_phantom`; liver Ki 0.01):

    >>> import tempfile
    >>> from petzarr.cohort.executor import Run
    >>> from petzarr.convert.job import convert_cohort
    >>> from petzarr.synth.patlak_phantom import write_patlak_cohort
    >>> source, root = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = write_patlak_cohort(source, subjects=("sub-001",))
    >>> _ = convert_cohort(source, root, run=Run(serial=True, progress=False))
    >>> from petzarr.cohort import open_cohort
    >>> attrs = write_ki_map(open_cohort(root).store_url("sub-001"), t_star=20.0)
    >>> attrs["input_function"], attrs["regression_frames"]
    ('aortavois_ml-1_width-3_aorta_descending_lower', 13)
    >>> ds = open_cohort(root).open("sub-001", "pet_dynamic")
    >>> ki = ds[KI_ARRAY].where(ds.seg_total == 5).mean()
    >>> round(float(ki), 6)
    0.01

    Notes
    -----
    float32 ``(z, y, x)``, chunked like the spatial chunks of ``pet``, computed chunk by
    chunk with Dask on this process' threads. See the module docstring for how the store
    stays readable while the map is written.
    """
    if n_frames is not None and t_star is not None:
        raise InvalidInputError("give either n_frames or t_star for the Ki map, not both")
    with zarr.config.set(read_config()):
        opened = open_subject(store, storage_options=storage_options)
        subject = opened.subject
        dyn = opened.group(layout.PET_DYNAMIC_GROUP)
        if input_function is None:
            input_function = dynamic_input_functions(dyn)
        plasma = _plasma(input_function, subject, identifier, dyn.frames.mid_s)
        t_min = dyn.frames.mid_s / 60.0
        n = DEFAULT_KI_FRAMES if n_frames is None and t_star is None else n_frames
        if t_star is not None:
            n = int(frames_from(t_min, t_star))
        nt = dyn.image.shape[0]
        if n is None or not 2 <= n <= nt:
            raise InvalidInputError(
                f"subject {subject}: the Ki map needs 2 to {nt} regression frames, got {n}"
                + (f" from t* = {t_star} min" if t_star is not None else "")
            )
        ki = patlak_ki_map(
            da.from_zarr(dyn.image), plasma, t_min, n_frames=n, from_injection=from_injection
        )
        attrs = {
            "units": "mL/cm3/min",
            "long_name": "Patlak Ki",
            "input_function": identifier,
            "regression_frames": n,
            "frame_indices": list(range(nt - n, nt)),
            "t_star_min": t_star,
            "from_injection": bool(from_injection),
            "method": "Patlak: X = cumulative Simpson integral of the input function / input "
            "function, Y = voxel / input function, time in minutes, OLS over the last "
            "regression_frames frames (petzarr.analytics.kernels.ki_map)",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "software": converter_version(),
        }
        _write_map(opened, ki, attrs)
    return attrs


def _write_map(subject: SubjectStore, ki: Any, attrs: dict[str, Any]) -> None:
    store = zarr_store(subject.url, subject.storage_options)
    root = zarr.open_group(store, mode="r+")
    group = root[layout.PET_DYNAMIC_GROUP]
    if not isinstance(group, zarr.Group):
        raise InvalidInputError(
            f"subject {subject.subject}: {layout.PET_DYNAMIC_GROUP} is not a group"
        )
    pet = subject.group(layout.PET_DYNAMIC_GROUP).image
    if KI_ARRAY in group:
        del group[KI_ARRAY]
        _consolidate(store)  # readers stop seeing the old map before it is replaced
    shape = pet.shape[1:]
    arr = group.create_array(
        KI_ARRAY,
        shape=shape,
        dtype=np.float32,
        chunks=slab_chunks(shape, pet.chunks[1]),
        compressors=[blosc()],
        fill_value=np.nan,  # a chunk not (yet) written reads as "no value", never as 0
        dimension_names=layout.SPATIAL_DIMS,
        attributes=attrs,
        config={"write_empty_chunks": True},
    )
    ki = ki.rechunk(arr.chunks)
    with threaded():
        da.store(ki, cast(Any, arr), lock=False)
    _consolidate(store)


def _consolidate(store: Any) -> None:
    with warnings.catch_warnings():  # consolidated metadata is not in the v3 spec yet
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(store)
