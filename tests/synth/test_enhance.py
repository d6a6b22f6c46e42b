"""The synthetic ENHANCE.PET-layout cohort: layout, labels, geometry, uptake, determinism."""

from __future__ import annotations

import dataclasses
import gzip
import json
import pickle
import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.labels import parse_labels
from petzarr.cohort.layout import ENHANCE_GROUPS
from petzarr.convert.nifti import read_nifti
from petzarr.convert.resample import resample_nearest
from petzarr.convert.sources import read_source
from petzarr.synth import (
    ENHANCE_LABELS,
    MOOSE_LABELS,
    SIZES,
    draw_subject,
    subject_paths,
    write_enhance_cohort,
    write_subject,
)
from petzarr.synth.grids import nearest_tie_margin

LIVER = ("organs", 8)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return root, write_enhance_cohort(root, subjects=3, size="tiny", seed=3)


def _canonical(path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.load(path))
    return np.asanyarray(img.dataobj), img.affine


def _world_centroid(mask_xyz: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.argwhere(mask_xyz).mean(axis=0)
    return (affine @ np.append(ijk, 1.0))[:3]


def test_layout_and_file_counts(cohort):
    root, truth = cohort
    assert [s.subject for s in truth.subjects] == ["0001", "0002", "0003"]
    for name in ("labels.json", "CT-details.xlsx", "PT-details.xlsx"):
        assert (root / name).is_file()
    images = root / "imaging-data/images"
    for modality in ("CT", "PT"):
        assert sorted(p.name for p in (images / modality).iterdir()) == [
            "0001.nii.gz",
            "0002.nii.gz",
            "0003.nii.gz",
        ]
    gt = root / "imaging-data/ground-truth"
    assert sorted(p.name for p in gt.iterdir()) == sorted(g.folder for g in ENHANCE_GROUPS)
    assert all(len(list((gt / g.folder).glob("*.nii.gz"))) == 3 for g in ENHANCE_GROUPS)
    size = sum(p.stat().st_size for p in root.rglob("*.nii.gz")) / 3
    assert size < 500_000


def test_labels_json_is_the_datasets_with_its_gaps(cohort):
    root, truth = cohort
    data = json.loads((root / "labels.json").read_text())
    assert list(data) == [g.model for g in ENHANCE_GROUPS]
    assert data["clin_ct_cardiac"]["1"] == "heart_myocardium"
    assert data["clin_ct_vertebrae"]["28"] == "sacrum"
    assert "4" not in data["clin_ct_organs"] and data["clin_ct_organs"]["18"] == "thyroid_right"
    assert "23" not in data["clin_ct_peripheral_bones"] and "31" in data["clin_ct_peripheral_bones"]
    assert sum(len(t) for t in data.values()) == 128  # the card's 130 less brain and skull
    assert sum(len(t) for t in MOOSE_LABELS.values()) == 130
    assert {k: len(v) for k, v in data.items()} == {
        "clin_ct_body_composition": 3,
        "clin_ct_cardiac": 13,
        "clin_ct_muscles": 10,
        "clin_ct_organs": 17,
        "clin_ct_peripheral_bones": 30,
        "clin_ct_ribs": 27,
        "clin_ct_vertebrae": 28,
    }
    parsed = parse_labels(data)
    assert set(parsed) == {g.name for g in ENHANCE_GROUPS}
    assert truth.labels == ENHANCE_LABELS


def test_label_maps_are_uint8_on_the_ct_grid_and_match_the_truth(cohort):
    root, truth = cohort
    for s in truth.subjects:
        paths = subject_paths(root, s.subject)
        ct = nib.load(paths["CT"])
        assert ct.get_data_dtype() == np.int16
        for g in ENHANCE_GROUPS:
            img = nib.load(paths[g.name])
            assert img.get_data_dtype() == np.uint8
            assert img.shape == ct.shape and np.array_equal(img.affine, ct.affine)
            data = np.asarray(img.dataobj)
            assert data.dtype == np.uint8
            ids, counts = np.unique(data, return_counts=True)
            present = {(g.name, int(i)): int(n) for i, n in zip(ids, counts) if i}
            assert set(present) <= {(g.name, i) for i in ENHANCE_LABELS[g.model]}
            assert present == {k: n for k, n in s.label_voxels.items() if k[0] == g.name}
            # every group is drawn, most of its labels inside this field of view
            assert len(present) >= 0.25 * len(ENHANCE_LABELS[g.model]), g.name
        assert set(s.suv) == set(s.label_voxels)
        assert not set(s.absent) & set(s.label_voxels)


def test_ct_is_hounsfield(cohort):
    root, truth = cohort
    s = truth.subjects[0]
    paths = subject_paths(root, s.subject)
    ct = np.asarray(nib.load(paths["CT"]).dataobj)
    organs = np.asarray(nib.load(paths["organs"]).dataobj)
    assert abs(ct[organs == 8].mean() - 60) < 5  # liver
    assert abs(np.median(ct[:, :, -1]) + 1000) < 20  # air above the shoulders... or head
    assert ct.min() < -900 and ct.max() > 600  # air and bone


def test_same_seed_same_bytes(cohort, tmp_path):
    root, _ = cohort
    write_enhance_cohort(tmp_path / "a", subjects=3, size="tiny", seed=3)
    for path in root.rglob("*.nii.gz"):
        assert (tmp_path / "a" / path.relative_to(root)).read_bytes() == path.read_bytes(), path
    write_enhance_cohort(tmp_path / "b", subjects=1, size="tiny", seed=4)
    ct = "imaging-data/images/CT/0001.nii.gz"
    assert (tmp_path / "b" / ct).read_bytes() != (root / ct).read_bytes()


def test_storage_variants_cycle_so_three_subjects_cover_them():
    for seed in range(8):
        specs = [draw_subject(i, seed=seed) for i in range(3)]
        assert {s.orientation for s in specs} == {"RAS", "LPS"}
        assert {s.pet_int16 for s in specs} == {True, False}


def test_lps_subject_has_the_same_world_as_ras(tmp_path):
    spec = draw_subject(0, seed=1)
    ras = write_subject(tmp_path / "ras", dataclasses.replace(spec, orientation="RAS"))
    lps = write_subject(tmp_path / "lps", dataclasses.replace(spec, orientation="LPS"))
    assert ras.suv == lps.suv and ras.label_voxels == lps.label_voxels
    pr, pl = subject_paths(tmp_path / "ras", "0001"), subject_paths(tmp_path / "lps", "0001")
    for key in pr:
        img = nib.load(pl[key])
        assert np.diag(img.affine)[0] < 0 and np.diag(img.affine)[1] < 0 and img.affine[2, 2] > 0
        assert int(img.header["qform_code"]) == int(img.header["sform_code"]) == 1
        np.testing.assert_array_equal(img.header.get_qform(), img.header.get_sform())
        assert np.array_equal(
            np.asarray(img.dataobj), np.asarray(nib.load(pr[key]).dataobj)[::-1, ::-1]
        )
        (a, aff_a), (b, aff_b) = _canonical(pr[key]), _canonical(pl[key])
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(aff_a, aff_b)
    # the liver is at the same place in world millimetres, read either way
    seg_r, seg_l = nib.load(pr["organs"]), nib.load(pl["organs"])
    np.testing.assert_allclose(
        _world_centroid(np.asarray(seg_r.dataobj) == 8, seg_r.affine),
        _world_centroid(np.asarray(seg_l.dataobj) == 8, seg_l.affine),
        atol=1e-6,
    )


def test_int16_pet_decodes_to_bq_per_ml(tmp_path):
    spec = draw_subject(0, seed=2)
    as_int = write_subject(tmp_path / "i", dataclasses.replace(spec, pet_int16=True))
    as_float = write_subject(tmp_path / "f", dataclasses.replace(spec, pet_int16=False))
    img_i = nib.load(subject_paths(tmp_path / "i", "0001")["PT"])
    img_f = nib.load(subject_paths(tmp_path / "f", "0001")["PT"])
    assert img_i.get_data_dtype() == np.int16 and img_f.get_data_dtype() == np.float32
    assert as_int.pet_int16 and as_int.pet_slope == pytest.approx(img_i.dataobj.slope)
    assert img_i.dataobj.inter == 0 and as_float.pet_slope is None
    with gzip.open(img_i.get_filename()) as f:
        raw = nib.Nifti1Header.from_fileobj(f)
    assert raw["scl_slope"] == np.float32(as_int.pet_slope) and raw["scl_inter"] == 0
    decoded, exact = img_i.get_fdata(), img_f.get_fdata()
    assert np.abs(decoded - exact).max() <= 0.51 * as_int.pet_slope
    assert decoded.max() > 5 * as_int.suv_denominator  # Bq/mL: hot organs are several SUV
    # and petzarr's own reader applies the slope the same way
    ours = read_nifti(img_i.get_filename()).data  # canonical (z, y, x)
    canonical = nib.as_closest_canonical(img_i).get_fdata()
    np.testing.assert_allclose(ours, np.transpose(canonical, (2, 1, 0)), rtol=1e-6)


def test_pet_is_on_its_own_grid_and_lines_up_in_world_space(cohort):
    root, truth = cohort
    for s in truth.subjects:
        ct, pet = s.ct_grid, s.pet_grid
        assert all(p > c for p, c in zip(pet.spacing[1:], ct.spacing[1:]))
        assert all(
            abs((po - co) / cs - round((po - co) / cs)) > 1e-3
            for po, co, cs in zip(pet.origin, ct.origin, ct.spacing)
        )
        assert nearest_tie_margin(ct, pet) > 0
        # the world boxes overlap over most of the CT
        for axis in range(3):
            lo = max(ct.origin[axis], pet.origin[axis])
            hi = min(
                ct.origin[axis] + ct.spacing[axis] * (ct.shape[axis] - 1),
                pet.origin[axis] + pet.spacing[axis] * (pet.shape[axis] - 1),
            )
            assert hi - lo > 0.8 * ct.spacing[axis] * (ct.shape[axis] - 1)
        # PET at the CT liver centroid is liver activity
        paths = subject_paths(root, s.subject)
        organs = read_nifti(str(paths["organs"]))
        pet_vol = read_nifti(str(paths["PT"]))
        zyx = np.argwhere(organs.data == 8).mean(axis=0)
        world = [o + sp * i for o, sp, i in zip(ct.origin, ct.spacing, zyx)]
        idx = tuple(round((w - o) / sp) for w, o, sp in zip(world, pet.origin, pet.spacing))
        assert pet_vol.data[idx] == pytest.approx(s.activity(*LIVER), rel=0.25)


def test_mean_pet_in_the_eroded_liver_is_its_true_uptake(cohort):
    root, truth = cohort
    for s in truth.subjects:
        # the activity decayed to scan start, as the PET is decay-corrected to scan start
        at_scan = s.injected_activity_bq * 2 ** (-s.uptake_s / 6586.2)
        assert s.activity_at_scan_bq == pytest.approx(at_scan, rel=1e-14)
        assert s.suv_denominator == pytest.approx(at_scan / (s.weight_kg * 1000), rel=1e-14)
        assert 50 * 60 <= s.uptake_s <= 80 * 60
        paths = subject_paths(root, s.subject)
        organs, pet = read_nifti(str(paths["organs"])), read_nifti(str(paths["PT"]))
        core = ndimage.binary_erosion(resample_nearest(organs.data, organs.grid, pet.grid) == 8)
        assert core.sum() > 50
        assert pet.data[core].mean() == pytest.approx(s.activity(*LIVER), rel=0.04)
        assert s.suv[LIVER] == s.tissue_suv["liver"]


def test_spreadsheets(cohort):
    root, truth = cohort
    pt = pd.read_excel(root / "PT-details.xlsx", dtype={"Patient": str})
    ct = pd.read_excel(root / "CT-details.xlsx", dtype={"Patient": str})
    for col in ("Patient", "Age", "Sex", "Weight [kg]", "Height [m]", "Data-Source"):
        assert col in pt.columns
    for col in ("Injected Activity [MBq]", "Injection Time", "Acquisition Time"):
        assert col in pt.columns
    assert {"Patient", "kVp", "Manufacturer"} <= set(ct.columns)
    assert list(pt["Patient"]) == list(ct["Patient"]) == ["0001", "0002", "0003"]
    assert set(pt["Data-Source"]) <= {"AutoPET", "Leipzig", "Careggi"}
    assert set(pt["Sex"]) <= {"M", "F"}
    for row, s in zip(pt.to_dict("records"), truth.subjects):
        assert row["Weight [kg]"] == s.weight_kg and row["Height [m]"] == s.height_m
        assert row["Injected Activity [MBq]"] * 1e6 == pytest.approx(s.injected_activity_bq)
        t0, t1 = (
            sum(int(v) * f for v, f in zip(str(row[c]).split(":"), (3600, 60, 1)))
            for c in ("Injection Time", "Acquisition Time")
        )
        assert all(
            re.fullmatch(r"\d\d:\d\d:\d\d", str(row[c]))
            for c in ("Injection Time", "Acquisition Time")
        )
        assert 50 * 60 <= t1 - t0 <= 80 * 60


def test_the_enhance_reader_takes_it(cohort):
    root, truth = cohort
    source = read_source(str(root))
    assert [s.subject for s in source.subjects] == ["0001", "0002", "0003"]
    assert source.labels == {g.name: dict(ENHANCE_LABELS[g.model]) for g in ENHANCE_GROUPS}
    meta = source.subjects[0].metadata
    assert meta["Weight [kg]"] == truth.subjects[0].weight_kg and meta["Licence"]


def test_dropped_and_out_of_view_labels(tmp_path):
    spec = draw_subject(0, seed=5)
    anatomy = dataclasses.replace(spec.anatomy, dropped=frozenset({"gallbladder", "kidney_left"}))
    truth = write_subject(tmp_path, dataclasses.replace(spec, anatomy=anatomy))
    assert truth.dropped == (("organs", 5), ("organs", 6))
    assert set(truth.dropped) <= set(truth.absent)
    organs = np.asarray(nib.load(subject_paths(tmp_path, "0001")["organs"]).dataobj)
    assert not np.isin(organs, [5, 6]).any() and (organs == 7).any()
    # the tiny field of view (neck to thigh) leaves out the feet and the skull base
    assert ("peripheral_bones", 28) in truth.absent and ("vertebrae", 1) in truth.absent


def test_truth_pickles(cohort):
    _, truth = cohort
    assert pickle.loads(pickle.dumps(truth)) == truth


def test_full_size_geometry_without_rendering():
    spec = draw_subject(0, seed=0, size="full")
    assert spec.ct_grid.shape == (531, 512, 512) and spec.pet_grid.shape == (531, 440, 440)
    assert spec.ct_grid.spacing == (3.0, 0.9765625, 0.9765625)
    assert nearest_tie_margin(spec.ct_grid, spec.pet_grid) > 0
    for v in spec.ct_grid.origin + spec.pet_grid.origin:
        assert float(np.float32(v)) == v  # exact in a NIfTI header, either orientation
    assert set(SIZES) == {"tiny", "small", "full"}


@pytest.mark.parametrize(
    "kwargs", [{"size": "huge"}, {"subjects": 0}, {"subjects": 2.5}, {"seed": -1}]
)
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(InvalidInputError, match="synthetic cohort"):
        write_enhance_cohort(tmp_path, **kwargs)
