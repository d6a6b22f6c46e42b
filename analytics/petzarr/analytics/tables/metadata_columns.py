"""Which spreadsheet column or sidecar key holds the dose, the weight, the times ...

Subject metadata arrives as spreadsheets (``PT-details.xlsx``, hedyPET's ``metadata_80.csv``),
BIDS ``participants.tsv`` plus PET sidecars, or DICOM-derived tables, each spelling the same
facts differently. This module finds the keys (:func:`resolve_columns`, with explicit names
in a :class:`ColumnMap` winning) and validates single values at that boundary (the
``parse_*`` functions), so :mod:`petzarr.analytics.tables.suv_norms` works on plain numbers.

Names are matched after dropping case, spaces and punctuation, with a unit in brackets or
parentheses (``Weight [kg]``, ``Height (cm)``) or a trailing unit token (``weight_kg``) split
off first. Recognised, highest priority first:

============== ===================================================================================
field          names (normalised)
============== ===================================================================================
subject        Subject, SubjectID, participant_id, Participant, Patient, PatientID, Case, ID
activity       Injected Activity, Injected Dose, InjectedRadioactivity, RadionuclideTotalDose
               (DICOM, Bq); a bare ``Dose`` or ``Activity`` (a CT dose? which unit?) only when
               named in a :class:`ColumnMap`
activity unit  a unit in the activity column's name, else a column InjectedRadioactivityUnits
               (BIDS), InjectedActivityUnits, DoseUnits, ActivityUnits, else
               :attr:`ColumnMap.activity_unit`; never guessed from the magnitude
weight         Weight, PatientWeight (DICOM, kg), Body Weight; kg unless the name says g or lb
height         Height, PatientSize (DICOM), Body Height, Stature; the name's unit, else metres
               below 3 and centimetres from 30 to 300
sex            Sex, PatientSex, Gender, Demographic Group (hedyPET: ``F18-34``, the sex first)
injection time Injection Time, InjectionStart (BIDS), RadiopharmaceuticalStartDateTime,
               RadiopharmaceuticalStartTime (DICOM), Time of Injection
scan time      ScanStart (BIDS), AcquisitionDateTime, Acquisition Time, Acquisition Start,
               Scan Time, SeriesDateTime, SeriesTime (DICOM)
PET units      Units (DICOM/BIDS), PET Units, Image Units
half-life      RadionuclideHalfLife (DICOM, s), Half-Life (s unless the name says min or h)
============== ===================================================================================
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, time, timedelta, timezone
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from petzarr.cohort.errors import InvalidInputError

__all__ = [
    "ColumnMap",
    "ResolvedColumns",
    "TimeValue",
    "is_missing",
    "parse_activity_bq",
    "parse_half_life_s",
    "parse_height_m",
    "parse_pet_units",
    "parse_sex",
    "parse_time",
    "parse_weight_kg",
    "resolve_columns",
    "split_column_name",
    "uptake_seconds",
]

#: A parsed time: a clock time, a date-time, or seconds from a zero shared by both times
#: (BIDS ``InjectionStart``/``ScanStart`` are seconds relative to ``TimeZero``).
TimeValue = datetime | time | float

_ALIASES: dict[str, tuple[str, ...]] = {
    "subject": (
        "subject",
        "subjectid",
        "participantid",
        "participant",
        "patient",
        "patientid",
        "case",
        "caseid",
        "id",
    ),
    "activity": (
        "injectedactivity",
        "injecteddose",
        "injectedradioactivity",
        "radionuclidetotaldose",
    ),
    "activity_unit_column": (
        "injectedradioactivityunits",
        "injectedradioactivityunit",
        "injectedactivityunits",
        "injectedactivityunit",
        "injecteddoseunits",
        "doseunits",
        "activityunits",
    ),
    "weight": ("weight", "patientweight", "bodyweight"),
    "height": ("height", "patientsize", "patientheight", "bodyheight", "stature"),
    "sex": ("sex", "patientsex", "gender", "patientgender", "demographicgroup"),
    "injection_time": (
        "injectiontime",
        "injectionstart",
        "injectionstarttime",
        "injectiondatetime",
        "radiopharmaceuticalstartdatetime",
        "radiopharmaceuticalstarttime",
        "timeofinjection",
    ),
    "scan_time": (
        "scanstart",
        "scanstarttime",
        "scanstartdatetime",
        "acquisitiondatetime",
        "acquisitiontime",
        "acquisitionstart",
        "acquisitionstarttime",
        "scantime",
        "seriesdatetime",
        "seriestime",
    ),
    "units": ("units", "petunits", "petunit", "imageunits"),
    "half_life": ("radionuclidehalflife", "halflife"),
}
# A unit a column's name implies when it carries none (DICOM defines these).
_DEFAULT_UNIT = {"radionuclidetotaldose": "Bq", "radionuclidehalflife": "s"}

_BRACKETED = re.compile(r"^(?P<base>.*?)\s*[\[(](?P<unit>[^\])]*)[\])]\s*$")
_TRAILING_UNIT = re.compile(
    r"^(?P<base>.*?[a-z0-9])[\s_.\-]+(?P<unit>kg|g|lbs?|m|cm|mm|in|bq|kbq|mbq|gbq|mci|[uµ]ci|s|min|h)$",
    re.IGNORECASE,
)

_ACTIVITY_UNITS = {
    "bq": 1.0,
    "kbq": 1e3,
    "mbq": 1e6,
    "gbq": 1e9,
    "uci": 3.7e4,
    "µci": 3.7e4,
    "mci": 3.7e7,
    "ci": 3.7e10,
}
_WEIGHT_UNITS = {"kg": 1.0, "g": 1e-3, "lb": 0.45359237, "lbs": 0.45359237}
_HEIGHT_UNITS = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "in": 0.0254}
_TIME_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}
# Plausible ranges after conversion; outside them the unit is almost surely wrong (a dose in
# Bq read as MBq is 1e6 too large), so the value is refused rather than used.
_ACTIVITY_RANGE_BQ = (1e6, 1e11)
_WEIGHT_RANGE_KG = (1.0, 650.0)
_HEIGHT_RANGE_M = (0.3, 3.0)

_MISSING_STRINGS = frozenset({"", "n/a", "na", "nan", "none", "null", "nat", "-"})


@dataclass(frozen=True)
class ColumnMap:
    """Explicit column names (and units) that override recognition.

    Every field is optional: ``None`` lets :func:`resolve_columns` find the column by its
    usual spellings. A named column must exist. The ``*_unit`` fields give the unit of a
    column whose name does not say it (``activity_unit="MBq"`` for a column ``Dose``); a
    unit written in the name, ``Dose [MBq]``, needs none.

    Examples
    --------
    >>> ColumnMap(activity="Dose", activity_unit="mCi").to_dict()["activity_unit"]
    'mCi'
    >>> ColumnMap.from_dict({"weight": "kg", "colour": "blue"})
    ColumnMap(subject=None, activity=None, weight='kg', height=None, sex=None, \
injection_time=None, scan_time=None, units=None, half_life=None, activity_unit=None, \
activity_unit_column=None, weight_unit=None, height_unit=None, half_life_unit=None)
    """

    subject: str | None = None
    activity: str | None = None
    weight: str | None = None
    height: str | None = None
    sex: str | None = None
    injection_time: str | None = None
    scan_time: str | None = None
    units: str | None = None
    half_life: str | None = None
    activity_unit: str | None = None
    activity_unit_column: str | None = None
    weight_unit: str | None = None
    height_unit: str | None = None
    half_life_unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ResolvedColumns:
    """The key holding each field in one table (``None``: absent), and units from names.

    ``*_unit`` is the unit the name or the :class:`ColumnMap` gives (``""`` when neither
    does); ``activity_unit_column`` a column whose *values* are the activity's unit.
    """

    subject: str | None = None
    activity: str | None = None
    weight: str | None = None
    height: str | None = None
    sex: str | None = None
    injection_time: str | None = None
    scan_time: str | None = None
    units: str | None = None
    half_life: str | None = None
    activity_unit_column: str | None = None
    activity_unit: str = ""
    weight_unit: str = ""
    height_unit: str = ""
    half_life_unit: str = ""


def split_column_name(name: str) -> tuple[str, str]:
    """A column name as ``(normalised base, unit)``.

    Examples
    --------
    >>> split_column_name("Injected Activity [MBq]")
    ('injectedactivity', 'MBq')
    >>> split_column_name("participant_id"), split_column_name("height_cm")
    (('participantid', ''), ('height', 'cm'))
    """
    text = str(name).strip()
    unit = ""
    m = _BRACKETED.match(text)
    if m:
        text, unit = m["base"], m["unit"].strip()
    else:
        m = _TRAILING_UNIT.match(text)
        if m:
            text, unit = m["base"], m["unit"]
    return re.sub(r"[^a-z0-9]", "", text.lower()), unit


def resolve_columns(keys: Iterable[object], columns: ColumnMap | None = None) -> ResolvedColumns:
    """Find which of ``keys`` holds each field, explicit names in ``columns`` first.

    Raises :class:`InvalidInputError` when an explicit name is absent or when two keys
    are the same spelling of one field (``Weight`` and ``weight``).

    Examples
    --------
    >>> cols = resolve_columns(["Subject", "Weight [kg]", "Injected Activity [MBq]", "Sex"])
    >>> cols.activity, cols.activity_unit, cols.weight, cols.height
    ('Injected Activity [MBq]', 'MBq', 'Weight [kg]', None)
    >>> resolve_columns(["PatientWeight", "Dose"], ColumnMap(activity="Dose",
    ...                 activity_unit="MBq")).activity_unit
    'MBq'
    """
    explicit = columns or ColumnMap()
    names = [k for k in keys if isinstance(k, str)]
    by_base: dict[str, list[tuple[str, str]]] = {}
    for key in names:
        base, unit = split_column_name(key)
        by_base.setdefault(base, []).append((key, unit))

    found: dict[str, str | None] = {}
    units: dict[str, str] = {}
    for field, aliases in _ALIASES.items():
        name = getattr(explicit, field)
        if name is not None:
            if name not in names:
                raise InvalidInputError(
                    f"column {name!r} (given for {field}) is not in the table; it has {names}"
                )
            found[field] = name
            base, unit = split_column_name(name)
            units[field] = unit or _DEFAULT_UNIT.get(base, "")
            continue
        found[field] = None
        for alias in aliases:
            hits = by_base.get(alias, [])
            if len(hits) > 1:
                raise InvalidInputError(
                    f"columns {[k for k, _ in hits]} all spell the {field}; name the one to "
                    f"use with ColumnMap({field}=...)"
                )
            if hits:
                found[field], unit = hits[0]
                units[field] = unit or _DEFAULT_UNIT.get(alias, "")
                break
    return ResolvedColumns(
        subject=found["subject"],
        activity=found["activity"],
        weight=found["weight"],
        height=found["height"],
        sex=found["sex"],
        injection_time=found["injection_time"],
        scan_time=found["scan_time"],
        units=found["units"],
        half_life=found["half_life"],
        activity_unit_column=found["activity_unit_column"],
        activity_unit=explicit.activity_unit or units.get("activity", ""),
        weight_unit=explicit.weight_unit or units.get("weight", ""),
        height_unit=explicit.height_unit or units.get("height", ""),
        half_life_unit=explicit.half_life_unit or units.get("half_life", ""),
    )


# --------------------------------------------------------------------------- values


def is_missing(value: object) -> bool:
    """Whether a cell holds no value: None, NaN/NaT/NA, or an empty / ``n/a`` string.

    >>> [is_missing(v) for v in (None, float("nan"), pd.NA, "n/a", " ", 0, "M")]
    [True, True, True, True, True, False, False]
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _MISSING_STRINGS
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def _number(value: object, *, where: str, what: str) -> float:
    if isinstance(value, bool | np.bool_):
        raise InvalidInputError(f"{where}: {what} is {value!r}, not a number")
    if isinstance(value, numbers.Real):
        x = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+,\d+", text):  # decimal comma
            text = text.replace(",", ".")
        try:
            x = float(text)
        except ValueError:
            raise InvalidInputError(f"{where}: {what} {value!r} is not a number") from None
    else:
        raise InvalidInputError(f"{where}: {what} {value!r} is not a number")
    if not math.isfinite(x):
        raise InvalidInputError(f"{where}: {what} is {value!r}; give a finite number")
    return x


