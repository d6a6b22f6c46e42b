"""SUV/SUL constants of a converted cohort (``petzarr.analytics.jobs.norms``, ``petzarr norms``).

A tiny synthetic ENHANCE cohort is converted once; its rows are checked against the truth the
generator drew (weight, injected activity, SUV denominator, times), the Decazes fat volume
against an independent count on the source NIfTI files, and the serial run against a real
multi-process cluster (local files and S3). A second conversion of an edited copy has a
subject whose PET is in counts and one whose body-composition map is a band.
"""

from __future__ import annotations

import doctest
import json
import math
import shutil
from datetime import datetime
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import zarr
from stores import store_url

from petzarr.analytics.drivers.norms import COHORT_NORM_COLUMNS, DENOMINATORS, cohort_norms
from petzarr.analytics.jobs import norms as norms_job_module
from petzarr.analytics.jobs.norms import store_decazes_fat, subject_norms
from petzarr.analytics.tables.metadata_columns import ColumnMap
from petzarr.analytics.tables.suv_norms import (
    DECAZES_VI_FAT_FRACTION,
    F18_HALF_LIFE_S,
    FAT_DENSITY_G_PER_ML,
    SUL_DECAZES,
    SUL_JAMES,
    SUL_JANMA,
    SUV,
    decay_correct,
    lbm_james,
    lbm_janma,
)
from petzarr.cli import main
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.cohort.subject import open_subject
from petzarr.convert.job import convert_cohort

GROUND_TRUTH = "imaging-data/ground-truth"


# --------------------------------------------------------------------------- fixtures


def _convert(source: Path, dest: Path) -> str:
    report = convert_cohort(str(source), str(dest), run=Run(serial=True, progress=False))
    assert report.exit_code == 0, report.summary()
    return str(dest)


@pytest.fixture(scope="module")
def converted(tiny_cohort, tmp_path_factory):
    source, truth = tiny_cohort
    return _convert(source, tmp_path_factory.mktemp("norms") / "cohort"), source, truth


@pytest.fixture(scope="module")
def table(converted) -> pd.DataFrame:
    return cohort_norms(converted[0], run=Run(serial=True, progress=False))


def _band_only(path: Path, keep: slice) -> None:
    """Zero a label map outside the z slices ``keep`` (axis 2 is S in RAS and LPS alike)."""
    img = cast(nib.Nifti1Image, nib.load(path))
    assert nib.aff2axcodes(img.affine)[2] == "S"
    data = np.asarray(img.dataobj).copy()
    band = data[:, :, keep].copy()
    data[...] = 0
    data[:, :, keep] = band
    nib.save(nib.Nifti1Image(data, img.affine, img.header), path)


@pytest.fixture(scope="module")
def variant(tiny_cohort, tmp_path_factory):
    """An edited copy: 0002's PET in counts (``Units`` CNTS), 0003's fat map a 5-slice band."""
    source, _ = tiny_cohort
    root = tmp_path_factory.mktemp("norms-variant")
    src = root / "src"
    shutil.copytree(source, src)
    details = pd.read_excel(src / "PT-details.xlsx", dtype={"Patient": str})
    details["Units"] = details["Patient"].map({"0002": "CNTS"}).fillna("BQML")
    details.to_excel(src / "PT-details.xlsx", index=False, engine="openpyxl")
    _band_only(src / GROUND_TRUTH / "Body-Composition" / "0003.nii.gz", slice(20, 25))
    return _convert(src, root / "cohort"), src


def _nifti(source: Path, folder: str, subject: str) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.load(source / GROUND_TRUTH / folder / f"{subject}.nii.gz"))
    return np.asarray(img.dataobj), np.asarray(img.header.get_zooms(), dtype=np.float64)


def _ids(source: Path, model: str, names) -> list[int]:
    table = json.loads((source / "labels.json").read_text())[model]
    return [int(i) for i, n in table.items() if names(n)]


def nifti_decazes_fat(source: Path, subject: str, top: str | None = None):
    """Fat volume [mL] and (start, stop) counted on the source NIfTI files with numpy alone."""
    bc, zooms = _nifti(source, "Body-Composition", subject)
    vert, _ = _nifti(source, "Vertebrae", subject)
    fat_ids = _ids(
        source, "clin_ct_body_composition", {"subcutaneous_fat", "visceral_fat"}.__contains__
    )
    hip_ids = _ids(source, "clin_ct_vertebrae", lambda n: n.startswith("hip"))
    assert len(fat_ids) == 2 and len(hip_ids) == 2
    hip_slices = np.flatnonzero(np.isin(vert, hip_ids).any(axis=(0, 1)))  # nibabel (x, y, z)
    start, stop = int(hip_slices[0]), bc.shape[2]
    if top is not None:
        top_ids = _ids(source, "clin_ct_vertebrae", lambda n: n == top)
        stop = int(np.flatnonzero(np.isin(vert, top_ids).any(axis=(0, 1)))[-1]) + 1
    voxels = int(np.count_nonzero(np.isin(bc[:, :, start:stop], fat_ids)))
    return voxels * float(np.prod(zooms)) / 1000.0, (start, stop)


