"""Kinetics of a converted cohort: input functions, Patlak tables and Ki maps in one place.

:func:`cohort_patlak` runs one task per subject that computes its TACs
(:func:`~petzarr.analytics.tacs.subject_tacs`), its image-derived input functions
(:func:`~petzarr.analytics.image_input_functions.subject_input_functions`, unless the user
gives input functions) and, if asked, writes its voxel-wise Ki map
(:func:`~petzarr.analytics.ki_map_store.write_ki_map`); then
:func:`~petzarr.analytics.patlak.patlak_table` fits every region with every input function of
its subject and every regression window in one vectorised call. The input-function and Ki-map
functions are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from petzarr.analytics.cohort_run import run_subjects
from petzarr.analytics.image_input_functions import (
    cohort_input_functions,
    subject_input_functions,
)
from petzarr.analytics.input_function import HEDYPET_VOIS
from petzarr.analytics.ki_map_store import (
    DEFAULT_KI_FRAMES,
    DEFAULT_KI_INPUT_FUNCTION,
    KI_ARRAY,
    write_ki_map,
)
from petzarr.analytics.patlak import patlak_table
from petzarr.analytics.tacs import TAC_COLUMNS, concat_sorted, parse_erosion, subject_tacs
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "DEFAULT_KI_FRAMES",
    "DEFAULT_KI_INPUT_FUNCTION",
    "KI_ARRAY",
    "PatlakRun",
    "cohort_input_functions",
    "cohort_patlak",
    "subject_input_functions",
    "write_ki_map",
]


@dataclass(frozen=True)
class PatlakRun:
    """Result of a cohort's kinetics run.

    ``table`` is the main result (Patlak fits for :func:`cohort_patlak`), ``tacs`` and
    ``input_functions`` the tables it was computed from, ``ki_maps`` the attributes of each
    Ki map written (by subject) and ``failed`` subject -> error.
    """

    table: pd.DataFrame
    tacs: pd.DataFrame
    input_functions: pd.DataFrame
    failed: dict[str, str]
    ki_maps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every subject has a result, 1 when some failed."""
        return 1 if self.failed else 0


def _subject_kinetics(
    cohort_url: str,
    subject: str,
    *,
    groups: Sequence[str] | None,
    erosion: Sequence[int],
    user_input_functions: list[pd.DataFrame] | None,
    vois: Sequence[tuple[float | None, int]],
    ki_map: dict[str, Any] | None,
    storage_options: dict[str, Any] | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any] | None]:
    """One subject's TACs, image-derived input functions (unless given) and Ki map."""
    tacs = subject_tacs(
        cohort_url, subject, groups=groups, erosion=erosion, storage_options=storage_options
    )
    ifs = None
    if user_input_functions is None:
        ifs = subject_input_functions(
            cohort_url, subject, vois=vois, storage_options=storage_options
        )
    attrs = None
    if ki_map is not None:
        given = ifs if ifs is not None else user_input_functions
        attrs = write_ki_map(
            cohort_url, subject, input_function=given, storage_options=storage_options, **ki_map
        )
    return tacs, ifs, attrs


