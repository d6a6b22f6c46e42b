"""SUV/SUL normalisation constants: formulas by hand, decay, units, column spellings,
the Decazes fat kernel on generated masks, then hedyPET's published constants.

The published-table tests read ``../shared/reference/hedypet/metadata_80.csv`` (beside the
repository) and skip when it is absent. They establish, for all 80 subjects:

- ``SUV Denominator [Bq/mL]`` from ``Weight [kg]`` and ``Injected Activity [MBq]``, bit for
  bit (no decay correction: hedyPET's scans start at injection);
- heights are not published, but James' and Janmahasatian's formulas each invert to a
  height; the two agree to 1e-15 m and are whole half-centimetres, and with those heights
  and the sex from ``Demographic Group`` both SUL denominators are reproduced bit for bit.
"""

from __future__ import annotations

import doctest
import math
import pickle
from datetime import datetime, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from petzarr.analytics.tables import metadata_columns
from petzarr.analytics.tables import suv_norms as norms
from petzarr.analytics.tables.metadata_columns import (
    ColumnMap,
    parse_height_m,
    parse_pet_units,
    parse_sex,
    parse_time,
    resolve_columns,
    split_column_name,
    uptake_seconds,
)
from petzarr.analytics.tables.suv_norms import (
    F18_HALF_LIFE_S,
    NORM_COLUMNS,
    SUL_DECAZES,
    SUL_JAMES,
    SUL_JANMA,
    SUV,
    DecazesFat,
    decay_correct,
    decazes_fat,
    lbm_decazes,
    lbm_james,
    lbm_janma,
    normalisation_constants,
    norms_table,
)
from petzarr.cohort.errors import InvalidInputError

REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / "hedypet"

# A man: 250 MBq, 80 kg, 1.80 m.
MAN = {
    "Subject": "sub-001",
    "Injected Activity [MBq]": 250.0,
    "Weight [kg]": 80,
    "Height [m]": 1.80,
    "Sex": "M",
}
# Hand-computed in float64, hedyPET's operation order:
#   SUV   250e6 / (80 * 1000)                              = 3125.0
#   James 1.10 * 80 - 128 * (80 / (1.80 * 100))**2         = 88 - 25.28395061728395
#   Janma 9270 * 80 / (6680 + 216 * (80 / 1.80**2))        = 741600 / 12013.333333333332
MAN_SUV = 3125.0
MAN_LBM_JAMES = 62.71604938271605
MAN_LBM_JANMA = 61.73140954495006
# A woman: 70 kg, 1.70 m, 28 MBq.
#   James 1.07 * 70 - 148 * (70 / 170)**2 = 74.9 - 25.093425605536332
#   Janma 9270 * 70 / (8780 + 244 * (70 / 1.70**2)) = 648900 / 14690.034602076124
WOMAN_LBM_JAMES = 49.806574394463674
WOMAN_LBM_JANMA = 44.17280269089984


def _close(got: float, want: float, rel: float = 1e-14) -> bool:
    return abs(got - want) <= rel * abs(want)


# --------------------------------------------------------------------------- formulas


def test_lbm_formulas_match_hand_computation():
    assert _close(float(lbm_james(80, 1.80, "M")), MAN_LBM_JAMES)
    assert _close(float(lbm_janma(80, 1.80, "M")), MAN_LBM_JANMA)
    assert _close(float(lbm_james(70, 1.70, "F")), WOMAN_LBM_JAMES)
    assert _close(float(lbm_janma(70, 1.70, "F")), WOMAN_LBM_JANMA)
    # arrays of weights and heights, one sex
    got = lbm_janma(np.array([80.0, 80.0]), np.array([1.80, 1.80]), "M")
    np.testing.assert_array_equal(got, [MAN_LBM_JANMA, MAN_LBM_JANMA])
    with pytest.raises(InvalidInputError, match="'M' or 'F'"):
        lbm_james(80, 1.8, "male")


