"""Converting hedyPET-layout cohorts: the 4D group against independent readers, the static
groups and metadata, resume, two roots, and bad inputs failing alone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from roundtrip import canonical, nearest_on
from stores import store_url

from petzarr.cohort import open_cohort
from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort
from petzarr.convert.plan import ConvertOptions
from petzarr.synth.hedypet import hedy_paths, write_hedypet_cohort


def _canonical_frames(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """nibabel's closest-canonical frames, each (z, y, x) float64, and the affine."""
    img = nib.as_closest_canonical(nib.load(path))
    n = img.shape[3]
    return [np.asarray(img.dataobj[..., t], dtype=np.float64).T for t in range(n)], img.affine


def _sidecar(image: Path) -> Path:
    return image.with_name(image.name.removesuffix(".nii.gz") + ".json")


def check_dynamic(cohort_url: str, made, *, storage_options: dict | None = None) -> None:
    """pet_dynamic of one subject: every frame, coordinate, frame time and label map."""
    from niizarr import zarr2nii
    from ome_zarr_models.v05.image import Image

    cohort = open_cohort(cohort_url, storage_options=storage_options)
    ds = cohort.open(made.subject, "pet_dynamic")
    frames, aff = _canonical_frames(made.pet_dynamic)
    assert ds.pet.dims == ("t", "z", "y", "x") and ds.pet.dtype == np.float32
    assert ds.pet.shape == (len(frames), *frames[0].shape)
    for t, expected in enumerate(frames):
        np.testing.assert_allclose(ds.pet.isel(t=t).values, expected, rtol=1e-6)
    for axis, dim in enumerate("xyz"):
        n = ds.sizes[dim]
        ijk = np.zeros((4, n))
        ijk[axis], ijk[3] = np.arange(n), 1
        np.testing.assert_allclose(ds[dim].values, (aff @ ijk)[axis], atol=1e-4)
    sidecar = json.loads(_sidecar(made.pet_dynamic).read_text())
    start, duration = np.array(sidecar["FrameTimesStart"]), np.array(sidecar["FrameDuration"])
    np.testing.assert_array_equal(ds.t.values, start + duration / 2)
    np.testing.assert_array_equal(ds.frame_start.values, start)
    np.testing.assert_array_equal(ds.frame_duration.values, duration)
    assert {"frame_start", "frame_duration"} <= set(ds.coords)
    assert ds.t.attrs["units"] == "s" and ds.pet.attrs["units"] == "Bq/mL"
    for group, path in made.segs.items():
        seg, seg_aff = canonical(path)
        expected = nearest_on(seg.astype(np.uint16), seg_aff, aff, frames[0].shape)
        np.testing.assert_array_equal(ds[f"seg_{group}"].values, expected)
        assert ds[f"seg_{group}"].attrs["labels"] == {
            str(k): v for k, v in cohort.labels[group].items()
        }
    # per-voxel labelled arithmetic works on the grid
    assert ds.pet.where(ds.seg_total == 3).isel(t=0).count() == (ds.seg_total == 3).sum()

    root = zarr.open_group(cohort.store_url(made.subject), mode="r")
    group = root["pet_dynamic"]
    Image.from_zarr(group)  # a valid OME-Zarr 0.5 image, time axis first
    axes = group.attrs["ome"]["multiscales"][0]["axes"]
    assert [a["name"] for a in axes] == ["t", "z", "y", "x"] and axes[0]["type"] == "time"
    img = zarr2nii(group)
    np.testing.assert_allclose(img.header.get_best_affine(), aff, atol=1e-4)
    data = np.asarray(img.dataobj)
    assert data.shape == (*frames[0].shape[::-1], len(frames))
    for t, expected in enumerate(frames):
        np.testing.assert_allclose(data[..., t].T, expected, rtol=1e-6)
    arr = group["pet"]
    assert arr.chunks == (1, min(64, arr.shape[1]), *arr.shape[2:])
    assert arr.metadata.codecs[-1].to_dict()["configuration"]["cname"] == "zstd"


