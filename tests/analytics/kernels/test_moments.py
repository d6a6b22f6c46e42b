"""The fused labelled-moments pass against an independent float64 numpy computation."""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pytest
from dask_guard import raise_if_dask_computes
from hypothesis import given, settings
from hypothesis import strategies as st

from petzarr.analytics.kernels.moments import (
    LabelMoments,
    accumulate_block,
    combine_packed,
    default_n_labels,
    label_moments,
)
from petzarr.cohort.errors import InvalidInputError


def reference(values, lab, n_labels):
    """count, mean, std (ddof 0), min, max per label with per-label masks in float64."""
    out = {f: np.full(n_labels, np.nan) for f in ("mean", "std", "min", "max")}
    count = np.zeros(n_labels, np.int64)
    for k in np.unique(lab):
        x = values[lab == k].astype(np.float64)
        count[k] = x.size
        out["mean"][k], out["std"][k] = x.mean(), x.std()
        out["min"][k], out["max"][k] = x.min(), x.max()
    return count, out


def check(mom, values, maps, n_labels, rtol=1e-12):
    for i, lab in enumerate(maps):
        count, ref = reference(values, lab, n_labels)
        np.testing.assert_array_equal(mom.count[i], count)
        ok = count > 0
        np.testing.assert_allclose(mom.mean[i][ok], ref["mean"][ok], rtol=rtol)
        np.testing.assert_allclose(mom.std[i][ok], ref["std"][ok], rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(mom.min[i][ok], ref["min"][ok])
        np.testing.assert_array_equal(mom.max[i][ok], ref["max"][ok])
        np.testing.assert_allclose(mom.sum[i][ok], ref["mean"][ok] * count[ok], rtol=rtol)
        assert (mom.min[i][~ok] == np.inf).all() and (mom.max[i][~ok] == -np.inf).all()


def blobs(rng, shape, n_labels, grain=3, dtype=np.uint8):
    """A label map of constant cubes (long runs, like a segmentation) with a sprinkle of noise."""
    coarse = tuple(-(-s // grain) for s in shape)
    lab = rng.integers(0, n_labels, coarse)
    lab = lab.repeat(grain, 0).repeat(grain, 1).repeat(grain, 2)[: shape[0], : shape[1], : shape[2]]
    noise = rng.random(shape) < 0.05
    lab[noise] = rng.integers(0, n_labels, noise.sum())
    return np.ascontiguousarray(lab, dtype=dtype)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    shape = (9, 11, 13)
    values = rng.normal(3000, 400, shape).astype(np.float32)
    maps = [
        blobs(rng, shape, 6),
        blobs(rng, shape, 12, grain=2),
        rng.integers(0, 4, shape, np.uint8),
    ]
    return values, maps


def test_numpy_matches_reference(data):
    values, maps = data
    mom = label_moments(values, maps, n_labels=12)
    assert mom.count.shape == (3, 12) and mom.count.dtype == np.int64
    check(mom, values, maps, 12)


@pytest.mark.parametrize("vdtype", [np.int16, np.float64])
def test_value_dtypes(data, vdtype):
    values, maps = data
    values = (values - 3000).astype(vdtype)
    check(label_moments(values, maps, n_labels=12), values, maps, 12)


def test_uint16_and_mixed_maps(data):
    values, maps = data
    wide = (maps[1].astype(np.uint16) * 300).astype(np.uint16)  # labels up to 3300
    mom = label_moments(values, [maps[0], wide])
    assert mom.count.shape == (2, int(wide.max()) + 1)
    check(mom, values, [maps[0], wide], int(wide.max()) + 1)


def test_uint16_labels_differing_in_the_high_byte_only():
    # 256 and 512 share their low byte: a byte-wide change detector must still split them
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    lab = np.full(values.shape, 256, np.uint16)
    lab[:, :, 2:] = 512
    lab[1, 2, 3] = 768
    check(label_moments(values, [lab]), values, [lab], 769)


def test_default_n_labels(data):
    _, maps = data
    assert default_n_labels(maps) == 256
    assert default_n_labels([maps[0].astype(np.uint16)]) == int(maps[0].max()) + 1
    with pytest.raises(InvalidInputError, match="n_labels"):
        default_n_labels([da.from_array(maps[0].astype(np.uint16))])


def test_std_is_stable_for_large_offsets():
    # values ~1e4 Bq/mL with a small spread: sum of squares minus squared sum would lose
    # ~8 of float64's 16 digits; the shifted per-block sums and Chan's combine keep them
    rng = np.random.default_rng(1)
    shape = (16, 24, 32)
    values = (1e4 + rng.normal(0, 0.05, shape)).astype(np.float64)
    values[::2] += 5e4  # two very different levels within one label
    lab = np.ones(shape, np.uint8)
    lab[:, :, :5] = 2
    x = values[lab == 1]
    ref = np.sqrt(np.mean((x - x.mean()) ** 2))
    for mom in (
        label_moments(values, [lab], n_labels=3),
        label_moments(da.from_array(values, chunks=(3, 24, 32)), [lab], n_labels=3).compute(),
    ):
        assert abs(mom.std[0, 1] - ref) / ref < 1e-12
        y = values[lab == 2]
        assert abs(mom.std[0, 2] - y.std()) / y.std() < 1e-12


def test_dynamic_4d_per_frame(data):
    values, maps = data
    rng = np.random.default_rng(2)
    frames = np.stack([values, values * 0.5 + 10, rng.normal(0, 1, values.shape)]).astype(
        np.float32
    )
    mom = label_moments(frames, maps, n_labels=12)
    assert mom.mean.shape == (3, 3, 12)
    for t in range(3):
        single = label_moments(frames[t], maps, n_labels=12)
        for f in ("count", "mean", "m2", "min", "max"):
            np.testing.assert_array_equal(getattr(mom, f)[t], getattr(single, f))
    check(
        LabelMoments(*(getattr(mom, f)[1] for f in ("count", "mean", "m2", "min", "max"))),
        frames[1],
        maps,
        12,
    )


def test_dask_4d_matches_numpy(data):
    values, maps = data
    frames = np.stack([values, values + 1, values * 2])
    with raise_if_dask_computes():
        lazy = label_moments(
            da.from_array(frames, chunks=(1, 4, 11, 13)),
            [da.from_array(m, chunks=(4, 11, 13)) for m in maps],
            n_labels=12,
        )
    assert lazy.mean.shape == (3, 3, 12)
    got, want = lazy.compute(), label_moments(frames, maps, n_labels=12)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-13)
    np.testing.assert_allclose(got.m2, want.m2, rtol=1e-11, atol=1e-6)
    for t in range(frames.shape[0]):  # and each frame against per-label float64 masks
        fields = (getattr(got, f)[t] for f in ("count", "mean", "m2", "min", "max"))
        check(LabelMoments(*fields), frames[t], maps, 12)


@settings(max_examples=25, deadline=None)
@given(
    zc=st.integers(1, 9),
    yc=st.integers(1, 11),
    xc=st.integers(1, 13),
    split_every=st.sampled_from([None, 2, 3]),
    label_chunks_differ=st.booleans(),
)
def test_dask_any_chunking_matches_numpy(zc, yc, xc, split_every, label_chunks_differ):
    rng = np.random.default_rng(zc * 100 + yc * 10 + xc)
    shape = (9, 11, 13)
    values = rng.normal(50, 10, shape).astype(np.float32)
    maps = [blobs(rng, shape, 5), rng.integers(0, 3, shape, np.uint8)]
    lchunks = (max(zc - 1, 1), yc, xc) if label_chunks_differ else (zc, yc, xc)
    with raise_if_dask_computes():
        lazy = label_moments(
            da.from_array(values, chunks=(zc, yc, xc)),
            [da.from_array(m, chunks=lchunks) for m in maps],
            n_labels=5,
            split_every=split_every,
        )
    got = lazy.compute()
    want = label_moments(values, maps, n_labels=5)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.std, want.std, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(got.min, want.min)
    np.testing.assert_array_equal(got.max, want.max)


def test_combine_is_associative_and_keeps_empty_labels(data):
    values, maps = data
    parts = [
        accumulate_block(values[i : i + 3], [m[i : i + 3] for m in maps], n_labels=12)
        for i in (0, 3, 6)
    ]
    left = combine_packed(np.stack([combine_packed(np.stack(parts[:2])), parts[2]]))
    right = combine_packed(np.stack([parts[0], combine_packed(np.stack(parts[1:]))]))
    whole = accumulate_block(values, maps, n_labels=12)
    for got in (left, right):
        np.testing.assert_array_equal(got[..., 0], whole[..., 0])
        np.testing.assert_allclose(got[..., 1:3], whole[..., 1:3], rtol=1e-11, atol=1e-9)
        np.testing.assert_array_equal(got[..., 3:], whole[..., 3:])


def test_label_out_of_range_is_an_error(data):
    values, maps = data
    with pytest.raises(InvalidInputError, match="label value 11"):
        label_moments(values, [maps[1]], n_labels=11)
    with pytest.raises(InvalidInputError, match="outside"):
        label_moments(
            da.from_array(values, chunks=3), [da.from_array(maps[1], chunks=3)], n_labels=11
        ).compute()


def test_bad_inputs(data):
    values, maps = data
    with pytest.raises(InvalidInputError, match="shape"):
        label_moments(values, [maps[0][:-1]])
    with pytest.raises(InvalidInputError, match="integers"):
        label_moments(values, [maps[0].astype(np.float32)])
    with pytest.raises(InvalidInputError, match="at least one"):
        label_moments(values, [])
    with pytest.raises(InvalidInputError, match="expected"):
        label_moments(values[0], maps)


def test_results_and_block_function_pickle(data):
    values, maps = data
    mom = label_moments(values, maps, n_labels=12)
    back = pickle.loads(pickle.dumps(mom))
    np.testing.assert_array_equal(back.to_packed(), mom.to_packed())
    lazy = label_moments(da.from_array(values, chunks=4), maps, n_labels=12)
    graph = lazy.mean.__dask_graph__()
    assert pickle.loads(pickle.dumps(dict(graph)))  # everything sent to workers pickles


def test_noncontiguous_input(data):
    values, maps = data
    v = np.asfortranarray(values)[:, ::-1]
    m = [np.asfortranarray(x)[:, ::-1] for x in maps]
    check(label_moments(v, m, n_labels=12), np.ascontiguousarray(v), m, 12)


@pytest.mark.cluster
def test_on_a_multiprocess_cluster(data, cluster):
    from distributed import Client

    values, maps = data
    frames = np.stack([values, values * 2])
    lazy = label_moments(
        da.from_array(frames, chunks=(1, 3, 11, 13)),
        [da.from_array(m, chunks=(3, 11, 13)) for m in maps],
        n_labels=12,
    )
    with Client(cluster) as client:
        got = lazy.compute(scheduler=client)
    want = label_moments(frames, maps, n_labels=12)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-13)
    np.testing.assert_allclose(got.m2, want.m2, rtol=1e-11, atol=1e-6)