def test_one_subject_all_denominators():
    out = normalisation_constants(MAN, fat=12_000.0)
    assert list(out) == list(NORM_COLUMNS)
    assert out["Subject"] == "sub-001"
    assert out[SUV] == MAN_SUV
    assert _close(out[SUL_JAMES], 250e6 / (MAN_LBM_JAMES * 1000))
    assert _close(out[SUL_JANMA], 250e6 / (MAN_LBM_JANMA * 1000))
    lbm_d = 80 - 12_000 * 0.923 / 1000 / 0.716
    assert _close(out["LBM Decazes [kg]"], lbm_d)
    assert _close(out[SUL_DECAZES], 250e6 / (lbm_d * 1000))
    assert out["Decay Corrected"] is False
    assert "not decay-corrected" in out["Note"]
    assert out["PET to Bq/mL"] == 1.0


def test_james_past_its_maximum_is_noted_and_never_negative():
    # 1.07 (100 H)^2 / (2 * 148) = 110.7 kg at 1.75 m: beyond it James falls with weight
    heavy = {
        "Subject": "s",
        "Injected Activity [MBq]": 50.0,
        "Weight [kg]": 132,
        "Height [m]": 1.75,
        "Sex": "F",
    }
    out = normalisation_constants(heavy)
    assert out["LBM James [kg]"] < out["LBM Janma [kg]"] + 30  # still computed, as hedyPET
    assert "James LBM falls with weight above 110.7 kg" in out["Note"]
    # at twice that weight James reaches zero: no SUL, a reason instead
    out = normalisation_constants({**heavy, "Weight [kg]": 240})
    assert math.isnan(out[SUL_JAMES]) and math.isnan(out["LBM James [kg]"])
    assert "James LBM <= 0" in out["Note"]
    assert np.isfinite(out[SUL_JANMA])


# --------------------------------------------------------------------------- decay


HALF = 0.5 ** (3600 / 6586.2)


@pytest.mark.parametrize(
    ("injection", "scan"),
    [
        ("09:00:00", "10:00:00"),
        ("09:00", "10:00:00.000"),
        ("090000", "100000.000000"),  # DICOM TM
        (time(9, 0), time(10, 0)),
        ("2024-03-01T09:00:00", "2024-03-01 10:00:00"),  # ISO
        ("20240301090000.000", "20240301100000"),  # DICOM DT
        (pd.Timestamp("2024-03-01 09:00"), datetime(2024, 3, 1, 10)),
        (np.datetime64("2024-03-01T09:00"), "10:00:00"),  # date-time vs clock: the clocks
        (0, 3600),  # BIDS: seconds from TimeZero
        ("2024-03-01T23:30:00+01:00", "2024-03-02T00:30:00+01:00"),  # past midnight
    ],
)
def test_decay_correction_to_scan_start(injection, scan):
    out = normalisation_constants({**MAN, "Injection Time": injection, "ScanStart": scan})
    assert out["Uptake Time [s]"] == 3600.0
    assert out["Decay Corrected"] is True
    assert _close(
        out["Activity at Scan Start [Bq]"], 250e6 * math.exp(-math.log(2) * 3600 / 6586.2)
    )
    assert _close(out[SUV], MAN_SUV * HALF)
    assert _close(out[SUL_JANMA], 250e6 * HALF / (MAN_LBM_JANMA * 1000))
    assert "F-18 half-life (6586.2 s) assumed" in out["Note"]


def test_decay_helpers_and_half_life_sources():
    assert float(decay_correct(1.0, 2 * F18_HALF_LIFE_S)) == 0.25
    times = {"RadiopharmaceuticalStartTime": "090000", "AcquisitionTime": "100000"}
    # DICOM RadionuclideHalfLife (s), then the argument, win over the F-18 default
    out = normalisation_constants({**MAN, **times, "RadionuclideHalfLife": 4062.6})
    assert _close(out[SUV], MAN_SUV * 0.5 ** (3600 / 4062.6))
    assert "half-life" not in out["Note"]
    out = normalisation_constants({**MAN, **times}, half_life_s=1200.0)
    assert _close(out[SUV], MAN_SUV * 0.125)
    # equal times: corrected by a factor of exactly 1, nothing assumed
    out = normalisation_constants({**MAN, "Injection Time": "09:00", "Scan Start": "09:00"})
    assert out["Decay Corrected"] is True and out[SUV] == MAN_SUV
    assert "half-life" not in out["Note"]