def test_dynamic_group_round_trips(converted_bids):
    _root, cohort, subjects, report = converted_bids
    assert report.exit_code == 0 and report.counts["converted"] == 2, report.failed
    for made in subjects:
        check_dynamic(str(cohort), made)
    # xarray straight from the store, no petzarr
    ds = xr.open_zarr(store_url(cohort, "sub-002"), group="pet_dynamic")
    assert ds.pet.dims == ("t", "z", "y", "x") and ds.t.values[0] == 1.0
    assert ds.attrs["bids"]["ReconMethodName"] == "PSF+TOF 4i5s"


def test_static_groups_metadata_and_labels(converted_bids):
    _root, cohort, subjects, _ = converted_bids
    c = open_cohort(str(cohort))
    assert set(c.labels) == {"total", "tissue", "body"}
    index = c.index.set_index("subject")
    assert index.loc["sub-001", "InjectedRadioactivity"] == 25.0
    assert index.loc["sub-002", "weight"] == 65 and index.loc["sub-002", "sex"] == "M"
    assert index.loc["sub-001", "InjectedRadioactivityUnits"] == "MBq"
    assert index.loc["sub-001", "pet_dynamic_shape"] == "6x12x8x9"
    assert index.loc["sub-001", "groups"] == "body,tissue,total"
    for made in subjects:
        ct, _ = canonical(made.ct)
        pet, pet_aff = canonical(made.pet)
        ds_ct, ds_pet = c.open(made.subject, "ct"), c.open(made.subject, "pet")
        np.testing.assert_array_equal(ds_ct.ct.values, ct)
        np.testing.assert_allclose(ds_pet.pet.values, pet, rtol=1e-6)
        assert ds_pet.pet.attrs["units"] == "Bq/mL"
        for group, path in made.segs.items():
            seg, seg_aff = canonical(path)
            np.testing.assert_array_equal(ds_ct[f"seg_{group}"].values, seg)
            expected = nearest_on(seg.astype(np.uint16), seg_aff, pet_aff, pet.shape)
            np.testing.assert_array_equal(ds_pet[f"seg_{group}"].values, expected)
        root = zarr.open_group(c.store_url(made.subject), mode="r")
        meta = root.attrs["petzarr"]
        assert set(meta["sources"]) == {
            "ct",
            "pet",
            "pet_dynamic",
            "sidecar_pet",
            "sidecar_pet_dynamic",
            "seg_total",
            "seg_tissue",
            "seg_body",
        }
        assert all(len(s["sha256"]) == 64 for s in meta["sources"].values())
        assert "t1w_dixonbodyin" not in root  # extra images are opt-in
    assert not (cohort / "staging").exists()


def test_units_come_from_the_sidecars(bids_tree, tmp_path):
    root, (made,) = bids_tree(subjects=1)
    static = _sidecar(made.pet)
    static.write_text(json.dumps(json.loads(static.read_text()) | {"Units": "CNTS"}))
    dyn = _sidecar(made.pet_dynamic)
    fields = json.loads(dyn.read_text())
    del fields["Units"]
    dyn.write_text(json.dumps(fields))
    report = convert_cohort(str(root), str(tmp_path / "c"), run=Run(serial=True, progress=False))
    assert report.exit_code == 0, report.failed
    c = open_cohort(str(tmp_path / "c"))
    assert c.open("sub-001", "pet").pet.attrs["units"] == "CNTS"
    assert c.open("sub-001", "pet_dynamic").pet.attrs["units"] == "CNTS"  # from the static one


def test_scaled_int16_series_and_extra_images(bids_tree, tmp_path):
    root, (made,) = bids_tree(subjects=1, int16_dynamic=True)
    report = convert_cohort(
        str(root),
        str(tmp_path / "c"),
        run=Run(serial=True, progress=False),
        options=ConvertOptions(extra_images=True),
    )
    assert report.exit_code == 0, report.failed
    check_dynamic(str(tmp_path / "c"), made)
    from ome_zarr_models.v05.image import Image

    c = open_cohort(str(tmp_path / "c"))
    ds = c.open("sub-001", "t1w_dixonbodyin")
    mri, _ = canonical(made.mri)
    np.testing.assert_array_equal(ds.t1w.values, mri)
    assert not [v for v in ds.data_vars if str(v).startswith("seg_")]
    Image.from_zarr(zarr.open_group(c.store_url("sub-001"), mode="r")["t1w_dixonbodyin"])


