"""The NIfTI reader against nibabel's own canonical arrays."""

from __future__ import annotations

import gzip
import itertools

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petzarr.cohort.errors import CorruptFileError, MissingSourceError, ObliqueAffineError
from petzarr.convert.nifti import iter_frames, open_nifti, read_nifti


def _affine(perm, signs, spacing, origin):
    aff = np.eye(4)
    aff[:3, :3] = 0
    for i, (p, s, d) in enumerate(zip(perm, signs, spacing, strict=True)):
        aff[p, i] = s * d
    aff[:3, 3] = origin
    return aff


def _canonical(path):
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.get_fdata(dtype=np.float64)).T, img.affine


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("signs", list(itertools.product([1, -1], repeat=3)))
def test_every_orientation_matches_nibabel_canonical(tmp_path, perm, signs):
    rng = np.random.default_rng(abs(hash((perm, signs))) % 2**32)
    arr = rng.integers(-1000, 1000, size=(5, 6, 7)).astype(np.int16)
    aff = _affine(perm, signs, (0.9, 1.7, 3.1), rng.normal(size=3) * 100)
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(arr, aff), path)
    vol = read_nifti(str(path))
    expected, expected_aff = _canonical(path)
    assert vol.data.dtype == np.int16
    np.testing.assert_array_equal(vol.data, expected)
    np.testing.assert_allclose(vol.affine, expected_aff, atol=1e-5)
    # every voxel centre's world coordinate equals the 1-D coordinates
    coords = vol.grid.coords()
    k, j, i = (n - 1 for n in vol.data.shape)
    world = expected_aff @ [i, j, k, 1]
    np.testing.assert_allclose(
        [coords["x"][i], coords["y"][j], coords["z"][k]], world[:3], atol=1e-5
    )


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 9)] * 3),
    spacing=st.tuples(*[st.floats(0.3, 6.0)] * 3),
    origin=st.tuples(*[st.floats(-900, 900)] * 3),
    signs=st.tuples(*[st.sampled_from([1, -1])] * 3),
)
def test_coordinates_follow_the_affine(tmp_path_factory, shape, spacing, origin, signs):
    path = tmp_path_factory.mktemp("h") / "v.nii"
    aff = _affine((0, 1, 2), signs, spacing, origin)
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), aff), path)
    vol = read_nifti(str(path))
    _, canon = _canonical(path)
    coords = vol.grid.coords()
    for axis, name in enumerate("xyz"):
        n = vol.data.shape[2 - axis]
        ijk = np.zeros((4, n))
        ijk[axis] = np.arange(n)
        ijk[3] = 1
        np.testing.assert_allclose(coords[name], (canon @ ijk)[axis], atol=1e-4)


def test_scl_slope_and_inter_are_applied(tmp_path):
    arr = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    img = nib.Nifti1Image(arr, np.diag([2.0, 2, 2, 1]))
    img.header.set_slope_inter(0.25, 10.0)
    path = tmp_path / "pet.nii.gz"
    nib.save(img, path)
    vol = read_nifti(str(path))
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, _canonical(path)[0], rtol=1e-6)
    assert vol.header.get_slope_inter() == (1.0, 0.0)


def test_big_endian_and_uncompressed(tmp_path):
    arr = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    path = tmp_path / "be.nii"
    nib.save(nib.Nifti1Image(arr, np.diag([-1.0, 1, 1, 1])), path)
    vol = read_nifti(str(path), dtype=np.int16)
    np.testing.assert_array_equal(vol.data, _canonical(path)[0])


def test_source_is_described_and_hashed(tmp_path):
    import hashlib

    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), path)
    vol = read_nifti(str(path))
    assert vol.source.size == path.stat().st_size
    assert vol.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert vol.source.mtime


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "t.nii.gz"
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((40, 40, 40)).astype(np.float32), np.eye(4)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(CorruptFileError, match="t.nii.gz"):
        read_nifti(str(path))


def test_lying_header_fails_before_allocating(tmp_path):
    # header promises 4 TB of float32; the reader must refuse from the gzip trailer, not OOM
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape((10000, 10000, 10000))
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * 1000
    path = tmp_path / "liar.nii.gz"
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(CorruptFileError, match="liar.nii.gz.*truncated or its header is wrong"):
        open_nifti(str(path))


def test_not_a_nifti_and_missing_file(tmp_path):
    path = tmp_path / "x.nii.gz"
    path.write_bytes(gzip.compress(b"hello world" * 100))
    with pytest.raises(CorruptFileError, match="x.nii.gz"):
        read_nifti(str(path))
    with pytest.raises(MissingSourceError, match="nope.nii.gz"):
        read_nifti(str(tmp_path / "nope.nii.gz"))


def test_oblique_is_refused_unless_allowed(tmp_path):
    theta = np.deg2rad(10)
    aff = np.eye(4)
    aff[:2, :2] = [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    path = tmp_path / "obl.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), aff), path)
    with pytest.raises(ObliqueAffineError, match="obl.nii.gz.*--allow-oblique"):
        read_nifti(str(path))
    assert read_nifti(str(path), allow_oblique=True).data.shape == (3, 3, 3)


def test_4d_frames_stream_one_at_a_time(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.random((4, 5, 6, 7)).astype(np.float32)
    path = tmp_path / "dyn.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.diag([-2.0, 2, 2, 1])), path)
    canon = np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj)
    with open_nifti(str(path)) as stream:
        frames = [f.copy() for f in iter_frames(stream)]
    assert len(frames) == 7
    for t, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, canon[..., t].T)