def test_unknown_times_are_said_not_guessed():
    out = normalisation_constants({**MAN, "Injection Time": "09:00", "Acquisition Time": None})
    assert out["Decay Corrected"] is False and math.isnan(out["Uptake Time [s]"])
    assert "scan-start time not given: activity not decay-corrected" in out["Note"]
    assert out[SUV] == MAN_SUV


@pytest.mark.parametrize(
    ("injection", "scan", "match"),
    [
        ("10:00:00", "09:00:00", "before the injection"),
        ("23:30:00", "00:30:00", "crosses midnight"),  # clocks only: refused
        (0, "10:00:00", "seconds and the other a clock"),
        ("10h15", "11:00", "is not a time"),
        ("25:00:00", "11:00", "is not a time"),
        ("2024-03-01T09:00:00+01:00", "2024-03-01T10:00:00", "time zone"),
    ],
)
def test_bad_times_raise_naming_subject_and_column(injection, scan, match):
    with pytest.raises(InvalidInputError, match=match) as info:
        normalisation_constants({**MAN, "Injection Time": injection, "AcquisitionTime": scan})
    assert "sub-001" in str(info.value)


def test_parse_time_forms():
    assert parse_time("101530.123456") == time(10, 15, 30, 123456)
    assert parse_time("1015") == time(10, 15)
    assert parse_time("20240301101530.5+0200").utcoffset().total_seconds() == 7200
    assert parse_time(pd.Timedelta(minutes=2)) == 120.0
    assert parse_time("n/a") is None and parse_time(float("nan")) is None
    assert uptake_seconds(datetime(2024, 3, 1, 23, 30), datetime(2024, 3, 2, 0, 45)) == 4500.0


# --------------------------------------------------------------------------- PET units


@pytest.mark.parametrize("units", ["CNTS", "counts", "PROPCNTS", "GML", "SUVbw", "1/CM"])
def test_pet_not_in_bq_per_ml_gets_no_suv_and_a_reason(units):
    out = normalisation_constants(MAN, units=units, fat=10_000.0)
    for column in (SUV, SUL_JAMES, SUL_JANMA, SUL_DECAZES):
        assert math.isnan(out[column]), column
    assert math.isnan(out["PET to Bq/mL"])
    assert f"PET units {units!r}" in out["Note"]
    # the body's figures are still reported
    assert _close(out["LBM Janma [kg]"], MAN_LBM_JANMA)


def test_units_column_and_spellings():
    out = normalisation_constants({**MAN, "Units": "CNTS"})
    assert math.isnan(out[SUV]) and "not activity concentration" in out["Note"]
    # the argument wins over the column
    assert normalisation_constants({**MAN, "Units": "CNTS"}, units="BQML")[SUV] == MAN_SUV
    for spelling in ("BQML", "Bq/mL", "Bq/ml", "bq/cc", "Bq/cm3", "Bq.mL-1", " Bq / mL "):
        assert parse_pet_units(spelling) == (1.0, ""), spelling
    assert parse_pet_units("kBq/mL") == (1e3, "")
    assert parse_pet_units("MBq/ml") == (1e6, "")
    # kBq/mL: the denominators stay in Bq/mL; the factor converts the image
    out = normalisation_constants(MAN, units="kBq/ml")
    assert out[SUV] == MAN_SUV and out["PET to Bq/mL"] == 1e3
    # not given at all: Bq/mL, and the table says it assumed so
    assert "PET units not given: Bq/mL assumed" in normalisation_constants(MAN)["Note"]
    assert "PET units" not in normalisation_constants(MAN, units="Bq/mL")["Note"]


# --------------------------------------------------------------------------- columns