def test_two_roots_and_a_subject_without_dynamic(bids_tree, tmp_path):
    root, subjects = bids_tree(subjects=2, two_roots=True)
    subjects[1].pet_dynamic.unlink()  # sub-002 has no dynamic scan
    dest = tmp_path / "c"
    report = convert_cohort(
        str(root),
        str(dest),
        dynamic_root=str(tmp_path / "dynamic"),
        run=Run(serial=True, progress=False),
    )
    assert report.exit_code == 0 and report.counts["converted"] == 2, report.failed
    check_dynamic(str(dest), subjects[0])
    store = zarr.open_group(store_url(dest, "sub-002"), mode="r")
    assert "pet_dynamic" not in store and {"ct", "pet"} <= set(store)
    index = pd.read_parquet(dest / "index.parquet").set_index("subject")
    assert pd.isna(index.loc["sub-002", "pet_dynamic_shape"])


def test_rerun_skips_unchanged_and_redoes_a_changed_sidecar(bids_tree, tmp_path):
    root, subjects = bids_tree(subjects=2)
    dest = tmp_path / "c"
    assert convert_cohort(str(root), str(dest), run=Run(serial=True, progress=False)).exit_code == 0
    again = convert_cohort(str(root), str(dest), run=Run(serial=True, progress=False))
    assert again.counts["skipped"] == 2
    dyn = _sidecar(subjects[1].pet_dynamic)
    fields = json.loads(dyn.read_text())
    fields["FrameTimesStart"] = [t + 30 for t in fields["FrameTimesStart"]]
    dyn.write_text(json.dumps(fields, indent=2))
    third = convert_cohort(str(root), str(dest), run=Run(serial=True, progress=False))
    assert {r.subject: r.status for r in third.results} == {
        "sub-001": "skipped",
        "sub-002": "converted",
    }
    ds = open_cohort(str(dest)).open("sub-002", "pet_dynamic")
    assert ds.frame_start.values[0] == 30.0
    check_dynamic(str(dest), subjects[1])


def _break(kind: str, path: Path, sidecar: Path) -> str:
    """Spoil one subject's series; return a regex its failure message must match."""
    if kind == "frame count":
        fields = json.loads(sidecar.read_text())
        fields["FrameTimesStart"], fields["FrameDuration"] = [0, 2, 4, 9, 19], [2, 2, 5, 10, 60]
        sidecar.write_text(json.dumps(fields))
        return re.escape(str(path)) + " has 6 frames but its sidecar lists 5"
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
        return re.escape(str(path)) + ": .*truncated"
    if kind == "corrupt stream":  # header and trailer intact: fails while streaming frames
        data = bytearray(path.read_bytes())
        at = len(data) * 4 // 5
        data[at : at + 64] = bytes(64)
        path.write_bytes(bytes(data))
        return re.escape(str(path)) + ": truncated or corrupt compressed data \\("
    if kind == "no sidecar":
        sidecar.unlink()
        return re.escape(f"subject sub-001: {sidecar} (sidecar of pet_dynamic) does not exist")
    if kind == "no frame times":
        fields = json.loads(sidecar.read_text())
        del fields["FrameTimesStart"]
        sidecar.write_text(json.dumps(fields))
        return "sub-001.*: no FrameTimesStart; a dynamic series needs its frame times"
    if kind == "bad sidecar":
        sidecar.write_text("{not json")
        return re.escape(f"subject sub-001: sidecar {sidecar} is not valid JSON")
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["frame count", "truncated", "corrupt stream", "no sidecar", "no frame times", "bad sidecar"],
)
def test_bad_series_fails_its_subject_alone(bids_tree, tmp_path, kind):
    # big enough (5 MB) that the damage lies beyond the reader's first 4 MB block
    shape = (64, 64, 54) if kind == "corrupt stream" else (9, 8, 12)
    root, subjects = bids_tree(subjects=2, dynamic_shape=shape)
    bad = subjects[0]
    sidecar = _sidecar(bad.pet_dynamic)
    pattern = _break(kind, bad.pet_dynamic, sidecar)
    dest = tmp_path / "c"
    report = convert_cohort(str(root), str(dest), run=Run(serial=True, progress=False))
    status = {r.subject: r for r in report.results}
    assert status["sub-002"].status == "converted"
    assert status["sub-001"].status == "failed"
    assert re.search(pattern, status["sub-001"].error), status["sub-001"].error
    assert list(pd.read_parquet(dest / "index.parquet")["subject"]) == ["sub-002"]
    assert not (dest / "subjects/sub-001").exists()  # nothing half-written left behind


