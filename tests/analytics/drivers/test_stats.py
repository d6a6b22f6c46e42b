"""Cohort organ statistics against an independent float64 numpy computation."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage
from stores import store_url

from petzarr.analytics.drivers.stats import cohort_stats
from petzarr.analytics.jobs.stats import subject_stats
from petzarr.cli import main
from petzarr.cohort import open_cohort
from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort


@pytest.fixture(scope="module")
def cohort(tiny_cohort, tmp_path_factory):
    source, truth = tiny_cohort
    dest = tmp_path_factory.mktemp("stats-cohort")
    assert (
        convert_cohort(str(source), str(dest), run=Run(serial=True, progress=False)).exit_code == 0
    )
    return str(dest), truth


def _suv_denominator(row) -> float:
    """Injected activity decayed to acquisition time / weight in g, computed by hand."""
    fmt = "%H:%M:%S"
    dt = (
        datetime.strptime(row["Acquisition Time"], fmt)
        - datetime.strptime(row["Injection Time"], fmt)
    ).seconds
    return row["Injected Activity [MBq]"] * 1e6 * 2 ** (-dt / 6586.2) / (row["Weight [kg]"] * 1000)


def _reference(pet: np.ndarray, seg: np.ndarray, erosion: int) -> dict[int, dict[str, float]]:
    out = {}
    for k in np.unique(seg[seg > 0]):
        mask = seg == k
        if erosion:
            mask = ndimage.binary_erosion(mask, iterations=erosion)
        v = pet[mask].astype(np.float64)
        if v.size:
            out[int(k)] = {
                "n": v.size,
                "mean": v.mean(),
                "std": v.std(),
                "min": v.min(),
                "max": v.max(),
                "median": np.median(v),
            }
    return out


@pytest.mark.parametrize("erosion", [0, 1, 2])
def test_every_statistic_matches_numpy(cohort, erosion):
    url, _ = cohort
    c = open_cohort(url)
    ds = c.open("0002", "pet", chunks=None)
    pet, seg = ds.pet.values, ds.seg_organs.values
    spacing = [float(ds[d][1] - ds[d][0]) for d in "zyx"]
    table = subject_stats(store_url(url, "0002"), groups=["organs"], erosion=(erosion,), peak=False)
    ref = _reference(pet, seg, erosion)
    assert sorted(table["Label Index"]) == sorted(ref)  # absent/eroded-away labels have no row
    names = {int(k): v for k, v in ds.seg_organs.attrs["labels"].items()}
    for row in table.itertuples(index=False):
        r = ref[row[2]]
        got = dict(zip(table.columns, row, strict=True))
        assert got["Label Name"] == names[got["Label Index"]]
        assert got["Voxel Count"] == r["n"]
        assert got["Volume [mL]"] == pytest.approx(r["n"] * np.prod(spacing) / 1000, rel=1e-12)
        for col, key in [
            ("PET Mean [Bq/mL]", "mean"),
            ("PET STD [Bq/mL]", "std"),
            ("PET Min [Bq/mL]", "min"),
            ("PET Max [Bq/mL]", "max"),
            ("PET Median [Bq/mL]", "median"),
        ]:
            assert got[col] == pytest.approx(r[key], rel=1e-9, abs=1e-6), (got["Label Name"], col)


def test_suv_columns_and_tlg(cohort):
    url, _ = cohort
    c = open_cohort(url)
    table = subject_stats(store_url(url, "0001"), groups=["organs"], median=False)
    den = _suv_denominator(c.index.set_index("subject").loc["0001"])
    np.testing.assert_allclose(table["SUV Mean"], table["PET Mean [Bq/mL]"] / den, rtol=1e-9)
    np.testing.assert_allclose(table["SUV Max"], table["PET Max [Bq/mL]"] / den, rtol=1e-9)
    np.testing.assert_allclose(table["TLG"], table["SUV Mean"] * table["Volume [mL]"], rtol=1e-12)
    assert (table["SUV Peak"] <= table["SUV Max"] + 1e-9).all()
    assert table["SUL Mean (James)"].notna().all() and table["SUL Mean (Janma)"].notna().all()


def test_synthetic_truth_is_recovered_in_eroded_large_organs(cohort):
    url, truth = cohort
    table = subject_stats(
        store_url(url, "0001"), groups=["organs"], erosion=(1,), median=False, peak=False
    )
    subject = truth.subject("0001")
    names = truth.labels["clin_ct_organs"]
    for organ in ("liver", "spleen"):
        (label,) = (k for k, name in names.items() if name == organ)
        assert ("organs", label) in subject.suv, f"the synthetic subject has no {organ}"
        row = table[table["Label Name"] == organ]
        assert len(row) == 1, f"{organ} (label {label}) has {len(row)} rows after erosion"
        assert int(row["Label Index"].iloc[0]) == label
        assert float(row["SUV Mean"].iloc[0]) == pytest.approx(
            subject.suv[("organs", label)], rel=0.05
        ), organ


def test_ct_statistics_in_hu(cohort):
    url, _ = cohort
    table = subject_stats(
        store_url(url, "0003"), group="ct", groups=["vertebrae"], median=False, peak=False
    )
    assert "CT Mean [HU]" in table and "SUV Mean" not in table
    ds = xr.open_zarr(store_url(url, "0003"), group="ct")
    ref = _reference(ds.ct.values, ds.seg_vertebrae.values, 0)
    for label, mean in zip(table["Label Index"], table["CT Mean [HU]"], strict=True):
        assert mean == pytest.approx(ref[label]["mean"], rel=1e-9)


def test_a_broken_subject_fails_alone(cohort, tmp_path, capsys):
    url, _ = cohort
    copy = tmp_path / "c"
    shutil.copytree(url, copy)
    shutil.rmtree(Path(store_url(copy, "0002")) / "pet/pet")  # the PET array is gone
    run = cohort_stats(
        str(copy), run=Run(serial=True, progress=False), groups=["organs"], peak=False
    )
    assert list(run.failed) == ["0002"] and run.exit_code == 1
    assert sorted(run.table["Subject"].unique()) == ["0001", "0003"]
    assert main(["stats", str(copy), "--serial", "--no-progress", "--groups", "organs"]) == 1
    assert "FAILED 0002" in capsys.readouterr().err


def test_cli_writes_the_table(cohort, tmp_path, capsys):
    url, _ = cohort
    out = tmp_path / "stats.parquet"
    code = main(
        [
            "stats",
            url,
            "-o",
            str(out),
            "--erosion",
            "0,1",
            "--groups",
            "organs,ribs",
            "--serial",
            "--no-progress",
        ]
    )
    assert code == 0
    import pandas as pd

    table = pd.read_parquet(out)
    assert set(table["Erosion Iterations"]) == {0, 1}
    assert set(table["Task"]) == {"organs", "ribs"}
    assert table["Label Index"].dtype.kind == "i"
    for col in (
        "Subject",
        "Task",
        "Label Index",
        "Label Name",
        "Erosion Iterations",
        "PET Mean [Bq/mL]",
        "PET STD [Bq/mL]",
        "Voxel Count",
        "Volume [mL]",
        "SUV Peak",
        "TLG",
    ):
        assert col in table


@pytest.mark.cluster
@pytest.mark.s3
def test_stats_from_s3_on_a_multiprocess_cluster(tiny_cohort, s3_server, s3_bucket, cluster):
    source, _ = tiny_cohort
    dest = f"{s3_bucket}/cohort"
    assert (
        convert_cohort(str(source), dest, run=Run(scheduler=cluster, progress=False)).exit_code == 0
    )
    run = cohort_stats(
        dest, run=Run(scheduler=cluster, progress=False), groups=["organs"], erosion=(0, 1)
    )
    assert run.exit_code == 0
    local = cohort_stats(
        dest, run=Run(serial=True, progress=False), groups=["organs"], erosion=(0, 1)
    )
    np.testing.assert_allclose(
        run.table["PET Mean [Bq/mL]"], local.table["PET Mean [Bq/mL]"], rtol=1e-12
    )
    assert run.table["Subject"].nunique() == 3