@pytest.mark.parametrize(
    "meta",
    [
        {
            "Subject": "s",
            "Injected Activity [MBq]": 250,
            "Weight [kg]": 80,
            "Height [m]": 1.8,
            "Sex": "M",
        },
        {
            "Subject": "s",
            "Injected Dose [MBq]": 250,
            "Weight": 80,
            "Height [cm]": 180,
            "Sex": "male",
        },
        {
            "PatientID": "s",
            "RadionuclideTotalDose": 2.5e8,
            "PatientWeight": 80.0,
            "PatientSize": 1.8,
            "PatientSex": "M",
        },
        {
            "participant_id": "s",
            "InjectedRadioactivity": 250,
            "InjectedRadioactivityUnits": "MBq",
            "weight": "80",
            "height": 180,
            "sex": "Male",
        },
        {
            "Patient": "s",
            "Injected Activity (GBq)": 0.25,
            "weight_kg": 80,
            "height_cm": 180,
            "Gender": "m",
        },
        {
            "Subject": "s",
            "injected_activity_mbq": 250,
            "Weight [g]": 80000,
            "Height [mm]": 1800,
            "Demographic Group [Sex,Age]": "M50-69",
        },
        {
            "Subject": "s",
            "Injected Activity [mCi]": 250 / 37,
            "Body Weight [lb]": 80 / 0.45359237,
            "Stature": "1,8",
            "Patient Sex": "MALE",
        },
    ],
)
def test_column_spellings_give_the_same_constants(meta):
    out = normalisation_constants(meta)
    assert out["Subject"] == "s"
    assert _close(out[SUV], MAN_SUV, 1e-12)
    assert _close(out[SUL_JANMA], 250e6 / (MAN_LBM_JANMA * 1000), 1e-12)
    assert _close(out[SUL_JAMES], 250e6 / (MAN_LBM_JAMES * 1000), 1e-12)
    assert out["Sex"] == "M" and _close(out["Height [m]"], 1.8)


def test_explicit_column_map():
    meta = {
        "ID": "s",
        "Dose": 250,
        "kilos": 80,
        "Laenge": 180,
        "Geschlecht": "M",
        "Spritze": "09:00",
        "Start": "10:00",
    }
    cm = ColumnMap(
        activity="Dose",
        activity_unit="MBq",
        weight="kilos",
        height="Laenge",
        height_unit="cm",
        sex="Geschlecht",
        injection_time="Spritze",
        scan_time="Start",
    )
    out = normalisation_constants(meta, columns=cm)
    assert _close(out[SUV], MAN_SUV * HALF)
    assert _close(out[SUL_JAMES], 250e6 * HALF / (MAN_LBM_JAMES * 1000))
    assert ColumnMap.from_dict(cm.to_dict()) == cm
    assert pickle.loads(pickle.dumps(cm)) == cm
    with pytest.raises(InvalidInputError, match="'Gewicht' \\(given for weight\\)"):
        normalisation_constants(meta, columns=ColumnMap(weight="Gewicht"))


def test_split_and_resolve_names():
    assert split_column_name("Height (cm)") == ("height", "cm")
    assert split_column_name("Acquisition Time") == ("acquisitiontime", "")
    cols = resolve_columns(["AcquisitionTime", "SeriesTime", "RadionuclideTotalDose"])
    assert cols.scan_time == "AcquisitionTime"  # higher priority than SeriesTime
    assert cols.activity_unit == "Bq"  # DICOM's unit
    with pytest.raises(InvalidInputError, match="all spell the weight"):
        resolve_columns(["Weight", "weight"])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"Injected Activity [MBq]": 2.5e8}, "activity \\[Bq\\] .* outside"),  # Bq as MBq
        ({"Injected Activity [MBq]": "lots"}, "not a number"),
        ({"Weight [kg]": 80000}, "weight \\[kg\\] .* outside"),
        ({"Height [m]": 12}, "neither metres"),
        ({"Sex": "Q"}, "is not M/F"),
    ],
)
def test_bad_values_raise_naming_subject_and_column(change, match):
    meta = {**MAN, **change}
    key = next(iter(change))
    if key == "Height [m]":  # no unit in the name: the magnitude decides
        meta = {k: v for k, v in meta.items() if k != "Height [m]"} | {"Height": 12}
        key = "Height"
    with pytest.raises(InvalidInputError, match=match) as info:
        normalisation_constants(meta)
    assert "sub-001" in str(info.value) and repr(key) in str(info.value)


