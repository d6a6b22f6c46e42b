"""label_statistics: the per-subject long table against an independent numpy/scipy table."""

from __future__ import annotations

import doctest
import importlib

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from dask_guard import raise_if_dask_computes
from scipy import ndimage

from petzarr.analytics.kernels.suvpeak import PEAK_RADIUS_MM
from petzarr.analytics.tables.label_stats import COLUMNS, label_statistics
from petzarr.cohort.errors import InvalidInputError

SPACING = (2.0, 1.65, 1.65)


def sphere_mean_max(values, mask, spacing):
    """Brute force SUVpeak of one mask: every centre, in-volume voxels within r."""
    grid = np.indices(values.shape).reshape(3, -1).T
    flat = values.reshape(-1).astype(np.float64)
    best = -np.inf
    for c in np.argwhere(mask):
        d2 = (((grid - c) * np.asarray(spacing)) ** 2).sum(axis=1)
        best = max(best, flat[d2 <= PEAK_RADIUS_MM**2].mean())
    return best


def reference_table(values, label_maps, *, spacing, erosion, scale, median, peak):
    rows = []
    for task, seg in label_maps.items():
        for n in sorted(set(erosion)):
            for k in np.unique(seg):
                if k == 0:
                    continue
                mask = seg == k
                if n:
                    mask = ndimage.binary_erosion(mask, iterations=n)
                if not mask.any():
                    continue
                finite = np.isfinite(values)
                x = values[mask & finite].astype(np.float64)
                nonfinite = int((mask & ~finite).sum())
                rows.append(
                    {
                        "Task": task,
                        "Label Index": int(k),
                        "Erosion Iterations": n,
                        "Voxel Count": x.size,
                        "Non-finite Voxels": nonfinite,
                        "Volume [mL]": x.size * np.prod(spacing) / 1000,
                        "Mean": x.mean() * scale,
                        "STD": x.std() * scale,
                        "Min": x.min() * scale,
                        "Max": x.max() * scale,
                        "Median": np.median(x) * scale if median else np.nan,
                        "Peak": sphere_mean_max(values, mask, spacing) * scale if peak else np.nan,
                    }
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def subject(seed=0, shape=(10, 12, 14)):
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 2500.0, shape).astype(np.float32)
    zz, yy, xx = np.indices(shape)
    organs = np.zeros(shape, np.uint8)
    organs[(zz - 5) ** 2 + (yy - 6) ** 2 + (xx - 7) ** 2 <= 16] = 1
    organs[:, :3, :] = 2  # touches the border
    organs[8, 10, 12] = 5  # a single voxel: vanishes after one erosion
    tissue = np.where(xx < 7, 1, 3).astype(np.uint16)
    tissue[:2] = 0
    return values, {"organs": organs, "tissue": tissue}


def assert_tables_equal(got, want):
    assert list(got.columns) == list(COLUMNS)
    assert got["Task"].tolist() == want["Task"].tolist()
    ints = ("Label Index", "Erosion Iterations", "Voxel Count", "Non-finite Voxels")
    for col in ints:
        assert got[col].dtype == np.int64
        np.testing.assert_array_equal(got[col], want[col], err_msg=col)
    for col in COLUMNS[len(ints) + 1 :]:
        assert got[col].dtype == np.float64
        np.testing.assert_allclose(got[col], want[col], rtol=1e-10, err_msg=col)


def test_full_table_matches_reference():
    values, maps = subject()
    kw = dict(erosion=(0, 1, 2), scale=1.5e-4, median=True, peak=True)
    got = label_statistics(values, maps, spacing_mm=SPACING, **kw)
    want = reference_table(values, maps, spacing=SPACING, **kw)
    assert_tables_equal(got, want)
    assert 5 in got.loc[got["Erosion Iterations"] == 0, "Label Index"].tolist()
    assert 5 not in got.loc[got["Erosion Iterations"] == 1, "Label Index"].tolist()


def sphere_mean_max_finite(values, mask, spacing):
    """SUVpeak over spheres free of non-finite values (NaN when every sphere has one)."""
    grid = np.indices(values.shape).reshape(3, -1).T
    flat = values.reshape(-1).astype(np.float64)
    means = []
    for c in np.argwhere(mask):
        near = flat[(((grid - c) * np.asarray(spacing)) ** 2).sum(axis=1) <= PEAK_RADIUS_MM**2]
        if np.isfinite(near).all():
            means.append(near.mean())
    return max(means) if means else np.nan