def _unit_factor(unit: str, table: Mapping[str, float], *, where: str, what: str) -> float:
    key = unit.strip().lower().replace(" ", "")
    if key not in table:
        raise InvalidInputError(
            f"{where}: unknown {what} unit {unit!r}; use one of {sorted(table)}"
        )
    return table[key]


def _in_range(x: float, lo: float, hi: float, *, where: str, what: str, hint: str) -> float:
    if not lo <= x <= hi:
        raise InvalidInputError(f"{where}: {what} {x:g} is outside {lo:g}..{hi:g}; {hint}")
    return x


def parse_activity_bq(value: object, unit: str, *, where: str = "activity") -> float | None:
    """The injected activity in Bq, or ``None`` when missing.

    ``unit`` is Bq, kBq, MBq, GBq, uCi, mCi or Ci. The result must lie in 1 MBq .. 100 GBq,
    which catches a unit off by 1e3 or more.

    >>> parse_activity_bq("27.5", "MBq"), parse_activity_bq(2.75e8, "Bq")
    (27500000.0, 275000000.0)
    """
    if is_missing(value):
        return None
    if not unit:
        raise InvalidInputError(
            f"{where}: the activity's unit is unknown; put it in the column name "
            "('Injected Activity [MBq]'), add an InjectedRadioactivityUnits column, or pass "
            "ColumnMap(activity_unit='MBq')"
        )
    x = _number(value, where=where, what="activity") * _unit_factor(
        unit, _ACTIVITY_UNITS, where=where, what="activity"
    )
    return _in_range(
        x, *_ACTIVITY_RANGE_BQ, where=where, what="activity [Bq]", hint=f"is {unit!r} right?"
    )