def _uptake_s(truth_subject) -> float:
    t0 = datetime.strptime(truth_subject.injection_time, "%H:%M:%S")
    t1 = datetime.strptime(truth_subject.acquisition_time, "%H:%M:%S")
    return (t1 - t0).total_seconds()


# --------------------------------------------------------------------------- the table


def test_one_row_per_subject_sorted_without_failures(converted, table):
    _, _, truth = converted
    assert list(table.columns) == list(COHORT_NORM_COLUMNS)
    assert table["Subject"].tolist() == sorted(s.subject for s in truth.subjects)
    assert not table["Failed"].any()
    assert table["Decay Corrected"].dtype == bool and table["Decay Corrected"].all()
    for den in DENOMINATORS:
        assert np.isfinite(table[den]).all() and (table[den] > 0).all(), den


def test_denominators_from_the_truth(converted, table):
    """Activity, weight and times as generated; SUV exactly A 2^(-t/T) / (1000 W)."""
    _, _, truth = converted
    for s in truth.subjects:
        row = table.set_index("Subject").loc[s.subject]
        assert row["Injected Activity [Bq]"] == s.injected_activity_bq
        assert row["Weight [kg]"] == s.weight_kg and row["Height [m]"] == s.height_m
        assert row["Sex"] == s.sex
        t = _uptake_s(s)
        assert row["Uptake Time [s]"] == t == s.uptake_s and 55 * 60 <= t <= 75 * 60
        at_scan = float(decay_correct(s.injected_activity_bq, t, F18_HALF_LIFE_S))
        assert row["Activity at Scan Start [Bq]"] == at_scan == s.activity_at_scan_bq
        assert row[SUV] == at_scan / (s.weight_kg * 1000.0)
        # the generator's own denominator (decayed to scan start, as its PET is) bit for bit
        assert row[SUV] == s.suv_denominator
        # and against the textbook formula, independently of the library
        textbook = s.injected_activity_bq * 2 ** (-t / 6586.2) / (s.weight_kg * 1000.0)
        assert row[SUV] == pytest.approx(textbook, rel=1e-14)
        assert row[SUL_JAMES] == at_scan / (1000.0 * lbm_james(s.weight_kg, s.height_m, s.sex))
        assert row[SUL_JANMA] == at_scan / (1000.0 * lbm_janma(s.weight_kg, s.height_m, s.sex))
        assert row["PET to Bq/mL"] == 1.0
        assert "half-life" in row["Note"] and "Decazes" not in row["Note"]


def test_pet_units_are_the_stored_attribute(converted, table):
    dest, _, _ = converted
    for subject, units in zip(table["Subject"], table["PET Units"]):
        stored = zarr.open_group(store_url(dest, subject), mode="r")["pet/pet"]
        assert units == stored.attrs["units"]


def test_decazes_fat_equals_a_numpy_count_on_the_nifti_files(converted, table):
    _, source, truth = converted
    for s in truth.subjects:
        row = table.set_index("Subject").loc[s.subject]
        volume, (start, stop) = nifti_decazes_fat(source, s.subject)
        assert 0 < start and stop == s.ct_grid.shape[0]
        assert row["Decazes Slices"] == f"{start}:{stop}"
        assert row["Decazes Fat Volume [mL]"] == pytest.approx(volume, rel=1e-12)
        lbm = s.weight_kg - volume * FAT_DENSITY_G_PER_ML / 1000 / DECAZES_VI_FAT_FRACTION
        assert row["LBM Decazes [kg]"] == pytest.approx(lbm, rel=1e-12)
        assert row[SUL_DECAZES] == pytest.approx(
            row["Activity at Scan Start [Bq]"] / (1000 * lbm), rel=1e-12
        )


def test_decazes_top_at_a_named_label(converted):
    dest, source, _ = converted
    row = subject_norms(store_url(dest, "0002"), decazes_top="vertebra_T1")
    volume, (start, stop) = nifti_decazes_fat(source, "0002", top="vertebra_T1")
    assert row["Decazes Slices"] == f"{start}:{stop}"
    assert row["Decazes Fat Volume [mL]"] == pytest.approx(volume, rel=1e-12)
    # ENHANCE.PET has no skull (removed for anonymisation): said, not guessed
    row = subject_norms(store_url(dest, "0002"), decazes_top="skull")
    assert math.isnan(row[SUL_DECAZES]) and math.isnan(row["Decazes Fat Volume [mL]"])
    assert "no label named 'skull'" in row["Note"]
    assert np.isfinite(row[SUV])


