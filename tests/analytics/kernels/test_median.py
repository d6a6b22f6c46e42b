"""Exact per-label medians against np.median on each label's values (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from petzarr.analytics.kernels import median as median_module
from petzarr.analytics.kernels.median import count_labels, label_medians
from petzarr.cohort.errors import InvalidInputError


def reference(values, lab, n_labels):
    out = np.full(n_labels, np.nan)
    for k in np.unique(lab):
        if k:
            out[k] = np.median(values[lab == k].astype(np.float64))
    return out


def blobs(rng, shape, n_labels, grain):
    coarse = tuple(-(-s // grain) for s in shape)
    lab = rng.integers(0, n_labels, coarse).astype(np.uint8)
    return np.ascontiguousarray(
        lab.repeat(grain, 0).repeat(grain, 1).repeat(grain, 2)[: shape[0], : shape[1], : shape[2]]
    )


@pytest.fixture
def redo_counter(monkeypatch):
    """Count the bracket passes: 1 when every label was found, 2 when some were redone."""
    calls = []
    original = median_module._select

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(median_module, "_select", counting)
    return calls


def test_small_volume_all_labels(redo_counter):
    rng = np.random.default_rng(0)
    values = rng.normal(100, 20, (10, 12, 13)).astype(np.float32)
    maps = [blobs(rng, values.shape, 7, 2), rng.integers(0, 5, values.shape, np.uint8)]
    got = label_medians(values, maps)
    assert got.shape == (2, 7) and np.isnan(got[:, 0]).all()
    for i, lab in enumerate(maps):
        np.testing.assert_array_equal(
            got[i, : lab.max() + 1], reference(values, lab, lab.max() + 1)
        )
    assert np.isnan(got[1, 5:]).all()  # labels absent from map 1


def test_sampled_brackets_on_a_larger_volume(redo_counter):
    # >= 64**3 voxels: brackets come from every 4th voxel; even and odd counts, big and
    # small labels (small ones are taken whole)
    rng = np.random.default_rng(1)
    shape = (64, 66, 68)
    values = rng.gamma(3.0, 1000.0, shape).astype(np.float32)
    maps = [blobs(rng, shape, 9, 5), blobs(rng, shape, 40, 3)]
    maps[0][0, 0, :7] = 200  # a 7-voxel label
    counts = count_labels(maps, n_labels=256)
    got = label_medians(values, maps, n_labels=256, counts=counts)
    for i, lab in enumerate(maps):
        np.testing.assert_array_equal(got[i], reference(values, lab, 256))
    assert len(redo_counter) == 1  # every bracket held its median
    assert (counts[:, 1:] % 2 == 0).any() and (counts[:, 1:] % 2 == 1).any()


def test_unrepresentative_sample_falls_back_exactly(redo_counter):
    # the lattice sample sees only z % 4 == 0, where values are far higher: its bracket
    # misses the true median, and the label is redone over all its voxels
    shape = (64, 64, 64)
    rng = np.random.default_rng(2)
    values = rng.normal(0, 1, shape).astype(np.float32)
    values[::4] += 100
    lab = np.ones(shape, np.uint8)
    lab[:, :, :8] = 2
    got = label_medians(values, [lab])
    np.testing.assert_array_equal(got[0], reference(values, lab, 3))
    assert len(redo_counter) == 2


def test_overflowing_bracket_falls_back_exactly(redo_counter):
    # off the sample lattice every value is one number inside the bracket: far more voxels
    # fall inside than the sample predicts, the label's slot overflows and is redone
    shape = (64, 64, 64)
    values = np.full(shape, 5.0, np.float32)
    values[::4, ::4, ::4] = np.random.default_rng(3).normal(5, 1, (16, 16, 16))
    lab = np.ones(shape, np.uint8)
    got = label_medians(values, [lab])
    assert got[0, 1] == np.median(values.astype(np.float64)) == 5.0
    assert len(redo_counter) == 2


def test_ties_and_integer_values():
    rng = np.random.default_rng(4)
    values = rng.integers(-1024, 1500, (20, 20, 20)).astype(np.int16)
    values[::2] = 40  # many equal values
    lab = blobs(rng, values.shape, 5, 3)
    np.testing.assert_array_equal(label_medians(values, [lab])[0], reference(values, lab, 5))


def test_uint16_labels_differing_in_the_high_byte_only():
    values = np.random.default_rng(6).normal(0, 1, (3, 4, 6)).astype(np.float32)
    lab = np.full(values.shape, 256, np.uint16)
    lab[:, :, 3:] = 512
    np.testing.assert_array_equal(label_medians(values, [lab])[0], reference(values, lab, 513))


def test_even_count_is_mean_of_middle_values():
    values = np.array([1.0, 2.0, 10.0, 20.0, 7.0], np.float32).reshape(1, 1, 5)
    lab = np.array([1, 1, 1, 1, 2], np.uint8).reshape(1, 1, 5)
    np.testing.assert_array_equal(label_medians(values, [lab]), [[np.nan, 6.0, 7.0]])


def test_values_are_not_reordered():
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, (6, 7, 8)).astype(np.float32)
    before = values.copy()
    label_medians(values, [rng.integers(0, 3, values.shape, np.uint8)])
    np.testing.assert_array_equal(values, before)


def test_bad_inputs():
    values = np.zeros((2, 3, 4), np.float32)
    lab = np.ones(values.shape, np.uint8)
    with pytest.raises(InvalidInputError, match="outside"):
        label_medians(values, [lab * 9], n_labels=5)
    with pytest.raises(InvalidInputError, match="counts"):
        label_medians(values, [lab], n_labels=2, counts=np.zeros((2, 2), np.int64))
    with pytest.raises(InvalidInputError, match="volume"):
        label_medians(values[0], [lab[0]])