def parse_weight_kg(value: object, unit: str = "", *, where: str = "weight") -> float | None:
    """Body weight in kg (unit kg, g or lb; default kg), or ``None`` when missing.

    >>> parse_weight_kg(70), parse_weight_kg("70500", "g")
    (70.0, 70.5)
    """
    if is_missing(value):
        return None
    x = _number(value, where=where, what="weight")
    if unit:
        x = x * _unit_factor(unit, _WEIGHT_UNITS, where=where, what="weight")
    return _in_range(
        x, *_WEIGHT_RANGE_KG, where=where, what="weight [kg]", hint="is the unit right?"
    )


def parse_height_m(value: object, unit: str = "", *, where: str = "height") -> float | None:
    """Body height in metres, or ``None`` when missing.

    With no ``unit`` (m, cm, mm, in) the magnitude decides: below 3 is metres, 30 to 300
    centimetres; anything else is refused as ambiguous.

    >>> parse_height_m(1.7), parse_height_m(170), parse_height_m("1700", "mm")
    (1.7, 1.7, 1.7)
    """
    if is_missing(value):
        return None
    x = _number(value, where=where, what="height")
    if unit:
        x = x * _unit_factor(unit, _HEIGHT_UNITS, where=where, what="height")
    elif 30 <= x <= 300:
        x = x / 100
    elif not 0 < x < 3:
        raise InvalidInputError(
            f"{where}: height {x:g} is neither metres (< 3) nor centimetres (30..300); "
            "give the unit in the column name or ColumnMap(height_unit=...)"
        )
    return _in_range(x, *_HEIGHT_RANGE_M, where=where, what="height [m]", hint="is the unit right?")