def test_activity_without_a_unit_is_refused():
    with pytest.raises(InvalidInputError, match="activity's unit is unknown") as info:
        normalisation_constants({"Subject": "s", "InjectedRadioactivity": 250, "Weight": 80})
    assert "ColumnMap(activity_unit=" in str(info.value)


def test_missing_values_give_nan_and_reasons():
    out = normalisation_constants(
        {
            "Subject": "s",
            "Injected Activity [MBq]": 250,
            "Weight [kg]": 80,
            "Height [m]": "n/a",
            "Sex": "O",
        }
    )
    assert out[SUV] == MAN_SUV
    assert math.isnan(out[SUL_JAMES]) and math.isnan(out[SUL_JANMA])
    assert "no height, sex 'O' is not M/F: no James or Janmahasatian SUL" in out["Note"]
    out = normalisation_constants({"Subject": "s", "Weight [kg]": None})
    assert math.isnan(out[SUV])
    assert "no injected activity" in out["Note"] and "no body weight" in out["Note"]
    assert [parse_sex(v) for v in ("F", "Female", "woman", "U", "")] == ["F", "F", "F", None, None]
    assert parse_height_m(175.5) == 1.755


# --------------------------------------------------------------------------- Decazes


def _phantom():
    """20 slices of 2 x 1.5 x 1.5 mm voxels (4.5e-3 mL); hip bones on slices 4-7; fat
    on slices 1-17, 3 voxels a slice on 1-9 and 5 on 10-17; 18-19 are air above the head."""
    fat = np.zeros((20, 4, 4), bool)
    fat[1:10, 0, :3] = True
    fat[10:18, 1, :] = True
    fat[10:18, 2, 0] = True
    hip = np.zeros((20, 4, 4), np.uint8)
    hip[4:8, 3, 3] = 77
    return fat, hip, 2 * 1.5 * 1.5 / 1000


def test_decazes_fat_on_a_phantom_by_hand():
    fat, hip, voxel_ml = _phantom()
    got = decazes_fat(fat, hip=hip, voxel_volume_ml=voxel_ml)
    # slices 4..19: 6 slices x 3 voxels + 8 slices x 5 voxels = 58 voxels
    assert got.z_range == (4, 20) and got.slices_with_fat == 14 and got.reason == ""
    assert _close(got.volume_ml, 58 * 0.0045)
    # hedyPET's top: the skull's highest slice instead of the top of the field of view
    assert decazes_fat(fat, hip=hip, top=12, voxel_volume_ml=voxel_ml).volume_ml == pytest.approx(
        (6 * 3 + 3 * 5) * 0.0045, rel=1e-14
    )
    # per-slice volumes and an explicit range give the same figure
    per_slice = np.count_nonzero(fat.reshape(20, -1), axis=1) * voxel_ml
    assert _close(decazes_fat(per_slice, z_range=(4, 20)).volume_ml, got.volume_ml)
    # on through LBM to the denominator, by hand (the phantom's fat, the man's weight)
    lbm = 80 - (58 * 0.0045 * 0.923 / 1000) / 0.716
    assert _close(float(lbm_decazes(80, got.volume_ml)), lbm)
    out = normalisation_constants(MAN, fat=got)
    assert _close(out[SUL_DECAZES], 250e6 / (lbm * 1000))
    assert _close(out["Decazes Fat Volume [mL]"], 58 * 0.0045)


