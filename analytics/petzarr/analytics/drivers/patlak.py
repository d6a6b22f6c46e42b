"""Patlak kinetics of a converted cohort: region TACs x input functions x windows, Ki maps.

:func:`cohort_patlak` runs one task per subject
(:func:`~petzarr.analytics.jobs.patlak.subject_kinetics`: its TACs, its image-derived input
functions unless the user gives some, and, if asked, its voxel-wise Ki map); then
:func:`~petzarr.analytics.tables.patlak.patlak_table` fits every region with every input
function of its subject and every regression window in one vectorised call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from petzarr.analytics.drivers.subjects import run_subjects
from petzarr.analytics.jobs.ki_map import DEFAULT_KI_INPUT_FUNCTION
from petzarr.analytics.jobs.patlak import subject_kinetics
from petzarr.analytics.kernels.input_function import HEDYPET_VOIS
from petzarr.analytics.tables.label_stats import parse_erosion
from petzarr.analytics.tables.patlak import patlak_table
from petzarr.analytics.tables.tacs import TAC_COLUMNS, concat_sorted
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run

__all__ = ["PatlakRun", "cohort_patlak"]


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
    run: Run | None = None,
    storage_options: dict[str, Any] | None = None,
    anon: bool = False,
) -> PatlakRun:
    """Patlak Ki of every region x input function x regression window of a cohort.

    One task per subject computes its TACs, its image-derived input functions (unless
    ``input_functions`` are given) and, with ``ki_map``, writes its Ki map
    (:func:`~petzarr.analytics.jobs.patlak.subject_kinetics`); then
    :func:`~petzarr.analytics.tables.patlak.patlak_table` fits every region with every input
    function of its subject in one vectorised call.

    Parameters
    ----------
    cohort_url : str
        Cohort root (folder or ``s3://bucket/prefix``).
    n_frames, t_star, from_injection
        Regression windows, as :func:`~petzarr.analytics.tables.patlak.patlak_table` (default
        hedyPET's: the last 2..8 frames, integral from the first frame middle).
    input_functions : DataFrame or sequence of DataFrame, optional
        User input functions (:func:`~petzarr.analytics.tables.patlak.read_input_function` tables)
        instead of the image-derived ones.
    groups, erosion
        Label maps and erosion levels of the region TACs.
    vois : sequence of (volume_ml or None, width_px)
        Image-derived VOI versions (default hedyPET's three).
    ki_map : bool
        Also write each subject's voxel-wise Ki map
        (:func:`~petzarr.analytics.jobs.ki_map.write_ki_map`).
    ki_input_function : str
        Identifier of the Ki map's input function.
    ki_frames : int, optional
        Regression frames of the Ki map (default 7, or ``t_star`` when that is given).
    subjects, run, storage_options, anon
        As :func:`~petzarr.analytics.drivers.tacs.cohort_tacs`.

    Returns
    -------
    PatlakRun
        ``table`` = the Patlak fits (columns of ``patlak_table``), ``tacs``,
        ``input_functions``, ``ki_maps`` (subject -> attributes written) and ``failed``.

    Examples
    --------
    A converted Patlak phantom (:mod:`petzarr.synth.patlak_phantom`): the aorta carries the
    input function, the liver traps 0.01 mL/cm3/min of it.

    >>> import tempfile
    >>> from petzarr.convert.job import convert_cohort
    >>> from petzarr.synth.patlak_phantom import write_patlak_cohort
    >>> source, root = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = write_patlak_cohort(source, subjects=("sub-001",))
    >>> _ = convert_cohort(source, root, run=Run(serial=True, progress=False))
    >>> from petzarr.cohort.executor import Run
    >>> run = cohort_patlak(
    ...     root, n_frames=[5, 7], ki_map=True, run=Run(serial=True, progress=False)
    ... )
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
        subject_kinetics,
        cohort_url,
        desc="patlak",
        subjects=subjects,
        run=run,
        storage_options=storage_options,
        anon=anon,
        kwargs={
            "groups": list(groups) if groups else None,
            "erosion": levels,
            "vois": list(vois),
            "ki_map": ki,
        },
        per_subject=lambda row: {"user_input_functions": _for_subject(users, str(row["subject"]))},
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