def parse_sex(value: object, *, where: str = "sex") -> Literal["M", "F"] | None:
    """``"M"``, ``"F"``, or ``None`` when missing or recorded as other/unknown.

    Accepts M/F, male/female, man/woman in any case, and strings that start with one of
    those followed by a non-letter (hedyPET's ``F18-34``).

    >>> [parse_sex(v) for v in ("M", "female", "F18-34", "O", None)]
    ['M', 'F', 'F', None, None]
    """
    if is_missing(value):
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: sex {value!r} is not M or F")
    word = re.match(r"[A-Za-z]*", value.strip())
    token = word.group(0).lower() if word else ""
    if token in {"m", "male", "man"}:
        return "M"
    if token in {"f", "female", "woman"}:
        return "F"
    if token in {"o", "other", "u", "unknown", "x"}:
        return None
    raise InvalidInputError(f"{where}: sex {value!r} is not M/F, male/female or O/unknown")


def parse_half_life_s(value: object, unit: str = "", *, where: str = "half-life") -> float | None:
    """A half-life in seconds (unit s, min or h; default s), or ``None`` when missing.

    >>> parse_half_life_s(6586.2), parse_half_life_s("109.77", "min")
    (6586.2, 6586.2)
    """
    if is_missing(value):
        return None
    x = _number(value, where=where, what="half-life")
    if unit:
        x = x * _unit_factor(unit, _TIME_UNITS, where=where, what="half-life")
    if x <= 0:
        raise InvalidInputError(f"{where}: half-life {x:g} s must be positive")
    return x