def test_cli_two_roots_layout_and_extra_images(bids_tree, tmp_path, capsys):
    from petzarr.cli import main

    root, (made,) = bids_tree(subjects=1, two_roots=True)
    dest = tmp_path / "c"
    args = ["convert", str(root), str(dest), "--serial", "--no-progress", "--layout", "hedypet"]
    code = main([*args, "--dynamic-root", str(tmp_path / "dynamic"), "--extra-images"])
    assert code == 0, capsys.readouterr().err
    assert "1 converted" in capsys.readouterr().out
    check_dynamic(str(dest), made)
    assert "t1w_dixonbodyin" in zarr.open_group(store_url(dest, "sub-001"), mode="r")


@pytest.mark.s3
def test_two_roots_on_s3(bids_tree, tmp_path, s3_server, s3_bucket):
    import s3fs

    from petzarr.cohort.storage import storage_options

    root, subjects = bids_tree(subjects=2, two_roots=True)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    bucket = s3_bucket.removeprefix("s3://")
    fs.put(f"{root}/", f"{bucket}/static/", recursive=True)
    fs.put(f"{tmp_path / 'dynamic'}/", f"{bucket}/dynamic/", recursive=True)
    dest = f"{s3_bucket}/cohort"
    report = convert_cohort(
        f"{s3_bucket}/static",
        dest,
        dynamic_root=f"{s3_bucket}/dynamic",
        run=Run(serial=True, progress=False),
    )
    assert report.exit_code == 0 and report.counts["converted"] == 2, report.failed
    opts = storage_options(dest)
    ds = open_cohort(dest, storage_options=opts).open("sub-002", "pet_dynamic")
    frames, _ = _canonical_frames(subjects[1].pet_dynamic)
    np.testing.assert_allclose(ds.pet.isel(t=-1).values, frames[-1], rtol=1e-6)
    stored = store_url(dest, "sub-002", opts).removeprefix("s3://")
    store = fs.cat(f"{stored}/zarr.json")
    assert b'"sidecar_pet_dynamic"' in store and b'"etag": "' in store
    again = convert_cohort(
        f"{s3_bucket}/static",
        dest,
        dynamic_root=f"{s3_bucket}/dynamic",
        run=Run(serial=True, progress=False),
    )
    assert again.counts["skipped"] == 2


def test_synthetic_hedypet_cohort_round_trips(tmp_path):
    static, dynamic = tmp_path / "static", tmp_path / "dynamic"
    truth = write_hedypet_cohort(static, dynamic_root=dynamic, subjects=1, seed=2)
    dest = tmp_path / "c"
    report = convert_cohort(
        str(static), str(dest), dynamic_root=str(dynamic), run=Run(serial=True, progress=False)
    )
    assert report.exit_code == 0, report.failed
    paths = hedy_paths(static, "sub-001", dynamic)
    made = SimpleNamespace(
        subject="sub-001",
        pet_dynamic=paths["pet_dynamic"],
        segs={g: paths[g] for g in ("total", "tissue", "body")},
    )
    check_dynamic(str(dest), made)
    cohort = open_cohort(str(dest))
    assert cohort.labels == truth.labels
    assert cohort.open("sub-001", "pet_dynamic").sizes["t"] == len(truth.framing)
