"""``ds.petzarr``: masks and statistics by name against an independent float64 numpy table."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dask_guard import raise_if_dask_computes
from stores import store_url

import petzarr.analytics.accessor  # noqa: F401  (registers ds.petzarr)
from petzarr.analytics.jobs.stats import subject_stats
from petzarr.cohort import open_cohort
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort


@pytest.fixture(scope="module")
def cohort(tiny_cohort, tmp_path_factory):
    source, _ = tiny_cohort
    dest = tmp_path_factory.mktemp("accessor-cohort")
    run = convert_cohort(str(source), str(dest), run=Run(serial=True, progress=False))
    assert run.exit_code == 0
    return str(dest)


@pytest.fixture
def pet(cohort):
    """Subject 0002's PET group as users open it: lazy, dask-backed."""
    return xr.open_zarr(store_url(cohort, "0002"), group="pet")


def _reference(values: np.ndarray, seg: np.ndarray) -> dict[int, dict[str, float]]:
    out = {}
    for k in np.unique(seg[seg > 0]):
        v = values[seg == k].astype(np.float64)
        out[int(k)] = {
            "n": v.size,
            "mean": v.mean(),
            "std": v.std(),
            "min": v.min(),
            "max": v.max(),
        }
    return out


def _label_id(ds: xr.Dataset, var: str, name: str) -> int:
    (k,) = (int(k) for k, v in ds[var].attrs["labels"].items() if v == name)
    return k


def test_labels_by_any_name_of_the_map(pet):
    want = {int(k): v for k, v in pet.seg_organs.attrs["labels"].items()}
    for key in ("organs", "seg_organs", "Organs", "clin_ct_organs"):
        assert pet.petzarr.labels(key) == want
    assert pet.petzarr.labels("Peripheral-Bones") == pet.petzarr.labels("peripheral_bones")
    assert "organs" in pet.petzarr.maps and "ribs" in pet.petzarr.maps


@pytest.mark.parametrize("variable", ["pet", "ct"])
def test_stats_match_numpy(cohort, variable):
    ds = xr.open_zarr(store_url(cohort, "0002"), group=variable).load()  # numpy-backed
    assert isinstance(ds[variable].data, np.ndarray)
    by = "seg_organs" if variable == "pet" else "Vertebrae"
    var = "seg_" + by.lower().removeprefix("seg_")
    table = ds.petzarr.stats(by=by, median=False, peak=False)
    ref = _reference(ds[variable].values, ds[var].values)
    names = {int(k): v for k, v in ds[var].attrs["labels"].items()}
    voxel_ml = np.prod([float(ds[d][1] - ds[d][0]) for d in "zyx"]) / 1000
    assert sorted(table["Label Index"]) == sorted(ref)
    assert set(table["Subject"]) == {"0002"}  # from the store's folder name
    for row in table.to_dict("records"):
        r = ref[row["Label Index"]]
        assert row["Label Name"] == names[row["Label Index"]]
        assert row["Voxel Count"] == r["n"]
        assert row["Volume [mL]"] == pytest.approx(r["n"] * voxel_ml, rel=1e-12)
        for col, key in [("Mean", "mean"), ("STD", "std"), ("Min", "min"), ("Max", "max")]:
            assert row[col] == pytest.approx(r[key], rel=1e-9, abs=1e-6), (row["Label Name"], col)


def test_dask_backed_equals_in_memory(pet):
    assert isinstance(pet.pet.data, da.Array)
    lazy = pet.petzarr.stats(by=["organs", "ribs"], erosion=(0, 1))
    eager = pet.load().petzarr.stats(by=["organs", "ribs"], erosion=(0, 1))
    pd.testing.assert_frame_equal(lazy, eager, check_exact=False, rtol=1e-12)
    assert lazy["Median"].notna().all() and lazy["Peak"].notna().all()
    assert set(lazy["Erosion Iterations"]) == {0, 1}


def test_stats_equal_the_cohort_job(cohort, pet):
    mine = pet.petzarr.stats(by="organs", peak=False)
    job = subject_stats(store_url(cohort, "0002"), groups=["organs"], peak=False, suv=False)
    assert list(mine["Label Name"]) == list(job["Label Name"])
    np.testing.assert_allclose(mine["Mean"], job["PET Mean [Bq/mL]"], rtol=1e-12)
    np.testing.assert_allclose(mine["Median"], job["PET Median [Bq/mL]"], rtol=1e-12)


def test_mask_is_seg_equals_id_and_lazy(pet):
    with raise_if_dask_computes():
        mask = pet.petzarr.mask("liver")
    assert isinstance(mask.data, da.Array) and mask.dtype == bool
    k = _label_id(pet, "seg_organs", "liver")
    np.testing.assert_array_equal(mask.values, (pet.seg_organs == k).values)
    assert mask.values.any()
    assert mask.name == "liver" and mask.attrs["group"] == "organs"
    by_id = pet.petzarr.mask(k, group="organs")
    np.testing.assert_array_equal(by_id.values, mask.values)


def test_a_name_in_several_maps_needs_group(pet):
    ds = pet.assign(seg_organs_copy=pet.seg_organs)
    with pytest.raises(InvalidInputError, match=r"several maps \(organs, organs_copy\).*group="):
        ds.petzarr.mask("liver")
    np.testing.assert_array_equal(
        ds.petzarr.mask("liver", group="organs_copy").values, pet.petzarr.mask("liver").values
    )


def test_errors_name_the_label_and_the_maps(pet):
    with pytest.raises(
        InvalidInputError, match=r"'livr'.*maps: body_composition, .*organs.*'liver'"
    ):
        pet.petzarr.mask("livr")
    with pytest.raises(InvalidInputError, match=r"no label 'liver' in map 'ribs'"):
        pet.petzarr.mask("liver", group="ribs")
    with pytest.raises(InvalidInputError, match=r"'seg_organz'.*organs"):
        pet.petzarr.labels("organz")
    with pytest.raises(InvalidInputError, match=r"is an id: pass group="):
        pet.petzarr.mask(8)
    with pytest.raises(InvalidInputError, match="no label map"):
        pet.drop_vars([v for v in pet.data_vars if v.startswith("seg_")]).petzarr.stats()


def test_spacing_needs_evenly_spaced_axes_of_two_voxels(pet):
    dz, dy, dx = (float(pet[d][1] - pet[d][0]) for d in "zyx")
    assert pet.petzarr.spacing_mm == pytest.approx((abs(dz), abs(dy), abs(dx)))
    with pytest.raises(InvalidInputError, match=r"single voxel along 'x'"):
        pet.isel(x=[5]).petzarr.stats(by="organs", median=False, peak=False)
    with pytest.raises(InvalidInputError, match=r"'z' coordinates are not evenly spaced"):
        pet.isel(z=[0, 1, 3]).petzarr.stats(by="organs", median=False, peak=False)
    with pytest.raises(InvalidInputError, match=r"stats take a \(z, y, x\) volume"):
        pet.isel(z=0).petzarr.stats(by="organs")


def test_open_cohort_datasets_and_lazy_export(cohort):
    from petzarr.analytics import PetzarrAccessor

    ds = open_cohort(cohort).open("0001", "pet")
    assert isinstance(ds.petzarr, PetzarrAccessor)
    table = ds.petzarr.stats(by="organs", subject="s1", median=False, peak=False)
    assert set(table["Subject"]) == {"s1"} and set(table["Task"]) == {"organs"}