_PET_ACTIVITY = re.compile(r"^(?P<prefix>[kmg]?)bq(/|\.|·|per)?(ml|cc|cm3|cm\^3|cm³)(-1|\^-1|⁻¹)?$")
_PET_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_PET_NOT_ACTIVITY = frozenset(
    {"cnts", "counts", "propcnts", "cps", "none", "1/cm", "cm2", "cm2ml", "pcnt", "mgminml"}
)


def parse_pet_units(value: object) -> tuple[float, str]:
    """``(factor to Bq/mL, reason)``: the factor is NaN, with a reason, for other units.

    Bq/mL in any usual spelling (DICOM ``BQML``, ``Bq/ml``, ``Bq/cc``, ``Bq.mL-1``) has
    factor 1; kBq/mL 1e3 and MBq/mL 1e6 (multiply the PET by it to get Bq/mL). Counts
    (``CNTS``), images already in SUV (``GML``) and anything unrecognised get NaN.

    >>> parse_pet_units("BQML"), parse_pet_units("kBq/mL")
    ((1.0, ''), (1000.0, ''))
    >>> parse_pet_units("CNTS")
    (nan, "PET units 'CNTS' are not activity concentration (Bq/mL): no SUV or SUL")
    """
    raw = str(value).strip()
    key = re.sub(r"\s+", "", raw.lower())
    if key == "bqml":
        return 1.0, ""
    m = _PET_ACTIVITY.match(key) or re.fullmatch(r"(?P<prefix>[kmg]?)bqml", key)
    if m:
        return _PET_PREFIX[m["prefix"]], ""
    if key in {"gml", "g/ml"}:
        return math.nan, f"PET units {raw!r}: the image is already SUV (g/mL); no denominator"
    if key in _PET_NOT_ACTIVITY:
        return math.nan, (
            f"PET units {raw!r} are not activity concentration (Bq/mL): no SUV or SUL"
        )
    return math.nan, f"PET units {raw!r} not recognised as Bq/mL: no SUV or SUL"


# --------------------------------------------------------------------------- times

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?$")
_DICOM_TM = re.compile(r"^(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6})\d*)?)?)?$")
_DICOM_DT = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6})\d*)?([+-]\d{4})?$"
)


def _micro(fraction: str | None) -> int:
    return int((fraction or "0").ljust(6, "0"))


