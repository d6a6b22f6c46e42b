"""SUV and SUL normalisation constants per subject: hedyPET's four denominators.

A standardised uptake value is the PET concentration over a *denominator* in Bq/mL: the
injected activity [Bq] over a body mass [g] (1 g taken as 1 mL), so SUV = PET / denominator
is unitless (g/mL). hedyPET publishes four denominators per subject (``metadata_80.csv``);
this module computes them the same way, with these formulas (W weight [kg], H height [m],
A injected activity [Bq], decay-corrected to scan start when the times are known):

``SUV Denominator [Bq/mL]``
    A / (1000 W). Body-weight SUV.
``SUL James Denominator [Bq/mL]``
    A / (1000 LBM), LBM = 1.10 W - 128 (W / (100 H))^2 (men),
    1.07 W - 148 (W / (100 H))^2 (women). James, *Research on obesity*, DHSS/MRC, HMSO
    1976; the SUL of PERCIST (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S). It decreases
    with weight above W = a (100 H)^2 / (2 b) (a, b the coefficients) and reaches 0 at
    twice that; the table notes when a subject is past the maximum.
``SUL Janma Denominator [Bq/mL]``
    A / (1000 LBM), LBM = 9270 W / (6680 + 216 BMI) (men), 9270 W / (8780 + 244 BMI)
    (women), BMI = W / H^2. Janmahasatian et al., *Quantification of lean bodyweight*,
    Clin Pharmacokinet 2005;44:1051-1065, doi:10.2165/00003088-200544100-00004; preferred
    over James by the EANM guideline (Boellaard et al., EJNMMI 2015;42:328-354).
``SUL Decazes Denominator [Bq/mL]``
    A / (1000 LBM), LBM = W - FBM, FBM = FBM_VI / 0.716, FBM_VI = 0.923 g/mL x the CT fat
    volume from the bottom of the hip bones (ischia) to the vertex. Decazes et al., *A
    method to improve the semiquantification of 18F-FDG uptake: reliability of the
    estimated lean body mass using the conventional, low-dose CT from PET/CT*, J Nucl Med
    2016;57:753-758 (its "VI" region; the wider "V20" region reaches 20 cm below the
    ischia, beyond most fields of view). The constants are hedyPET's
    (``hedypet/preprocessing/normalization.py``, ``lbm_ct_decazes``): 0.923 g/mL the
    density of adipose tissue, and division by 0.716, the extrapolation from the VI region
    to the whole body (read as VI fat being 71.6% of whole-body fat; taken from hedyPET's
    code, the paper's own text was not at hand to check it against). hedyPET counts
    TotalSegmentator ``tissue_types`` labels 1 and 2 (subcutaneous and torso fat) from the
    lowest slice of the ``total`` labels hip_left/hip_right (77, 78) to the highest slice
    of the skull (91), inclusive.
    petzarr takes the top of the field of view as the vertex unless told otherwise
    (ENHANCE.PET has no skull label: it was removed for anonymisation).

Formulas are written in hedyPET's operation order, so its numbers are reproduced to the
last bit or two: ``metadata_80.csv``'s SUV denominators exactly from ``Weight [kg]`` and
``Injected Activity [MBq]``; its James and Janma denominators both back out to the same
height for each subject, a whole half-centimetre (tests/analytics/tables/test_suv_norms.py).

Decay: with injection and scan-start times, A is decayed to scan start, A 2^(-t / T_1/2),
T_1/2 the ``RadionuclideHalfLife`` column, the ``half_life_s`` argument, or F-18's 6586.2 s
(109.77 min; NIST/DDEP). Without them A is used as recorded and ``Decay Corrected`` is
False (hedyPET: its dynamic scans start at injection, its static constants use no times).

Nothing is silently wrong: a value that cannot be computed is NaN and ``Note`` says why (no
height, sex other than M/F, PET in counts, no fat segmentation, ...); a value that is
present but malformed (an unparseable time, a weight of 70000 kg) raises
:class:`~petzarr.cohort.errors.InvalidInputError` naming the subject and the column.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from petzarr.analytics.tables.metadata_columns import (
    ColumnMap,
    ResolvedColumns,
    is_missing,
    parse_activity_bq,
    parse_half_life_s,
    parse_height_m,
    parse_pet_units,
    parse_sex,
    parse_time,
    parse_weight_kg,
    resolve_columns,
    uptake_seconds,
)
from petzarr.cohort.constants import F18_HALF_LIFE_S
from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "DECAZES_VI_FAT_FRACTION",
    "F18_HALF_LIFE_S",
    "FAT_DENSITY_G_PER_ML",
    "NORM_COLUMNS",
    "SUL_DECAZES",
    "SUL_JAMES",
    "SUL_JANMA",
    "SUV",
    "DecazesFat",
    "decay_correct",
    "decazes_fat",
    "lbm_decazes",
    "lbm_james",
    "lbm_janma",
    "normalisation_constants",
    "norms_table",
    "suv_denominator",
]

#: Density of adipose tissue, g/mL (hedyPET's Decazes constant).
FAT_DENSITY_G_PER_ML = 0.923
#: Whole-body fat mass = VI-region fat mass / this (hedyPET's Decazes extrapolation).
DECAZES_VI_FAT_FRACTION = 0.716

SUV = "SUV Denominator [Bq/mL]"
SUL_JAMES = "SUL James Denominator [Bq/mL]"
SUL_JANMA = "SUL Janma Denominator [Bq/mL]"
SUL_DECAZES = "SUL Decazes Denominator [Bq/mL]"
#: Columns of :func:`norms_table`, keys of :func:`normalisation_constants`.
NORM_COLUMNS = (
    "Subject",
    SUV,
    SUL_JAMES,
    SUL_JANMA,
    SUL_DECAZES,
    "Decay Corrected",
    "Note",
    "PET to Bq/mL",
    "Injected Activity [Bq]",
    "Uptake Time [s]",
    "Activity at Scan Start [Bq]",
    "Weight [kg]",
    "Height [m]",
    "Sex",
    "LBM James [kg]",
    "LBM Janma [kg]",
    "LBM Decazes [kg]",
    "Decazes Fat Volume [mL]",
)

_JAMES = {"M": (1.10, 128.0), "F": (1.07, 148.0)}
_JANMA = {"M": (6680.0, 216.0), "F": (8780.0, 244.0)}


# --------------------------------------------------------------------------- formulas


def _sex(sex: str) -> str:
    if sex not in ("M", "F"):
        raise InvalidInputError(f"sex must be 'M' or 'F' (see parse_sex), got {sex!r}")
    return sex


def suv_denominator(activity_bq: ArrayLike, mass_kg: ArrayLike) -> Any:
    """Activity per gram of body mass [Bq/mL]: ``activity / (1000 mass)``.

    ``mass_kg`` is the body weight for SUV, a lean body mass for SUL.

    >>> float(suv_denominator(2.8e7, 70))
    400.0
    """
    return np.asarray(activity_bq, dtype=np.float64) / (np.asarray(mass_kg, np.float64) * 1000.0)


def lbm_james(weight_kg: ArrayLike, height_m: ArrayLike, sex: str) -> Any:
    """James lean body mass [kg]: ``a W - b (W / (100 H))^2``, (a, b) = (1.10, 128) for
    men and (1.07, 148) for women (James 1976).

    >>> round(float(lbm_james(70, 1.70, "F")), 6)  # 74.9 - 148 (70 / 170)^2
    49.806574
    """
    a, b = _JAMES[_sex(sex)]
    w = np.asarray(weight_kg, dtype=np.float64)
    return a * w - b * (w / (np.asarray(height_m, np.float64) * 100)) ** 2


def lbm_janma(weight_kg: ArrayLike, height_m: ArrayLike, sex: str) -> Any:
    """Janmahasatian lean body mass [kg]: ``9270 W / (c + d W / H^2)``, (c, d) =
    (6680, 216) for men and (8780, 244) for women (Janmahasatian et al. 2005).

    >>> round(float(lbm_janma(80, 2.0, "M")), 6)  # BMI 20: 741600 / 11000
    67.418182
    """
    c, d = _JANMA[_sex(sex)]
    w = np.asarray(weight_kg, dtype=np.float64)
    return 9270.0 * w / (c + d * (w / np.asarray(height_m, np.float64) ** 2))


def lbm_decazes(weight_kg: ArrayLike, fat_volume_ml: ArrayLike) -> Any:
    """Decazes lean body mass [kg] from the CT fat volume between ischia and vertex [mL]:
    ``W - (0.923 V / 1000) / 0.716``.

    >>> round(float(lbm_decazes(70, 10_000)), 6)
    57.108939
    """
    fbm_vi = np.asarray(fat_volume_ml, np.float64) * FAT_DENSITY_G_PER_ML / 1000  # kg
    return np.asarray(weight_kg, np.float64) - fbm_vi / DECAZES_VI_FAT_FRACTION


def decay_correct(
    activity_bq: ArrayLike, seconds: ArrayLike, half_life_s: float = F18_HALF_LIFE_S
) -> Any:
    """Activity ``seconds`` after the measurement: ``A 2^(-t / T_1/2)``.

    >>> float(decay_correct(400e6, F18_HALF_LIFE_S))
    200000000.0
    """
    t = np.asarray(seconds, dtype=np.float64)
    return np.asarray(activity_bq, np.float64) * np.exp2(-t / half_life_s)


# --------------------------------------------------------------------------- Decazes fat


@dataclass(frozen=True)
class DecazesFat:
    """Fat volume between the bottom of the hip bones and the top, from a segmentation.

    ``volume_ml`` is NaN and ``reason`` says why when the segmentation does not allow the
    measurement; ``z_range`` is the half-open slice range counted, ``slices_with_fat`` how
    many of its slices hold fat.
    """

    volume_ml: float
    z_range: tuple[int, int] | None = None
    slices_with_fat: int = 0
    reason: str = ""


def _unavailable(reason: str, z_range: tuple[int, int] | None = None) -> DecazesFat:
    return DecazesFat(math.nan, z_range, 0, reason)


def decazes_fat(
    fat: ArrayLike,
    *,
    hip: ArrayLike | None = None,
    z_range: tuple[int, int] | None = None,
    top: int | None = None,
    voxel_volume_ml: float | None = None,
    min_fat_slices: float = 0.5,
) -> DecazesFat:
    """CT fat volume [mL] from the bottom of the hip bones to the top of the field of view.

    The kernel of the Decazes SUL; feed its result to :func:`lbm_decazes` or to
    :func:`normalisation_constants` (``fat=``).

    Parameters
    ----------
    fat : array
        A fat mask ``(z, y, x)`` (nonzero = fat; e.g. ``np.isin(seg, (2, 3))`` for MOOSE
        ``clin_ct_body_composition`` subcutaneous + visceral fat, ``(1, 2)`` for
        TotalSegmentator ``tissue_types``), or a 1-D array of fat volume per slice [mL].
        z is the first axis and increases towards the head (petzarr's RAS+ layout).
    hip : array, optional
        A hip-bone mask on the same z axis (any trailing shape, e.g. ``np.isin(total,
        (77, 78))``); its lowest slice is the bottom of the range.
    z_range : (int, int), optional
        Instead of ``hip``: the half-open slice range to count, ``(bottom, top + 1)``.
    top : int, optional
        With ``hip``: the last slice to count (hedyPET: the skull's highest slice).
        Default: the last slice of the field of view.
    voxel_volume_ml : float, optional
        Voxel volume [mL] (product of the spacings in mm / 1000); required with a mask,
        refused with per-slice volumes.
    min_fat_slices : float, default 0.5
        Fraction of the range's slices that must hold fat. A segmentation restricted to a
        band (MOOSE ``clin_ct_body_composition`` labels only around L3) cannot give
        whole-body fat, and is reported rather than extrapolated. petzarr's guard, not
        part of Decazes' method.

    Returns
    -------
    DecazesFat
        ``volume_ml`` NaN with a ``reason`` when: no hip-bone voxels; the hip bones reach
        the bottom slice (the ischia may be cut off); ``top`` below the hip bones; no fat
        in the range; fat on fewer than ``min_fat_slices`` of the range's slices.

    Examples
    --------
    Ten slices of 2 mL voxels; hip bones on slices 3-5, fat on slices 2-9 (3 voxels each):

    >>> fat = np.zeros((10, 2, 2), bool); fat[2:, 0, :] = True; fat[2:, 1, 0] = True
    >>> hip = np.zeros((10, 2, 2), bool); hip[3:6, 1, 1] = True
    >>> got = decazes_fat(fat, hip=hip, voxel_volume_ml=2.0)
    >>> got.volume_ml, got.z_range   # slices 3..9: 7 slices x 3 voxels x 2 mL
    (42.0, (3, 10))
    >>> decazes_fat(fat, hip=np.zeros(10, bool), voxel_volume_ml=2.0).reason
    'no hip-bone voxels: the bottom of the range (the ischia) is unknown'
    """
    fat = np.asarray(fat)
    if fat.ndim == 0:
        raise InvalidInputError("fat must be a mask (z, y, x) or per-slice volumes (z,)")
    if fat.ndim == 1:
        if voxel_volume_ml is not None:
            raise InvalidInputError(
                "a 1-D fat array is per-slice volume in mL already; drop voxel_volume_ml "
                "(or pass the mask itself)"
            )
        per_slice: np.ndarray = fat.astype(np.float64)
        if not np.all(np.isfinite(per_slice)) or np.any(per_slice < 0):
            raise InvalidInputError("per-slice fat volumes must be finite and >= 0 mL")
    else:
        if voxel_volume_ml is None or not voxel_volume_ml > 0:
            raise InvalidInputError(
                f"a fat mask needs voxel_volume_ml > 0 (got {voxel_volume_ml!r})"
            )
        # Integer voxel counts, scaled once at the end (as hedyPET does).
        per_slice = np.count_nonzero(fat.reshape(fat.shape[0], -1), axis=1)
    nz = per_slice.shape[0]

    if (hip is None) == (z_range is None):
        raise InvalidInputError("give either hip (a hip-bone mask) or z_range, not both")
    if z_range is not None:
        if top is not None:
            raise InvalidInputError("top goes with hip; with z_range put it in the range")
        start, stop = (int(v) for v in z_range)
        if not 0 <= start < stop <= nz:
            raise InvalidInputError(f"z_range {z_range} is not a range inside 0..{nz}")
    else:
        hip = np.asarray(hip)
        if hip.ndim == 0 or hip.shape[0] != nz:
            raise InvalidInputError(
                f"the hip mask has {hip.shape[0] if hip.ndim else 0} slices, the fat {nz}: "
                "they must share the z axis"
            )
        rows = np.flatnonzero(hip.reshape(nz, -1).any(axis=1))
        if rows.size == 0:
            return _unavailable(
                "no hip-bone voxels: the bottom of the range (the ischia) is unknown"
            )
        start = int(rows[0])
        if start == 0:
            return _unavailable(
                "the hip bones reach the bottom slice of the field of view: the ischia may "
                "lie below it"
            )
        last = nz - 1 if top is None else int(top)
        if not 0 <= last < nz:
            raise InvalidInputError(f"top {top} is not a slice index in 0..{nz - 1}")
        if last < start:
            return _unavailable(
                f"the top slice {last} is below the bottom of the hip bones (slice {start})"
            )
        stop = last + 1

    counted = per_slice[start:stop]
    n = stop - start
    with_fat = int(np.count_nonzero(counted))
    if with_fat == 0:
        return _unavailable(f"no fat in slices {start}..{stop - 1}", (start, stop))
    if with_fat < min_fat_slices * n:
        return _unavailable(
            f"fat on only {with_fat} of the {n} slices from the hip bones up: a partial "
            "segmentation (e.g. an L3 band) cannot give whole-body fat",
            (start, stop),
        )
    volume = float(counted.sum())
    if voxel_volume_ml is not None:  # a mask: voxel count x voxel volume
        volume *= voxel_volume_ml
    return DecazesFat(volume, (start, stop), with_fat, "")


# --------------------------------------------------------------------------- tables


def normalisation_constants(
    meta: Mapping[str, Any] | pd.Series,
    *,
    units: str | None = None,
    fat: DecazesFat | float | None = None,
    columns: ColumnMap | None = None,
    subject: str | None = None,
    half_life_s: float | None = None,
) -> dict[str, Any]:
    """SUV/SUL denominators of one subject from its metadata.

    Parameters
    ----------
    meta : mapping or Series
        The subject's metadata: a spreadsheet row, a BIDS sidecar merged with its
        ``participants.tsv`` row, DICOM attributes. Columns are recognised by their usual
        spellings (:mod:`petzarr.analytics.tables.metadata_columns`).
    units : str, optional
        The PET's units (``"Bq/mL"``, DICOM ``"BQML"``, ``"kBq/mL"``, ``"CNTS"``, ...).
        Default: a ``Units`` column, else Bq/mL (noted). Not Bq/mL-like: every
        denominator is NaN, with the reason in ``Note``.
    fat : DecazesFat or float, optional
        For the Decazes SUL: the result of :func:`decazes_fat`, or the fat volume [mL]
        from the ischia to the vertex.
    columns : ColumnMap, optional
        Column names (and units) that override recognition.
    subject : str, optional
        The subject's id; default the recognised subject column.
    half_life_s : float, optional
        Radionuclide half-life [s] for decay correction; default a
        ``RadionuclideHalfLife`` column, else F-18 (6586.2 s).

    Returns
    -------
    dict
        Keys :data:`NORM_COLUMNS`: ``Subject``, the four denominators [Bq/mL],
        ``Decay Corrected`` (the activity was decayed to scan start), ``Note`` (why a
        value is NaN, what was assumed; ``""`` when nothing), ``PET to Bq/mL`` (multiply
        the PET by it before dividing by a denominator), and the inputs and lean body
        masses used.

    Raises
    ------
    InvalidInputError
        A value is present but unusable (not a number, implausible for its unit, a time
        that does not parse, a scan before its injection); the message names the subject
        and the column.

    Examples
    --------
    >>> row = {"Subject": "sub-001", "Injected Activity [MBq]": 250.0, "Weight [kg]": 80,
    ...        "Height [cm]": 180, "Sex": "M", "Injection Time": "09:00:00",
    ...        "AcquisitionTime": "100000.00", "Units": "BQML"}
    >>> out = normalisation_constants(row)
    >>> out["Uptake Time [s]"], out["Decay Corrected"]
    (3600.0, True)
    >>> round(out["SUV Denominator [Bq/mL]"], 4), round(out["SUL Janma Denominator [Bq/mL]"], 4)
    (2139.4779, 2772.6279)
    >>> out["Note"]
    'F-18 half-life (6586.2 s) assumed; no CT fat volume given: no Decazes SUL'
    >>> normalisation_constants(row, units="CNTS")["SUV Denominator [Bq/mL]"]
    nan
    """
    cols = resolve_columns(meta.keys(), columns)
    if subject is None and cols.subject is not None and not is_missing(meta[cols.subject]):
        subject = str(meta[cols.subject])
    return _constants(meta, cols, subject=subject, units=units, fat=fat, half_life_s=half_life_s)


def norms_table(
    df: pd.DataFrame,
    *,
    units: str | None = None,
    fat: Mapping[str, DecazesFat | float] | pd.Series | None = None,
    columns: ColumnMap | None = None,
    half_life_s: float | None = None,
) -> pd.DataFrame:
    """SUV/SUL denominators of every subject of a metadata table, one row each.

    Parameters
    ----------
    df : DataFrame
        One row per subject; the subject id in a recognised column (``Subject``,
        ``participant_id``, ``Patient``, ...) or else in a named index.
    units, columns, half_life_s
        As in :func:`normalisation_constants`, for every row.
    fat : mapping or Series, optional
        Subject id -> :class:`DecazesFat` or fat volume [mL] for the Decazes SUL.

    Returns
    -------
    DataFrame
        Columns :data:`NORM_COLUMNS`, rows in the order of ``df``.

    Examples
    --------
    hedyPET's ``metadata_80.csv`` layout (no times, no height):

    >>> df = pd.DataFrame({"Subject": ["sub-072", "sub-063"], "Weight [kg]": [70, 58],
    ...                    "Demographic Group [Sex,Age]": ["F18-34", "F18-34"],
    ...                    "Injected Activity [MBq]": [27.895853241040463, 24.62279308017752]})
    >>> out = norms_table(df)
    >>> out["SUV Denominator [Bq/mL]"].round(6).tolist()
    [398.512189, 424.530915]
    >>> out["Decay Corrected"].tolist()
    [False, False]
    """
    cols = resolve_columns(df.columns, columns)
    if cols.subject is not None:
        subjects = [str(s) for s in df[cols.subject]]
    elif df.index.name is not None:
        subjects = [str(s) for s in df.index]
    else:
        raise InvalidInputError(
            f"no subject column among {list(df.columns)}: add 'Subject', name the index, "
            "or pass ColumnMap(subject=...)"
        )
    dupes = sorted(s for s, n in Counter(subjects).items() if n > 1)
    if dupes:
        raise InvalidInputError(f"subjects {dupes} appear more than once; one row per subject")
    fat_of = None if fat is None else dict(fat.items())
    rows = []
    for sid, record in zip(subjects, df.to_dict("records")):
        if fat_of is None:
            subject_fat: DecazesFat | float | None = None
        elif sid in fat_of:
            subject_fat = fat_of[sid]
        else:
            subject_fat = _unavailable("no fat volume given for this subject")
        rows.append(
            _constants(
                record, cols, subject=sid, units=units, fat=subject_fat, half_life_s=half_life_s
            )
        )
    return pd.DataFrame(rows, columns=list(NORM_COLUMNS))


# --------------------------------------------------------------------------- one row


def _constants(
    meta: Mapping[str, Any] | pd.Series,
    cols: ResolvedColumns,
    *,
    subject: str | None,
    units: str | None,
    fat: DecazesFat | float | None,
    half_life_s: float | None,
) -> dict[str, Any]:
    who = f"subject {subject!r}" if subject else "subject (no id)"

    def value(key: str | None) -> Any:
        return None if key is None else meta[key]

    def where(key: str | None) -> str:
        return f"{who}, column {key!r}"

    notes: list[str] = []

    # PET units: argument, column, or assumed.
    raw_units = units if units is not None else value(cols.units)
    if is_missing(raw_units):
        factor = 1.0
        notes.append("PET units not given: Bq/mL assumed")
    else:
        factor, reason = parse_pet_units(raw_units)
        if reason:
            notes.append(reason)

    # Activity, decayed to scan start when both times are known.
    unit = cols.activity_unit
    if not unit and cols.activity_unit_column is not None:
        unit_value = value(cols.activity_unit_column)
        unit = "" if is_missing(unit_value) else str(unit_value)
    activity = (
        None
        if cols.activity is None
        else parse_activity_bq(meta[cols.activity], unit, where=where(cols.activity))
    )
    if activity is None:
        notes.append("no injected activity: no SUV or SUL")
    injected = parse_time(value(cols.injection_time), where=where(cols.injection_time))
    scan = parse_time(value(cols.scan_time), where=where(cols.scan_time))
    uptake = uptake_seconds(
        injected, scan, where=f"{who}, columns {cols.injection_time!r} -> {cols.scan_time!r}"
    )
    at_scan = activity
    if uptake is None:
        missing = [name for name, t in (("injection", injected), ("scan-start", scan)) if t is None]
        notes.append(f"{' and '.join(missing)} time not given: activity not decay-corrected")
    elif activity is not None:
        t_half = half_life_s
        if t_half is None:
            t_half = parse_half_life_s(
                value(cols.half_life), cols.half_life_unit, where=where(cols.half_life)
            )
        if t_half is None:
            t_half = F18_HALF_LIFE_S
            if uptake > 0:
                notes.append(f"F-18 half-life ({F18_HALF_LIFE_S} s) assumed")
        elif t_half <= 0:
            raise InvalidInputError(f"{who}: half_life_s must be positive, got {t_half}")
        at_scan = float(decay_correct(activity, uptake, t_half))

    # Body.
    weight = parse_weight_kg(value(cols.weight), cols.weight_unit, where=where(cols.weight))
    height = parse_height_m(value(cols.height), cols.height_unit, where=where(cols.height))
    raw_sex = value(cols.sex)
    sex = parse_sex(raw_sex, where=where(cols.sex))
    if weight is None:
        notes.append("no body weight: no SUV or SUL")

    lbm_j = lbm_m = math.nan
    if weight is not None:
        why_not = []
        if height is None:
            why_not.append("no height")
        if sex is None:
            why_not.append("no sex" if is_missing(raw_sex) else f"sex {raw_sex!r} is not M/F")
        if why_not:
            notes.append(f"{', '.join(why_not)}: no James or Janmahasatian SUL")
        if height is not None and sex is not None:
            lbm_j = float(lbm_james(weight, height, sex))
            lbm_m = float(lbm_janma(weight, height, sex))
            a, b = _JAMES[sex]
            peak = a * (100 * height) ** 2 / (2 * b)
            if lbm_j <= 0:
                notes.append("James LBM <= 0 at this weight and height: no James SUL")
                lbm_j = math.nan
            elif weight > peak:
                notes.append(
                    f"James LBM falls with weight above {peak:.1f} kg at this height "
                    "(prefer Janmahasatian)"
                )

    # Decazes.
    lbm_d = fat_ml = math.nan
    if fat is None:
        notes.append("no CT fat volume given: no Decazes SUL")
    else:
        if isinstance(fat, DecazesFat):
            fat_ml = fat.volume_ml
            if fat.reason:
                notes.append(f"Decazes: {fat.reason}")
        else:
            fat_ml = float(fat)
            if not (math.isfinite(fat_ml) and fat_ml >= 0):
                raise InvalidInputError(f"{who}: fat volume {fat!r} mL must be finite and >= 0")
        if weight is not None and math.isfinite(fat_ml):
            lbm_d = float(lbm_decazes(weight, fat_ml))
            if lbm_d <= 0:
                notes.append("Decazes fat mass exceeds the body weight: no Decazes SUL")
                lbm_d = math.nan

    def denominator(mass: float | None) -> float:
        if at_scan is None or mass is None or not math.isfinite(factor):
            return math.nan
        return float(suv_denominator(at_scan, mass))

    return {
        "Subject": subject,
        SUV: denominator(weight),
        SUL_JAMES: denominator(lbm_j),
        SUL_JANMA: denominator(lbm_m),
        SUL_DECAZES: denominator(lbm_d),
        "Decay Corrected": uptake is not None and activity is not None,
        "Note": "; ".join(notes),
        "PET to Bq/mL": factor,
        "Injected Activity [Bq]": math.nan if activity is None else activity,
        "Uptake Time [s]": math.nan if uptake is None else uptake,
        "Activity at Scan Start [Bq]": math.nan if at_scan is None else at_scan,
        "Weight [kg]": math.nan if weight is None else weight,
        "Height [m]": math.nan if height is None else height,
        "Sex": sex,
        "LBM James [kg]": lbm_j,
        "LBM Janma [kg]": lbm_m,
        "LBM Decazes [kg]": lbm_d,
        "Decazes Fat Volume [mL]": fat_ml,
    }