def test_store_decazes_fat_reads_the_ct_group(converted, table):
    dest, _, _ = converted
    ct = open_subject(store_url(dest, "0001")).group("ct")
    fat = store_decazes_fat(ct)
    assert fat.reason == "" and fat.slices_with_fat == fat.z_range[1] - fat.z_range[0]
    assert fat.volume_ml == table.set_index("Subject").loc["0001", "Decazes Fat Volume [mL]"]
    partial = store_decazes_fat(ct, min_fat_slices=1.01)
    assert math.isnan(partial.volume_ml) and "partial" in partial.reason


def test_subject_norms_is_the_cohort_row(converted, table):
    dest, _, _ = converted
    row = subject_norms(store_url(dest, "0003"))
    expected = table.set_index("Subject").loc["0003"].drop("Failed")
    assert row["Subject"] == "0003"
    pd.testing.assert_series_equal(
        pd.Series(row).drop("Subject"), expected, check_names=False, check_dtype=False
    )


def test_options_reach_every_subject(converted, table):
    dest, _, _ = converted
    given = cohort_norms(
        dest,
        run=Run(serial=True, progress=False),
        subjects=["0002", "0001"],
        half_life_s=F18_HALF_LIFE_S,
        columns=ColumnMap(weight="Weight [kg]", activity="Injected Activity [MBq]"),
    )
    assert given["Subject"].tolist() == ["0001", "0002"]
    assert (given["Note"] == "").all()  # the half-life was given: nothing assumed
    same = table.set_index("Subject").loc[["0001", "0002"], list(DENOMINATORS)]
    pd.testing.assert_frame_equal(given.set_index("Subject")[list(DENOMINATORS)], same)


def test_unknown_subject_and_bad_options_are_refused(converted):
    dest, _, _ = converted
    with pytest.raises(InvalidInputError, match="not in the index"):
        cohort_norms(dest, subjects=["0001", "9999"], run=Run(serial=True, progress=False))
    with pytest.raises(InvalidInputError, match="subject 42: no subject store"):
        subject_norms(f"{dest}/subjects/42/20261207T000000000000Z.zarr")
    with pytest.raises(InvalidInputError, match="half_life_s"):
        cohort_norms(dest, run=Run(serial=True, progress=False), half_life_s=-1.0)


def test_counts_and_a_partial_fat_map_give_nan_with_the_reason(variant):
    dest, _ = variant
    out = cohort_norms(dest, run=Run(serial=True, progress=False)).set_index("Subject")
    assert not out["Failed"].any()
    ok = out.loc["0001"]
    assert ok["PET Units"] == "BQML" and ok["PET to Bq/mL"] == 1.0
    assert all(np.isfinite(ok[d]) for d in DENOMINATORS)

    counts = out.loc["0002"]
    assert counts["PET Units"] == "CNTS" and math.isnan(counts["PET to Bq/mL"])
    assert all(math.isnan(counts[d]) for d in DENOMINATORS)
    assert "PET units 'CNTS' are not activity concentration" in counts["Note"]
    assert np.isfinite(counts["LBM Janma [kg]"])  # the body is still described

    band = out.loc["0003"]
    assert math.isnan(band[SUL_DECAZES]) and math.isnan(band["Decazes Fat Volume [mL]"])
    assert (
        "Decazes: fat on only 5 of the" in band["Note"] and "partial segmentation" in band["Note"]
    )
    assert all(np.isfinite(band[d]) for d in (SUV, SUL_JAMES, SUL_JANMA))


def test_a_broken_store_fails_alone(converted, table, tmp_path):
    dest, _, _ = converted
    broken = tmp_path / "cohort"
    shutil.copytree(dest, broken)
    (Path(store_url(broken, "0002")) / "zarr.json").unlink()
    out = cohort_norms(str(broken), run=Run(serial=True, progress=False))
    assert out["Subject"].tolist() == ["0001", "0002", "0003"]
    assert out["Failed"].tolist() == [False, True, False]
    bad = out.iloc[1]
    assert bad["Note"].startswith("failed: ") and all(math.isnan(bad[d]) for d in DENOMINATORS)
    good = out[~out["Failed"]].reset_index(drop=True)
    expected = table[table["Subject"] != "0002"].reset_index(drop=True)
    pd.testing.assert_frame_equal(good, expected)