def parse_time(value: object, *, where: str = "time") -> TimeValue | None:
    """A clock time, a date-time, or seconds (numbers), or ``None`` when missing.

    Strings: ``HH:MM[:SS[.ffffff]]``, DICOM TM ``HHMMSS.ffffff`` (also ``HH``, ``HHMM``),
    DICOM DT ``YYYYMMDDHHMMSS.ffffff[+ZZZZ]`` and ISO 8601 date-times. Objects:
    ``datetime.time``, ``datetime.datetime``, ``pandas.Timestamp``, ``numpy.datetime64``.
    Plain numbers and timedeltas are seconds from a zero both times share (BIDS).

    >>> parse_time("10:15:30"), parse_time("101530.5")
    (datetime.time(10, 15, 30), datetime.time(10, 15, 30, 500000))
    >>> parse_time("2024-03-01T10:15:30")
    datetime.datetime(2024, 3, 1, 10, 15, 30)
    >>> parse_time(120)
    120.0
    """
    if is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime | time):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).to_pydatetime()
    if isinstance(value, timedelta | np.timedelta64):
        return pd.Timedelta(value).total_seconds()
    if isinstance(value, bool | np.bool_):
        raise InvalidInputError(f"{where}: {value!r} is not a time")
    if isinstance(value, numbers.Real):
        return _number(value, where=where, what="time [s]")
    if not isinstance(value, str):
        raise InvalidInputError(f"{where}: {value!r} is not a time")
    text = value.strip()
    try:
        if m := _CLOCK.match(text) or _DICOM_TM.match(text):
            hh, mm, ss, frac = m.groups()
            return time(int(hh), int(mm or 0), int(ss or 0), _micro(frac))
        if m := _DICOM_DT.match(text):
            year, month, day, hh, mm, ss = (int(g) for g in m.groups()[:6])
            frac, zone = m.group(7), m.group(8)
            tz = None
            if zone:
                sign = -1 if zone[0] == "-" else 1
                tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])))
            return datetime(year, month, day, hh, mm, ss, _micro(frac), tzinfo=tz)
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"{where}: {value!r} is not a time; use HH:MM:SS, DICOM HHMMSS.ffffff or "
            "YYYYMMDDHHMMSS, or an ISO date-time"
        ) from None


def _seconds_of_day(t: datetime | time) -> float:
    clock = t.time() if isinstance(t, datetime) else t
    return clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6


def uptake_seconds(
    injection: TimeValue | None, scan: TimeValue | None, *, where: str = "times"
) -> float | None:
    """Seconds from injection to scan start, or ``None`` when either time is unknown.

    Two date-times subtract; if either is a clock time only, the clocks of both are used,
    so a scan after midnight needs full date-times. Two numbers subtract (BIDS seconds).
    A scan starting before the injection is refused.

    >>> uptake_seconds(time(9, 0), time(10, 1, 30))
    3690.0
    >>> uptake_seconds(0.0, 3600.0), uptake_seconds(None, time(10))
    (3600.0, None)
    """
    if injection is None or scan is None:
        return None
    if isinstance(injection, float) and isinstance(scan, float):
        delta = scan - injection
    elif isinstance(injection, float) or isinstance(scan, float):
        raise InvalidInputError(
            f"{where}: one time is in seconds and the other a clock time ({injection!r}, "
            f"{scan!r}); give both the same way"
        )
    elif isinstance(injection, datetime) and isinstance(scan, datetime):
        if (injection.tzinfo is None) != (scan.tzinfo is None):
            raise InvalidInputError(
                f"{where}: one date-time has a time zone and the other not ({injection}, {scan})"
            )
        delta = (scan - injection).total_seconds()
    else:
        delta = _seconds_of_day(scan) - _seconds_of_day(injection)
    if delta < 0:
        raise InvalidInputError(
            f"{where}: the scan starts {-delta:g} s before the injection ({injection} -> "
            f"{scan}); check the times, and give full date-times if the scan crosses midnight"
        )
    return delta