def test_decazes_reports_what_the_segmentation_does_not_allow():
    fat, hip, voxel_ml = _phantom()
    no_hip = decazes_fat(fat, hip=np.zeros(20, bool), voxel_volume_ml=voxel_ml)
    assert math.isnan(no_hip.volume_ml) and "no hip-bone voxels" in no_hip.reason
    hip_cut = hip.copy()
    hip_cut[0, 3, 3] = 1
    cut = decazes_fat(fat, hip=hip_cut, voxel_volume_ml=voxel_ml)
    assert math.isnan(cut.volume_ml) and "bottom slice of the field of view" in cut.reason
    band = np.zeros_like(fat)
    band[9:12] = fat[9:12]  # an L3 band, as MOOSE clin_ct_body_composition labels
    partial = decazes_fat(band, hip=hip, voxel_volume_ml=voxel_ml)
    assert math.isnan(partial.volume_ml)
    assert "fat on only 3 of the 16 slices" in partial.reason
    empty = decazes_fat(np.zeros_like(fat), hip=hip, voxel_volume_ml=voxel_ml)
    assert "no fat in slices 4..19" in empty.reason
    below = decazes_fat(fat, hip=hip, top=2, voxel_volume_ml=voxel_ml)
    assert "below the bottom of the hip bones" in below.reason
    # the reason reaches the table
    out = normalisation_constants(MAN, fat=partial)
    assert math.isnan(out[SUL_DECAZES]) and "Decazes: fat on only 3" in out["Note"]
    assert repr(pickle.loads(pickle.dumps(partial))) == repr(partial)  # NaN != NaN


def test_decazes_argument_errors():
    fat, hip, voxel_ml = _phantom()
    with pytest.raises(InvalidInputError, match="voxel_volume_ml"):
        decazes_fat(fat, hip=hip)
    with pytest.raises(InvalidInputError, match="per-slice volume in mL already"):
        decazes_fat(np.ones(20), z_range=(0, 20), voxel_volume_ml=voxel_ml)
    with pytest.raises(InvalidInputError, match="either hip"):
        decazes_fat(fat, voxel_volume_ml=voxel_ml)
    with pytest.raises(InvalidInputError, match="share the z axis"):
        decazes_fat(fat, hip=hip[1:], voxel_volume_ml=voxel_ml)
    with pytest.raises(InvalidInputError, match="not a range"):
        decazes_fat(fat, z_range=(5, 40), voxel_volume_ml=voxel_ml)
    with pytest.raises(InvalidInputError, match="mL must be finite"):
        normalisation_constants(MAN, fat=-1.0)
    # more fat than body: no Decazes SUL, a reason
    out = normalisation_constants(MAN, fat=1e6)
    assert math.isnan(out[SUL_DECAZES]) and "exceeds the body weight" in out["Note"]


# --------------------------------------------------------------------------- tables


def test_norms_table_subjects_fat_and_order():
    df = pd.DataFrame(
        [MAN, {**MAN, "Subject": "sub-002", "Weight [kg]": 70}, {**MAN, "Subject": "sub-003"}]
    )
    fat = {"sub-001": 12_000.0, "sub-002": DecazesFat(math.nan, reason="no hip-bone voxels")}
    out = norms_table(df, fat=fat, units="BQML")
    assert list(out.columns) == list(NORM_COLUMNS)
    assert out["Subject"].tolist() == ["sub-001", "sub-002", "sub-003"]
    assert out[SUV].tolist() == [MAN_SUV, 250e6 / 70_000, MAN_SUV]
    assert np.isfinite(out.loc[0, SUL_DECAZES])
    assert "Decazes: no hip-bone voxels" in out.loc[1, "Note"]
    assert "no fat volume given for this subject" in out.loc[2, "Note"]
    assert out["Decay Corrected"].dtype == bool
    # the subject id from a named index; duplicates and anonymous rows are refused
    indexed = df.drop(columns="Subject").set_index(pd.Index(["a", "b", "c"], name="case"))
    assert norms_table(indexed)["Subject"].tolist() == ["a", "b", "c"]
    with pytest.raises(InvalidInputError, match="no subject column"):
        norms_table(df.drop(columns="Subject"))
    with pytest.raises(InvalidInputError, match="more than once"):
        norms_table(pd.concat([df, df.iloc[:1]]))


def test_examples_in_docstrings_run():
    for module in (norms, metadata_columns):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0


# --------------------------------------------------------------------------- hedyPET


@pytest.fixture(scope="module")
def metadata_80() -> pd.DataFrame:
    path = REFERENCE / "metadata_80.csv"
    if not path.exists():
        pytest.skip(f"hedyPET reference not found at {REFERENCE}")
    return pd.read_csv(path)