def test_doctests():
    result = doctest.testmod(norms_job_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# --------------------------------------------------------------------------- cluster


@pytest.mark.cluster
def test_on_a_multiprocess_cluster(converted, table, cluster):
    dest, _, _ = converted
    out = cohort_norms(dest, run=Run(scheduler=cluster, progress=False))
    pd.testing.assert_frame_equal(out, table)


@pytest.mark.cluster
@pytest.mark.s3
def test_on_s3_on_the_cluster(converted, table, cluster, s3_server, s3_bucket):
    import s3fs

    dest, _, _ = converted
    url = f"{s3_bucket}/cohort"
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    fs.put(dest + "/", url.removeprefix("s3://") + "/", recursive=True)
    out = cohort_norms(url, run=Run(scheduler=cluster, progress=False))
    pd.testing.assert_frame_equal(out, table)


# --------------------------------------------------------------------------- CLI


def _cli(args, capsys) -> tuple[int, str, str]:
    code = main(["norms", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_writes_the_table(converted, table, tmp_path, capsys, suffix):
    dest, _, _ = converted
    path = tmp_path / f"norms{suffix}"
    code, out, err = _cli([dest, "-o", str(path), "--serial", "--no-progress"], capsys)
    assert code == 0, err
    assert f"3 subject(s), 0 failed -> {path}" in out
    if suffix == ".csv":
        got = pd.read_csv(path, dtype={"Subject": str})
        got["Note"] = got["Note"].fillna("")
    else:
        got = pd.read_parquet(path)
    pd.testing.assert_frame_equal(
        got[["Subject", *DENOMINATORS]], table[["Subject", *DENOMINATORS]]
    )
    assert got["Decazes Slices"].tolist() == table["Decazes Slices"].tolist()


def test_cli_prints_subjects_and_columns(converted, table, capsys):
    dest, _, _ = converted
    code, out, err = _cli(
        [
            dest,
            "--serial",
            "--no-progress",
            "--subjects",
            "0003,0001",
            "--column",
            "weight=Weight [kg]",
            "--column",
            "activity='Injected Activity [MBq]'",
        ],
        capsys,
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "denominators [Bq/mL]"
    assert [ln.split()[0] for ln in lines[2:]] == ["0001", "0003"]
    suv = table.set_index("Subject").loc["0003", SUV]
    assert f"{suv:.2f}" in lines[3]


def test_cli_exit_1_when_a_subject_fails(converted, tmp_path, capsys):
    dest, _, _ = converted
    code, out, err = _cli(
        [dest, "--serial", "--no-progress", "--column", "weight=Body Weight"], capsys
    )
    assert code == 1
    assert "petzarr norms: subject 0001: failed: InvalidInputError: column 'Body Weight'" in err
    broken = tmp_path / "cohort"
    shutil.copytree(dest, broken)
    (Path(store_url(broken, "0001")) / "zarr.json").unlink()
    out_path = tmp_path / "n.parquet"
    code, out, err = _cli([str(broken), "--serial", "--no-progress", "-o", str(out_path)], capsys)
    assert code == 1 and "3 subject(s), 1 failed" in out and "subject 0001: failed" in err
    assert pd.read_parquet(out_path)["Failed"].tolist() == [True, False, False]


def test_cli_usage_errors(converted, capsys):
    dest, _, _ = converted
    with pytest.raises(SystemExit) as exc:
        main(["norms", dest, "--column", "colour=blue"])
    assert exc.value.code == 2 and "not a column field" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["norms", dest, "--serial", "--workers", "2"])
    capsys.readouterr()
    code, _, err = _cli([dest, "--serial", "--subjects", "9999"], capsys)
    assert code == 2 and "not in the index" in err
    code, _, err = _cli(
        [dest, "--serial", "--column", "weight=Weight [kg]", "--column", "weight=W"], capsys
    )
    assert code == 2 and "given twice" in err


def test_cli_summary_for_long_tables(monkeypatch, converted, capsys):
    from petzarr.analytics import cli

    monkeypatch.setattr(cli, "_NORMS_SHOWN", 2)
    code, out, _ = _cli([converted[0], "--serial", "--no-progress"], capsys)
    assert code == 0
    assert out.startswith("3 subjects, 0 failed; denominators [Bq/mL]:")
    assert "most common notes:" in out and "3 x F-18 half-life" in out


@pytest.mark.cluster
def test_cli_on_the_cluster(converted, table, cluster, tmp_path, capsys):
    path = tmp_path / "n.parquet"
    code, _, err = _cli(
        [converted[0], "--scheduler", cluster, "--no-progress", "-o", str(path)], capsys
    )
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_parquet(path), table)