def cohort_patlak(
    cohort_url: str,
    *,
    n_frames: Sequence[int] | None = None,
    t_star: float | None = None,
    from_injection: bool = False,
    input_functions: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
    groups: Sequence[str] | None = None,
    erosion: Iterable[int] = (0,),
    vois: Sequence[tuple[float | None, int]] = HEDYPET_VOIS,
    ki_map: bool = False,
    ki_input_function: str = DEFAULT_KI_INPUT_FUNCTION,
    ki_frames: int | None = None,
    subjects: Sequence[str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    progress: bool = True,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
) -> PatlakRun:
    """Patlak Ki of every region x input function x regression window of a cohort.

    One task per subject computes its TACs (:func:`~petzarr.analytics.tacs.subject_tacs`),
    its image-derived input functions (:func:`subject_input_functions`, unless
    ``input_functions`` are given) and, with ``ki_map``, writes its Ki map
    (:func:`write_ki_map`); then :func:`~petzarr.analytics.patlak.patlak_table` fits every
    region with every input function of its subject in one vectorised call.

    Parameters
    ----------
    cohort_url : str
        Cohort root (folder or ``s3://bucket/prefix``).
    n_frames, t_star, from_injection
        Regression windows, as :func:`~petzarr.analytics.patlak.patlak_table` (default
        hedyPET's: the last 2..8 frames, integral from the first frame middle).
    input_functions : DataFrame or sequence of DataFrame, optional
        User input functions (:func:`~petzarr.analytics.patlak.read_input_function` tables)
        instead of the image-derived ones.
    groups, erosion
        Label maps and erosion levels of the region TACs (:func:`subject_tacs`).
    vois : sequence of (volume_ml or None, width_px)
        Image-derived VOI versions (default hedyPET's three).
    ki_map : bool
        Also write each subject's voxel-wise Ki map (:func:`write_ki_map`).
    ki_input_function : str
        Identifier of the Ki map's input function.
    ki_frames : int, optional
        Regression frames of the Ki map (default 7, or ``t_star`` when that is given).
    subjects, client, scheduler, workers, serial, progress, storage_options, anon
        As :func:`~petzarr.analytics.tacs.cohort_tacs`.

    Returns
    -------
    PatlakRun
        ``table`` = the Patlak fits (columns of ``patlak_table``), ``tacs``,
        ``input_functions``, ``ki_maps`` (subject -> attributes written) and ``failed``.

    Examples
    --------
    The test suite's phantom cohort (``tests/dynamic_cohort.py``): the aorta carries the
    input function, the liver traps 0.01 mL/cm3/min of it.

    >>> import tempfile
    >>> from dynamic_cohort import write_dynamic_cohort
    >>> root = tempfile.mkdtemp()
    >>> _ = write_dynamic_cohort(root, subjects=("sub-001",))
    >>> run = cohort_patlak(root, n_frames=[5, 7], ki_map=True, serial=True, progress=False)
    >>> fits = run.table
    >>> liver = fits[(fits["Label Name"] == "liver")
    ...              & (fits["Input Function Identifier"] == DEFAULT_KI_INPUT_FUNCTION)]
    >>> liver[["Regression Frames", "Patlak Ki"]].round(6).to_numpy().tolist()
    [[5.0, 0.01], [7.0, 0.01]]
    >>> run.ki_maps["sub-001"]["regression_frames"], run.failed
    (7, {})
    """
    levels = parse_erosion(erosion)
    users = _user_tables(input_functions)
    ki = None
    if ki_map:
        ki = {
            "identifier": ki_input_function,
            "n_frames": ki_frames,
            "t_star": t_star if ki_frames is None else None,
            "from_injection": from_injection,
        }
    results, failed = run_subjects(
        _subject_kinetics,
        cohort_url,
        desc="patlak",
        subjects=subjects,
        client=client,
        scheduler=scheduler,
        workers=workers,
        serial=serial,
        progress=progress,
        storage_options=storage_options,
        anon=anon,
        kwargs={
            "groups": list(groups) if groups else None,
            "erosion": levels,
            "vois": list(vois),
            "ki_map": ki,
        },
        per_subject=lambda s: {"user_input_functions": _for_subject(users, s)},
    )
    tacs = concat_sorted([r[0] for r in results.values()], TAC_COLUMNS)
    if users is None:
        ifs_tables: list[pd.DataFrame] = [
            concat_sorted([r[1] for r in results.values()], TAC_COLUMNS)
        ]
    else:
        ifs_tables = users
    ki_maps = {s: r[2] for s, r in results.items() if r[2] is not None}
    if tacs.empty:
        fits = pd.DataFrame()
    else:
        fits = patlak_table(
            tacs, ifs_tables, n_frames=n_frames, t_star=t_star, from_injection=from_injection
        )
    ifs = ifs_tables[0] if len(ifs_tables) == 1 else pd.concat(ifs_tables, ignore_index=True)
    return PatlakRun(table=fits, tacs=tacs, input_functions=ifs, failed=failed, ki_maps=ki_maps)


def _user_tables(
    tables: pd.DataFrame | Sequence[pd.DataFrame] | None,
) -> list[pd.DataFrame] | None:
    if tables is None:
        return None
    out = [tables] if isinstance(tables, pd.DataFrame) else list(tables)
    if not out:
        raise InvalidInputError("input_functions is empty: give a table or None")
    return out


def _for_subject(tables: list[pd.DataFrame] | None, subject: str) -> list[pd.DataFrame] | None:
    """The rows of user input functions a subject can use (its own and subject-less ones)."""
    if tables is None:
        return None
    return [
        t[t["Subject"].isna() | (t["Subject"].astype(str) == subject)] if "Subject" in t else t
        for t in tables
    ]