@pytest.mark.reference
def test_hedypet_suv_denominators(metadata_80):
    out = norms_table(metadata_80[["Subject", "Weight [kg]", "Injected Activity [MBq]"]])
    assert len(out) == 80
    published = metadata_80[SUV].to_numpy()
    rel = np.abs(out[SUV].to_numpy() / published - 1)
    assert rel.max() < 1e-12
    assert (out[SUV].to_numpy() == published).all()  # in fact bit for bit
    assert not out["Decay Corrected"].any()
    assert out["Note"].str.contains("not decay-corrected").all()


def _heights_from(lbm_kg, weight_kg, female, formula):
    """Invert James or Janmahasatian for the height [m]."""
    if formula == "james":
        a, b = np.where(female, 1.07, 1.10), np.where(female, 148.0, 128.0)
        return weight_kg / (100 * np.sqrt((a * weight_kg - lbm_kg) / b))
    c, d = np.where(female, 8780.0, 6680.0), np.where(female, 244.0, 216.0)
    bmi = (9270 * weight_kg / lbm_kg - c) / d
    return np.sqrt(weight_kg / bmi)


@pytest.mark.reference
def test_hedypet_james_and_janma_with_backed_out_heights(metadata_80):
    weight = metadata_80["Weight [kg]"].to_numpy(float)
    activity = metadata_80["Injected Activity [MBq]"].to_numpy() * 1e6
    female = metadata_80["Demographic Group [Sex,Age]"].str.startswith("F").to_numpy()
    h_james = _heights_from(
        activity / (metadata_80[SUL_JAMES].to_numpy() * 1000), weight, female, "james"
    )
    h_janma = _heights_from(
        activity / (metadata_80[SUL_JANMA].to_numpy() * 1000), weight, female, "janma"
    )
    # one height explains both published constants, and it is a whole half-centimetre
    assert np.abs(h_james - h_janma).max() < 1e-14
    assert np.abs(h_james * 200 - np.round(h_james * 200)).max() < 1e-9
    heights = np.round(h_james * 200) / 200
    assert 1.5 < heights.min() and heights.max() < 2.0

    table = metadata_80[
        ["Subject", "Weight [kg]", "Injected Activity [MBq]", "Demographic Group [Sex,Age]"]
    ].assign(**{"Height [m]": heights})
    out = norms_table(table)
    for column in (SUL_JAMES, SUL_JANMA):
        published = metadata_80[column].to_numpy()
        assert np.abs(out[column].to_numpy() / published - 1).max() < 1e-12, column
    # sub-049, 132 kg at 1.75 m, is past James' maximum: James > Janma, and it is noted
    row = out.set_index("Subject").loc["sub-049"]
    assert row[SUL_JAMES] > row[SUL_JANMA]
    assert "James LBM falls with weight" in row["Note"]


@pytest.mark.reference
def test_hedypet_decazes_implies_plausible_fat_volumes(metadata_80):
    """Without segmentations the Decazes column cannot be recomputed; the fat volume it
    implies (inverting LBM = W - 0.923 V / 1000 / 0.716) must be a plausible body-fat
    share, and feeding that volume back reproduces the denominator."""
    weight = metadata_80["Weight [kg]"].to_numpy(float)
    activity = metadata_80["Injected Activity [MBq]"].to_numpy() * 1e6
    lbm = activity / (metadata_80[SUL_DECAZES].to_numpy() * 1000)
    volume_ml = (weight - lbm) * 0.716 * 1000 / 0.923
    fat_share = (weight - lbm) / weight
    assert 0.03 < fat_share.min() and fat_share.max() < 0.6
    fat = dict(zip(metadata_80["Subject"], volume_ml))
    out = norms_table(metadata_80[["Subject", "Weight [kg]", "Injected Activity [MBq]"]], fat=fat)
    assert (
        np.abs(out[SUL_DECAZES].to_numpy() / metadata_80[SUL_DECAZES].to_numpy() - 1).max() < 1e-12
    )
