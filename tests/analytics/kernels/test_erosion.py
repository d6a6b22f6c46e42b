"""Erosion of all labels at once equals scipy's binary_erosion of each label, also chunked."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask_guard import raise_if_dask_computes
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from petzarr.analytics.kernels.erosion import erode_labels
from petzarr.cohort.errors import InvalidInputError


def assert_like_scipy(seg, eroded, iterations):
    assert eroded.shape == seg.shape and eroded.dtype == seg.dtype
    for k in np.unique(seg):
        if k == 0:
            continue
        want = ndimage.binary_erosion(seg == k, iterations=iterations)  # border_value=0
        np.testing.assert_array_equal(eroded == k, want, err_msg=f"label {k}")
    assert set(np.unique(eroded)) <= set(np.unique(seg)) | {0}


def spheres(shape, centres, radii):
    """Overlapping balls (later ones win), some cut by the volume border."""
    zz, yy, xx = np.indices(shape)
    seg = np.zeros(shape, np.uint8)
    for k, ((cz, cy, cx), r) in enumerate(zip(centres, radii), start=1):
        seg[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
    return seg


blocky = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda shape: hnp.arrays(np.uint8, shape, elements=st.integers(0, 3))
)


@settings(max_examples=60, deadline=None)
@given(coarse=blocky, grain=st.integers(1, 3), iterations=st.integers(1, 3))
def test_matches_scipy_per_label(coarse, grain, iterations):
    seg = coarse.repeat(grain, 0).repeat(grain, 1).repeat(grain, 2)
    assert_like_scipy(seg, erode_labels(seg, iterations), iterations)


@settings(max_examples=40, deadline=None)
@given(
    coarse=blocky,
    grain=st.integers(2, 3),
    iterations=st.integers(1, 3),
    chunks=st.tuples(st.integers(1, 10), st.integers(1, 27), st.integers(1, 27)),
)
def test_dask_any_chunking_matches_numpy(coarse, grain, iterations, chunks):
    # chunk boundaries cut through labels; halos thinner than a chunk and thicker than one
    seg = coarse.repeat(grain, 0).repeat(grain, 1).repeat(grain, 2)
    with raise_if_dask_computes():
        lazy = erode_labels(da.from_array(seg, chunks=chunks), iterations)
    assert isinstance(lazy, da.Array)
    got = lazy.compute()
    np.testing.assert_array_equal(got, erode_labels(seg, iterations))
    assert_like_scipy(seg, got, iterations)


def test_whole_slab_chunks_overlap_in_z_only():
    seg = spheres((40, 20, 24), [(10, 10, 12), (30, 5, 5), (20, 19, 23)], [8, 6, 5])
    lazy = erode_labels(da.from_array(seg, chunks=(7, 20, 24)), 2)
    np.testing.assert_array_equal(lazy.compute(), erode_labels(seg, 2))
    assert_like_scipy(seg, lazy.compute(), 2)


def test_shaped_labels_border_and_vanishing():
    # ball 1 touches the border, ball 2 is 1 voxel thick in places, ball 3 vanishes at n=2
    seg = spheres((20, 22, 24), [(0, 11, 12), (10, 10, 10), (15, 18, 18)], [7, 5, 1.5])
    seg[5, :, :] = np.where(seg[5] == 2, 0, seg[5])  # a thin cut through ball 2
    for n in (1, 2, 3, 6):
        eroded = erode_labels(seg, n)
        assert_like_scipy(seg, eroded, n)
    assert 3 in seg and 3 not in erode_labels(seg, 2)


def test_volume_border_erodes():
    seg = np.ones((4, 5, 6), np.uint16) * 7
    out = erode_labels(seg, 1)
    assert out.dtype == np.uint16
    assert (out[1:-1, 1:-1, 1:-1] == 7).all()
    assert out.sum() == 7 * 2 * 3 * 4
    assert erode_labels(seg, 2).max() == 0  # 4 slices erode away from both sides


def test_zero_iterations_is_a_copy_and_input_is_untouched():
    seg = spheres((8, 8, 8), [(4, 4, 4)], [3])
    before = seg.copy()
    same = erode_labels(seg, 0)
    np.testing.assert_array_equal(same, seg)
    assert same is not seg
    erode_labels(seg, 2)
    np.testing.assert_array_equal(seg, before)
    lazy = da.from_array(seg, chunks=4)
    assert erode_labels(lazy, 0) is lazy


@pytest.mark.parametrize("shape", [(1, 5, 5), (5, 1, 5), (5, 5, 2), (3, 3, 3)])
def test_thin_volumes(shape):
    seg = np.ones(shape, np.uint8)
    assert_like_scipy(seg, erode_labels(seg, 1), 1)


def test_bad_inputs():
    seg = np.ones((3, 3, 3), np.uint8)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(InvalidInputError, match="iterations"):
            erode_labels(seg, bad)
    with pytest.raises(InvalidInputError, match="integer"):
        erode_labels(seg.astype(np.float32), 1)
    with pytest.raises(InvalidInputError, match="integer"):
        erode_labels(seg[0], 1)
