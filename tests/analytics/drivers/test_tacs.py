"""Cohort TACs (``petzarr.analytics.jobs.tacs``, ``petzarr tacs``) against independent computations.

A tiny dynamic cohort is generated in code (``tests/dynamic_cohort.py``: hedyPET's 69 frames,
TotalSegmentator-like ``seg_total``/``seg_tissue``/``seg_body``, 5 % voxel noise). Its TACs are
checked against a float64 numpy computation per frame and label (erosion by
``scipy.ndimage.binary_erosion``) and against nifti_dynamic's ``extract_multiple_tacs`` on the
same data as .nii.gz; the streaming kernel is checked against the in-memory one, for reading
no more than one block of frames of one slab at a time, and for computing nothing before asked;
the driver on a real multi-process cluster, from a moto S3 server, with a failing subject and
through the command line.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import dask.array as da
import nibabel as nib
import nifti_dynamic.tacs
import numpy as np
import pandas as pd
import pytest
import zarr
from dask_guard import raise_if_dask_computes
from dynamic_cohort import MIDS, SPACING, write_dynamic_cohort
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from stores import store_url

from petzarr.analytics.drivers.subjects import SubjectTask
from petzarr.analytics.drivers.tacs import cohort_tacs
from petzarr.analytics.jobs.tacs import subject_tacs
from petzarr.analytics.kernels.erosion import erode_labels
from petzarr.analytics.kernels.frame_moments import frame_moments
from petzarr.analytics.kernels.moments import label_moments
from petzarr.analytics.tables.tacs import TAC_COLUMNS, label_tacs
from petzarr.cli import main
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.cohort.storage import storage_options

TASKS = {"total": "ts_total", "tissue": "ts_tissue", "body": "ts_body"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("tacs") / "cohort"
    phantoms = write_dynamic_cohort(root, noise=0.05)
    return str(root), phantoms


@pytest.fixture(scope="module")
def serial(cohort):
    run = cohort_tacs(cohort[0], erosion=(0, 1), run=Run(serial=True, progress=False))
    assert run.failed == {}
    return run.table


# --------------------------------------------------------------------------- references


def numpy_tacs(pet, seg, labels, erosion):
    """Per frame and label: mean, std (ddof 0), count in float64, scipy erosion per label."""
    rows = []
    for k in sorted(labels):
        mask = seg == k
        if erosion:
            mask = ndimage.binary_erosion(mask, iterations=erosion)
        n = int(mask.sum())
        if n == 0:
            continue
        v = pet[:, mask].astype(np.float64)
        for t in range(pet.shape[0]):
            rows.append((k, t, v[t].mean(), v[t].std(), n))
    return pd.DataFrame(rows, columns=["Label Index", "Frame Index", "mean", "std", "n"])


# --------------------------------------------------------------------------- tests


def test_columns_and_layout(serial, cohort):
    _, phantoms = cohort
    assert list(serial.columns) == list(TAC_COLUMNS)
    assert set(serial["Subject"]) == set(phantoms)
    assert set(serial["Task"]) == set(TASKS.values())
    first = serial[(serial["Task"] == "ts_total") & (serial["Label Name"] == "liver")]
    first = first[(first["Subject"] == "sub-001") & (first["Erosion Iterations"] == 0)]
    assert first["Label Index"].unique().tolist() == [5]
    assert first["Frame Index"].tolist() == list(range(69))
    np.testing.assert_array_equal(first["Frame Time Middle [s]"], MIDS)
    voxel_ml = np.prod(SPACING) / 1000
    np.testing.assert_allclose(first["Volume [mL]"], first["Voxel Count"] * voxel_ml)
    order = ["Subject", "Task", "Erosion Iterations", "Label Index", "Frame Index"]
    assert serial[order].equals(serial[order].sort_values(order).reset_index(drop=True))


@pytest.mark.parametrize("erosion", [0, 1])
@pytest.mark.parametrize("group", ["total", "tissue", "body"])
def test_equals_float64_numpy(serial, cohort, group, erosion):
    _, phantoms = cohort
    for subject, ph in phantoms.items():
        ours = serial[
            (serial["Subject"] == subject)
            & (serial["Task"] == TASKS[group])
            & (serial["Erosion Iterations"] == erosion)
        ].reset_index(drop=True)
        labels = {int(k) for k in np.unique(ph.maps[group]) if k}
        ref = numpy_tacs(ph.pet, ph.maps[group], labels, erosion)
        assert len(ours) == len(ref) > 0
        np.testing.assert_array_equal(ours["Label Index"], ref["Label Index"])
        np.testing.assert_array_equal(ours["Frame Index"], ref["Frame Index"])
        np.testing.assert_array_equal(ours["Voxel Count"], ref["n"])
        np.testing.assert_allclose(ours["PET Mean [Bq/mL]"], ref["mean"], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(ours["PET STD [Bq/mL]"], ref["std"], rtol=1e-9, atol=1e-9)


def test_equals_nifti_dynamic(cohort, tmp_path):
    """The peer: nifti_dynamic 0.3.1's extract_multiple_tacs on the same data as .nii.gz."""
    _, phantoms = cohort
    ph = phantoms["sub-001"]
    affine = np.diag([*SPACING[::-1], 1.0])  # canonical RAS+: nibabel (x, y, z) = ours reversed
    pet_path = tmp_path / "pet.nii.gz"
    nib.save(nib.Nifti1Image(ph.pet.transpose(3, 2, 1, 0), affine), pet_path)
    seg = ph.maps["total"].transpose(2, 1, 0).astype(np.float64)
    mean, std, n = nifti_dynamic.tacs.extract_multiple_tacs(nib.load(pet_path), seg)
    ours = subject_tacs(store_url(cohort[0], "sub-001"), groups=["total"])
    assert sorted(mean) == sorted(ours["Label Index"].unique())
    for k, theirs in mean.items():
        tac = ours[ours["Label Index"] == k]
        np.testing.assert_allclose(tac["PET Mean [Bq/mL]"], theirs, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(tac["PET STD [Bq/mL]"], std[k], rtol=1e-4, atol=1e-3)
        np.testing.assert_array_equal(tac["Voxel Count"], n[k])


class Recorder:
    """A zarr-like series that records every read (and can refuse them)."""

    def __init__(self, data: np.ndarray, slab: int) -> None:
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.chunks = (1, slab, *data.shape[2:])
        self.reads: list[tuple[slice, slice]] = []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.data[key]


def test_streams_blocks_of_frames_per_slab(cohort):
    _, phantoms = cohort
    ph = phantoms["sub-002"]
    series = Recorder(ph.pet, slab=16)
    maps = [ph.maps["total"], ph.maps["tissue"]]
    lazy = frame_moments(series, maps, frames_per_block=10)
    assert series.reads == []  # nothing is read before compute
    got = lazy.compute(scheduler="threads")
    nt, nz = ph.pet.shape[:2]
    assert all(t.stop - t.start <= 10 and z.stop - z.start <= 16 for t, z in series.reads)
    covered = np.zeros((nt, nz), int)
    for t, z in series.reads:
        covered[t, z] += 1
    assert (covered == 1).all()  # every frame of every slice read exactly once
    want = label_moments(ph.pet, maps)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.m2, want.m2, rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(got.min, want.min)
    np.testing.assert_array_equal(got.max, want.max)


def test_frame_moments_of_lazy_eroded_maps_compute_only_when_asked(cohort):
    _, phantoms = cohort
    ph = phantoms["sub-001"]
    seg = ph.maps["total"]
    series = Recorder(ph.pet, slab=16)
    with raise_if_dask_computes():
        lazy_seg = da.from_array(seg, chunks=(16, *seg.shape[1:]))
        maps = [lazy_seg, erode_labels(lazy_seg, 1)]
        lazy = frame_moments(series, maps, frames_per_block=10)
    assert series.reads == []
    got = lazy.compute()
    labels = {int(k) for k in np.unique(seg) if k}
    for i, erosion in enumerate((0, 1)):
        ref = numpy_tacs(ph.pet, seg, labels, erosion)
        present = ref["Label Index"].unique()
        assert len(present) > 0
        np.testing.assert_array_equal(np.flatnonzero(got.count[0, i, 1:]) + 1, present)
        for k, rows in ref.groupby("Label Index"):
            np.testing.assert_array_equal(got.count[:, i, k], rows["n"])
            np.testing.assert_allclose(got.mean[:, i, k], rows["mean"], rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(got.std[:, i, k], rows["std"], rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 6), st.integers(1, 7)),
    slab=st.integers(1, 4),
    block=st.integers(1, 6),
    n_maps=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_frame_moments_any_chunking(shape, slab, block, n_maps, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(1000, 50, shape).astype(np.float32)
    maps = [rng.integers(0, 4, shape[1:], dtype=np.uint8) for _ in range(n_maps)]
    got = frame_moments(Recorder(values, slab), maps, n_labels=4, frames_per_block=block)
    got = got.compute(scheduler="sync")
    want = label_moments(values, maps, n_labels=4)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.m2, want.m2, rtol=1e-9, atol=1e-6)


def test_label_tacs_on_zarr_equals_numpy(cohort):
    _, phantoms = cohort
    ph = phantoms["sub-001"]
    arr = zarr.create_array(
        zarr.storage.MemoryStore(), shape=ph.pet.shape, chunks=(1, 8, 40, 30), dtype="f4"
    )
    arr[...] = ph.pet
    kwargs = {"frame_mid_s": MIDS, "spacing_mm": SPACING, "erosion": (0, 2)}
    from_zarr = label_tacs(arr, {"tissue": ph.maps["tissue"]}, **kwargs)
    in_memory = label_tacs(ph.pet, {"tissue": ph.maps["tissue"]}, **kwargs)
    pd.testing.assert_frame_equal(from_zarr, in_memory)


def test_refuses_bad_input(cohort):
    _, phantoms = cohort
    ph = phantoms["sub-001"]
    with pytest.raises(InvalidInputError, match="expected a"):
        frame_moments(ph.pet[0], [ph.maps["total"]])
    with pytest.raises(InvalidInputError, match="shape"):
        frame_moments(ph.pet, [ph.maps["total"][1:]])
    with pytest.raises(InvalidInputError, match="Dask"):
        frame_moments(da.from_array(ph.pet), [ph.maps["total"]])
    with pytest.raises(InvalidInputError, match="erosion"):
        label_tacs(
            ph.pet, {"t": ph.maps["total"]}, frame_mid_s=MIDS, spacing_mm=SPACING, erosion=[-1]
        )
    with pytest.raises(InvalidInputError, match="subject sub-001: no label map 'seg_organs'"):
        subject_tacs(store_url(cohort[0], "sub-001"), groups=["organs"])


def test_failures_are_collected(cohort, tmp_path):
    root = tmp_path / "cohort"
    shutil.copytree(cohort[0], root)
    # sub-002 loses a chunk of its series: damage, which must fail it (not read as zeros)
    chunk = Path(store_url(root, "sub-002")) / "pet_dynamic/pet/c/3/1/0/0"
    assert chunk.exists()
    chunk.unlink()
    run = cohort_tacs(str(root), groups=["body"], run=Run(serial=True, progress=False))
    assert set(run.failed) == {"sub-002"}
    assert run.exit_code == 1
    assert set(run.table["Subject"]) == {"sub-001"}
    with pytest.raises(InvalidInputError, match="not in the index"):
        cohort_tacs(str(root), subjects=["sub-404"], run=Run(serial=True, progress=False))


def test_job_pickles_and_reports_errors(cohort):
    task = SubjectTask(
        subject_tacs,
        f"{cohort[0]}/subjects/sub-404/20261207T000000000000Z.zarr",
        {},
        {"groups": ["body"]},
    )
    task = pickle.loads(pickle.dumps(task))
    (out,) = Run(serial=True, progress=False).map(
        pickle.loads(pickle.dumps(SubjectTask.__call__)), [task], desc="t"
    )
    assert out.failure is not None and "sub-404" in out.failure.error
    assert "Traceback" in out.failure.traceback


@pytest.mark.cluster
def test_cluster_equals_serial(cohort, serial, cluster):
    run = cohort_tacs(cohort[0], erosion=(0, 1), run=Run(scheduler=cluster, progress=False))
    assert run.failed == {}
    pd.testing.assert_frame_equal(run.table, serial)


@pytest.mark.s3
@pytest.mark.cluster
def test_s3_on_cluster_equals_local(s3_bucket, serial, cluster):
    url = f"{s3_bucket}/cohort"
    write_dynamic_cohort(url, noise=0.05, options=storage_options(url))
    run = cohort_tacs(url, erosion=(0, 1), run=Run(scheduler=cluster, progress=False))
    assert run.failed == {}
    pd.testing.assert_frame_equal(run.table, serial)


def test_cli(cohort, serial, tmp_path, capsys):
    out = tmp_path / "tacs.parquet"
    code = main(
        [
            "tacs",
            cohort[0],
            "-o",
            str(out),
            "--erosion",
            "0,1",
            "--groups",
            "total,body",
            "--serial",
            "--no-progress",
        ]
    )
    assert code == 0
    table = pd.read_parquet(out)
    want = serial[serial["Task"].isin(["ts_total", "ts_body"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(table, want)
    assert "2 subjects done, 0 failed" in capsys.readouterr().out
    code = main(
        [
            "tacs",
            cohort[0],
            "-o",
            str(out),
            "--subjects",
            "sub-001",
            "--groups",
            "organs",
            "--serial",
            "--no-progress",
        ]
    )
    assert code == 1
    assert "FAILED sub-001" in capsys.readouterr().err
