"""Streaming 4D series frame by frame: orientation, scaling, CRCs, and memory that does not
grow with the number of frames."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import zarr

from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.zarr_frames import FrameWriter, create_frames_array
from petzarr.cohort.zarr_io import stored_crcs
from petzarr.convert.bids import FrameTimes
from petzarr.convert.dynamic import create_dynamic_group, open_series, stream_frames


def _times(n: int) -> FrameTimes:
    return FrameTimes(start=tuple(10.0 * i for i in range(n)), duration=(10.0,) * n)


def _series(path: Path, data: np.ndarray, affine: np.ndarray, slope=None) -> Path:
    img = nib.Nifti1Image(data, affine)
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)
    nib.save(img, path)
    return path


def _convert(path: Path, store: Path, n: int, *, slabs: int = 64) -> zarr.Group:
    root = zarr.open_group(str(store), mode="w", zarr_format=3)
    series = open_series(str(path), subject="s", times=_times(n))
    group, array = create_dynamic_group(root, series, _times(n), units="Bq/mL", slabs=slabs)
    stored, source = stream_frames(array, series)
    assert stored == stored_crcs(group, "pet") and len(source.sha256) == 64
    return group


@pytest.mark.parametrize(
    "axes, signs",
    [
        ((0, 1, 2), (1, 1, 1)),  # RAS: read by slab, no copies
        ((0, 1, 2), (-1, -1, 1)),  # LPS: by slab, x and y flipped
        ((0, 1, 2), (1, -1, -1)),  # z runs backwards: slabs arrive last chunk first
        ((2, 0, 1), (1, -1, -1)),  # the file's slice axis is not z: read by frame
    ],
)
def test_frames_match_nibabel_canonical(tmp_path, axes, signs):
    rng = np.random.default_rng(3)
    data = rng.random((5, 6, 7, 4)).astype(np.float32)
    aff = np.zeros((4, 4))
    for col, (row, sign, size) in enumerate(zip(axes, signs, (2.0, 3.0, 4.0), strict=True)):
        aff[row, col] = sign * size
    aff[:, 3] = [10.0, -20.0, 30.0, 1.0]
    path = _series(tmp_path / "d.nii.gz", data, aff)
    group = _convert(path, tmp_path / "s.zarr", 4, slabs=3)  # slabs that do not divide z
    canon = nib.as_closest_canonical(nib.load(path))
    stored = group["pet"][...]
    for t in range(4):
        np.testing.assert_array_equal(stored[t], np.asarray(canon.dataobj[..., t]).T)
    assert group["pet"].chunks[:2] == (1, 3)
    np.testing.assert_allclose(group["nifti"].attrs["Affine"], canon.affine, atol=1e-5)


def test_scaled_integers_become_float32(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    path = _series(tmp_path / "d.nii.gz", data, np.eye(4), slope=0.5)
    group = _convert(path, tmp_path / "s.zarr", 5)
    assert group["pet"].dtype == np.float32
    np.testing.assert_array_equal(group["pet"][2], (data[..., 2] * 0.5).T)


def test_header_checks(tmp_path):
    vol = _series(tmp_path / "v.nii.gz", np.zeros((2, 2, 2), np.float32), np.eye(4))
    with pytest.raises(InvalidInputError, match="subject s: .*v.nii.gz is not a 4D series"):
        open_series(str(vol), subject="s", times=_times(1))
    dyn = _series(tmp_path / "d.nii.gz", np.zeros((2, 2, 2, 3), np.float32), np.eye(4))
    with pytest.raises(InvalidInputError, match="d.nii.gz has 3 frames but its sidecar lists 4"):
        open_series(str(dyn), subject="s", times=_times(4))


def test_frame_writer_records_each_chunk_as_stored():
    g = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    data = np.random.default_rng(0).random((3, 7, 4, 5)).astype(np.float32)
    arr = create_frames_array(g, "pet", shape=data.shape, slabs=3)
    with FrameWriter(arr, threads=3) as writer:
        for t, frame in enumerate(data):
            writer.write(t, frame[:, ::-1][:, ::-1])  # strided views are fine
        with pytest.raises(ValueError, match="do not fit"):
            writer.submit(0, 1, data[0, 1:4])  # does not start a chunk
        with pytest.raises(ValueError, match="end inside a chunk"):
            writer.submit(0, 0, data[0, :2])
    # every chunk of the grid (7 planes in chunks of 3: the last one padded), as stored
    keys = [f"c/{t}/{c}/0/0" for t in range(3) for c in range(3)]
    assert sorted(writer.stored) == keys and writer.stored == stored_crcs(g, "pet")
    np.testing.assert_array_equal(arr[...], data)
    assert arr.metadata.dimension_names == ("t", "z", "y", "x")
    spoiled = data.copy()
    spoiled[2, 6, 0, 0] += 1
    arr[2] = spoiled[2]
    changed = stored_crcs(g, "pet")
    assert [k for k in keys if changed[k] != writer.stored[k]] == ["c/2/2/0/0"]
    incomplete = create_frames_array(g, "half", shape=data.shape, slabs=3)
    with FrameWriter(incomplete) as half, pytest.raises(ValueError, match="never written"):
        half.write(0, data[0])
        _ = half.stored


def _peak_bytes(path: Path, store: Path, n: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        _convert(path, store, n)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_frames(tmp_path):
    shape = (128, 128, 64)  # x, y, z: 4.2 MB a frame, mostly zeros (fast to gzip)
    frame_bytes = int(np.prod(shape)) * 4
    rng = np.random.default_rng(5)
    paths = {}
    for n in (12, 48):  # both past the pipeline's depth (a few slabs)
        data = np.zeros((*shape, n), np.float32)
        data[::7, ::5, ::3] = rng.random(data[::7, ::5, ::3].shape)
        paths[n] = _series(tmp_path / f"d{n}.nii.gz", data, np.diag([2.0, 2, 2, 1]))
        del data
    _peak_bytes(paths[12], tmp_path / "warm.zarr", 12)  # imports and caches out of the way
    peaks = {n: _peak_bytes(path, tmp_path / f"s{n}.zarr", n) for n, path in paths.items()}
    # holding the series would cost 48 frames; streaming costs a few, whatever the count
    assert peaks[48] < 0.5 * 48 * frame_bytes, peaks
    assert peaks[48] < 1.1 * peaks[12], peaks
