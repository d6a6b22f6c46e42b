"""SUVpeak against a brute-force sphere search over every voxel of every label."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petzarr.analytics.kernels import suvpeak
from petzarr.analytics.kernels.suvpeak import PEAK_RADIUS_MM, label_peaks, sphere_offsets
from petzarr.cohort.errors import InvalidInputError


def brute_force(values, lab, spacing, radius=PEAK_RADIUS_MM):
    """Per label: max over centres in the label of the mean of in-volume voxels within r."""
    grid = np.indices(values.shape).reshape(3, -1).T
    flat = values.reshape(-1).astype(np.float64)
    mm = np.asarray(spacing, np.float64)
    best, where = {}, {}
    for k in np.unique(lab):
        if k == 0:
            continue
        for c in np.argwhere(lab == k):  # C order: the first maximum wins ties
            d2 = (((grid - c) * mm) ** 2).sum(axis=1)
            mean = flat[d2 <= radius**2].mean()
            if k not in best or mean > best[k]:
                best[k], where[k] = mean, tuple(c)
    return best, where


def hot_volume(rng, shape, spots=3):
    values = rng.gamma(2.0, 500.0, shape).astype(np.float32)
    for _ in range(spots):
        c = tuple(rng.integers(0, s) for s in shape)
        values[c] += np.float32(rng.uniform(1e4, 5e4))
    return values


def assert_matches(values, maps, spacing, radius=PEAK_RADIUS_MM):
    peaks = label_peaks(values, maps, spacing_mm=spacing, radius_mm=radius)
    for i, lab in enumerate(maps):
        best, _ = brute_force(values, lab, spacing, radius)
        present = sorted(best)
        np.testing.assert_allclose(peaks.value[i, present], [best[k] for k in present], rtol=1e-12)
        for k in present:
            # the centre reported must give the peak (ties may pick an equal sphere)
            c = tuple(peaks.index[i, k])
            assert lab[c] == k
        absent = np.setdiff1d(np.arange(peaks.value.shape[1]), present)
        assert np.isnan(peaks.value[i, absent]).all() and (peaks.index[i, absent] == -1).all()
    return peaks


def test_offsets_are_the_sphere():
    for spacing in [(2.0, 1.65, 1.65), (3.0, 0.98, 0.98), (1.0, 1.0, 1.0), (5.0, 4.0, 6.5)]:
        runs = sphere_offsets(spacing)
        got = {(dz, dy, dx) for dz, dy, w in runs for dx in range(-w, w + 1)}
        r = int(np.ceil(PEAK_RADIUS_MM / min(spacing)))
        want = {
            (dz, dy, dx)
            for dz in range(-r, r + 1)
            for dy in range(-r, r + 1)
            for dx in range(-r, r + 1)
            if (dz * spacing[0]) ** 2 + (dy * spacing[1]) ** 2 + (dx * spacing[2]) ** 2
            <= PEAK_RADIUS_MM**2
        }
        assert got == want
    # at 1 mm isotropic the 1 mL sphere holds about 1000 voxels of 1 mm^3
    runs = sphere_offsets((1.0, 1.0, 1.0))
    assert abs(int((2 * runs[:, 2] + 1).sum()) - 1000) < 50


@pytest.mark.parametrize("spacing", [(2.0, 1.65, 1.65), (3.0, 0.98, 1.3), (1.5, 1.5, 1.5)])
def test_matches_brute_force_with_labels_at_the_border(spacing):
    rng = np.random.default_rng(0)
    shape = (11, 14, 16)
    values = hot_volume(rng, shape)
    lab = np.zeros(shape, np.uint8)
    lab[:3] = 1  # the whole first slab, corners included
    lab[4:9, 3:11, 2:14] = 2
    lab[10, 13, 15] = 3  # a single corner voxel
    lab[8:, :, :4] = 4
    assert_matches(values, [lab, np.where(lab == 2, 0, lab).astype(np.uint8)], spacing)


@settings(max_examples=12, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 12)),
    spacing=st.tuples(*[st.sampled_from([0.8, 1.65, 2.0, 3.0, 4.0])] * 3),
    seed=st.integers(0, 2**16),
    tile=st.integers(1, 5),
)
def test_random_volumes_and_tilings(shape, spacing, seed, tile):
    rng = np.random.default_rng(seed)
    values = hot_volume(rng, shape, spots=2)
    maps = [rng.integers(0, 4, shape, np.uint8), (rng.random(shape) < 0.3).astype(np.uint16) * 2]
    saved = suvpeak._TILE_ROWS
    suvpeak._TILE_ROWS = tile  # tile borders must not matter
    try:
        assert_matches(values, maps, spacing)
    finally:
        suvpeak._TILE_ROWS = saved


def test_uint16_labels_differing_in_the_high_byte_only():
    values = hot_volume(np.random.default_rng(9), (6, 7, 9))
    lab = np.full(values.shape, 256, np.uint16)
    lab[:, :, 4:] = 512
    assert_matches(values, [lab], (2.0, 2.0, 2.0))


def test_uniform_values_give_the_value():
    values = np.full((9, 10, 11), 3.25, np.float32)
    lab = np.ones(values.shape, np.uint8)
    peaks = label_peaks(values, [lab], spacing_mm=(2.0, 2.0, 2.0))
    assert peaks.value[0, 1] == 3.25
    assert peaks.index[0, 1].tolist() == [0, 0, 0]  # ties: the first centre


def test_peak_of_a_hot_sphere_and_tie_order():
    v = np.zeros((15, 15, 15), np.float32)
    v[7, 7, 7] = 171.0
    lab = np.zeros(v.shape, np.uint8)
    lab[5:10, 5:10, 5:10] = 1
    peaks = label_peaks(v, [lab], spacing_mm=(2.0, 1.65, 1.65))
    assert peaks.value[0, 1] == 1.0
    _, where = brute_force(v, lab, (2.0, 1.65, 1.65))
    assert tuple(peaks.index[0, 1]) == where[1]


def test_differences_below_float32_resolution_are_resolved():
    # the float32 screen cannot tell these spheres apart (1e-12 relative); the float64
    # confirmation must still find the right one, for float64 input with a wide range
    rng = np.random.default_rng(7)
    values = np.full((8, 9, 10), 1e4) + rng.normal(0, 1e-8, (8, 9, 10))
    values[0, 0, 0] = 1e7  # a far-away hot voxel widens the rounding bound
    values[5, 4, 6] += 3e-8
    lab = np.zeros(values.shape, np.uint8)
    lab[3:, 2:, 2:] = 1
    lab[0, 0, 0] = 2
    assert_matches(values, [lab], (2.0, 2.0, 2.0))


def test_negative_values():
    rng = np.random.default_rng(8)
    values = rng.normal(-500.0, 300.0, (7, 8, 9)).astype(np.float32)
    lab = rng.integers(0, 3, values.shape, np.uint8)
    assert_matches(values, [lab], (2.0, 1.65, 1.65))


def test_int16_values_and_radius():
    rng = np.random.default_rng(3)
    values = rng.integers(-1000, 1000, (7, 9, 10)).astype(np.int16)
    lab = rng.integers(0, 3, values.shape, np.uint8)
    assert_matches(values, [lab], (2.0, 2.0, 2.0), radius=4.5)


def test_bad_inputs():
    values = np.zeros((3, 4, 5), np.float32)
    lab = np.ones(values.shape, np.uint8)
    with pytest.raises(InvalidInputError, match="spacing"):
        label_peaks(values, [lab], spacing_mm=(1.0, 1.0))
    with pytest.raises(InvalidInputError, match="spacing"):
        label_peaks(values, [lab], spacing_mm=(1.0, -1.0, 1.0))
    with pytest.raises(InvalidInputError, match="radius"):
        label_peaks(values, [lab], spacing_mm=(1.0, 1.0, 1.0), radius_mm=0)
    with pytest.raises(InvalidInputError, match="outside"):
        label_peaks(values, [lab * 5], spacing_mm=(1.0, 1.0, 1.0), n_labels=3)