@pytest.mark.parametrize("lazy", [False, True])
def test_nan_and_inf_voxels_are_left_out_and_counted(lazy):
    values, maps = subject(5)
    values[5, 6, 7] = np.nan  # inside organ 1
    values[5, 6, 5] = np.inf
    values[0, 0, 0] = -np.inf  # organ 2 and tissue 0
    kw = dict(erosion=(0, 1), scale=1.0, median=not lazy, peak=not lazy)
    chunks = (4, 12, 14)
    got = label_statistics(
        da.from_array(values, chunks=chunks) if lazy else values,
        {k: da.from_array(m, chunks=chunks) for k, m in maps.items()} if lazy else maps,
        spacing_mm=SPACING,
        **kw,
    )
    want = reference_table(values, maps, spacing=SPACING, **(kw | {"peak": False}))
    if not lazy:  # the peak: the hottest sphere that holds no non-finite value
        for i, row in want.iterrows():
            mask = maps[row["Task"]] == row["Label Index"]
            if row["Erosion Iterations"]:
                mask = ndimage.binary_erosion(mask, iterations=int(row["Erosion Iterations"]))
            want.loc[i, "Peak"] = sphere_mean_max_finite(values, mask, SPACING)
    assert_tables_equal(got, want)
    organ1 = got[(got["Task"] == "organs") & (got["Label Index"] == 1)]
    assert organ1["Non-finite Voxels"].tolist() == [2, 2]
    assert np.isfinite(organ1[["Mean", "STD", "Min", "Max"]].to_numpy()).all()


def test_defaults_leave_median_and_peak_empty():
    values, maps = subject(1)
    got = label_statistics(values, maps, spacing_mm=SPACING)
    want = reference_table(
        values, maps, spacing=SPACING, erosion=(0,), scale=1.0, median=False, peak=False
    )
    assert_tables_equal(got, want)
    assert got["Median"].isna().all() and got["Peak"].isna().all()


@pytest.mark.parametrize("median", [False, True])
def test_dask_input_matches_numpy(median):
    values, maps = subject(2, shape=(12, 12, 14))
    lazy_maps = {k: da.from_array(m, chunks=(5, 12, 14)) for k, m in maps.items()}
    kw = dict(spacing_mm=SPACING, erosion=(0, 2), median=median)
    got = label_statistics(da.from_array(values, chunks=(5, 12, 14)), lazy_maps, **kw)
    assert_tables_equal(got, label_statistics(values, maps, **kw))


@pytest.mark.parametrize("median", [False, True])
@pytest.mark.parametrize(("tissue_dtype", "computes"), [(np.uint8, 1), (np.uint16, 2)])
def test_dask_input_is_computed_once(median, tissue_dtype, computes):
    # one compute for the table; a uint16 Dask map costs one more (its maximum: n_labels)
    values, maps = subject(4, shape=(12, 12, 14))
    maps["tissue"] = maps["tissue"].astype(tissue_dtype)
    chunks = (5, 12, 14)
    lazy_maps = {k: da.from_array(m, chunks=chunks) for k, m in maps.items()}
    kw = dict(erosion=(0, 2), median=median)
    with raise_if_dask_computes(max_computes=computes):
        got = label_statistics(
            da.from_array(values, chunks=chunks), lazy_maps, spacing_mm=SPACING, **kw
        )
    want = reference_table(values, maps, spacing=SPACING, scale=1.0, peak=False, **kw)
    assert_tables_equal(got, want)


def test_mixed_numpy_and_dask_and_uint16_n_labels():
    values, maps = subject(3)
    maps["tissue"] = da.from_array(maps["tissue"], chunks=4)  # uint16 Dask: max computed
    got = label_statistics(values, maps, spacing_mm=SPACING)
    assert set(got.loc[got["Task"] == "tissue", "Label Index"]) == {1, 3}


def test_no_labels_gives_an_empty_table():
    values = np.ones((3, 4, 5), np.float32)
    got = label_statistics(values, {"organs": np.zeros(values.shape, np.uint8)}, spacing_mm=SPACING)
    assert got.empty and list(got.columns) == list(COLUMNS)


def test_bad_inputs():
    values, maps = subject()
    with pytest.raises(InvalidInputError, match="empty"):
        label_statistics(values, {}, spacing_mm=SPACING)
    with pytest.raises(InvalidInputError, match="erosion"):
        label_statistics(values, maps, spacing_mm=SPACING, erosion=(-1,))
    with pytest.raises(InvalidInputError, match="erosion"):
        label_statistics(values, maps, spacing_mm=SPACING, erosion=())
    with pytest.raises(InvalidInputError, match="scale"):
        label_statistics(values, maps, spacing_mm=SPACING, scale=-2)
    with pytest.raises(InvalidInputError, match="spacing"):
        label_statistics(values, maps, spacing_mm=(1, 2))
    with pytest.raises(InvalidInputError, match="label_moments"):
        label_statistics(values[None], maps, spacing_mm=SPACING)


@pytest.mark.parametrize(
    "module",
    [
        "kernels.moments",
        "tables.label_stats",
        "kernels.erosion",
        "kernels.median",
        "kernels.suvpeak",
    ],
)
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"petzarr.analytics.{module}")
    result = doctest.testmod(mod, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
