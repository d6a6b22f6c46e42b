"""The synthetic hedyPET-layout cohort: layout, sidecars, tables, kinetics, aorta, memory."""

from __future__ import annotations

import json
import math
import pickle
import tracemalloc
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from petzarr.analytics.kernels.aorta import aorta_segments
from petzarr.analytics.kernels.patlak import patlak_fit
from petzarr.cohort.errors import InvalidInputError
from petzarr.convert.nifti import Grid, open_nifti, read_nifti
from petzarr.convert.resample import resample_nearest
from petzarr.synth import (
    BODY_LABELS,
    HEDY_SIZES,
    HEDYPET_FRAMING,
    TISSUE_LABELS,
    TOTAL_LABELS,
    draw_hedy_subject,
    hedy_paths,
    write_hedypet_cohort,
)
from petzarr.synth.anatomy import build_phantom
from petzarr.synth.grids import nearest_tie_margin
from petzarr.synth.hedypet import DYN_NOISE, REF_FRAME_S, REF_SUV, REF_VOXEL_ML
from petzarr.synth.render import rasterise, write_dynamic_pet

AORTA, LIVER = ("total", 52), ("total", 5)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Two tiny subjects, static and dynamic datasets under two roots."""
    root = tmp_path_factory.mktemp("hedy")
    truth = write_hedypet_cohort(
        root / "static", dynamic_root=root / "dynamic", subjects=2, size="tiny", seed=3
    )
    return root, truth


def _paths(truth, subject):
    return hedy_paths(truth.static_root, subject, truth.dynamic_root)


def _dynamic(truth, subject):
    return read_nifti(str(_paths(truth, subject)["pet_dynamic"]))


def _on_grid(truth, subject, group, grid):
    seg = read_nifti(str(_paths(truth, subject)[group]))
    return resample_nearest(seg.data, seg.grid, grid)


# --------------------------------------------------------------------------- layout


def test_layout_and_participants(cohort):
    root, truth = cohort
    assert [s.subject for s in truth.subjects] == ["sub-001", "sub-002"]
    static, dynamic = root / "static", root / "dynamic"
    for r in (static, dynamic):
        assert json.loads((r / "dataset_description.json").read_text())["BIDSVersion"]
        table = pd.read_csv(r / "participants.tsv", sep="\t", dtype={"participant_id": str})
        assert list(table.columns) == ["participant_id", "age", "sex", "weight", "height"]
        assert list(table["participant_id"]) == ["sub-001", "sub-002"]
        for row, s in zip(table.to_dict("records"), truth.subjects, strict=True):
            assert (row["age"], row["sex"]) == (s.age, s.sex)
            assert (row["weight"], row["height"]) == (s.weight_kg, s.height_m)
    for s in truth.subjects:
        p = _paths(truth, s.subject)
        assert p["pet_dynamic"].is_relative_to(dynamic) and p["pet"].is_relative_to(static)
        assert p["ct"].name == f"{s.subject}_ses-quadra_rec-br38f_ct.nii.gz"
        assert p["pet"].name == f"{s.subject}_ses-quadra_trc-FDG_rec-acstatPSF_pet.nii.gz"
        assert p["pet_dynamic"].name == f"{s.subject}_ses-quadra_trc-FDG_rec-acdyn_pet.nii.gz"
        assert p["total"] == (
            static / "derivatives/totalsegmentator" / s.subject
            / f"{s.subject}_ses-quadra_rec-br38f_seg-total_dseg.nii.gz"
        )  # fmt: skip
        for path in p.values():
            assert path.is_file(), path
    # the dynamic tree holds only the series and its sidecar
    assert sorted(p.name for p in (dynamic / "sub-001").rglob("*") if p.is_file()) == [
        "sub-001_ses-quadra_trc-FDG_rec-acdyn_pet.json",
        "sub-001_ses-quadra_trc-FDG_rec-acdyn_pet.nii.gz",
    ]
    size = sum(p.stat().st_size for p in root.rglob("*.nii.gz")) / 2
    assert size < 15e6


def test_one_root_by_default(tmp_path):
    truth = write_hedypet_cohort(tmp_path, subjects=1, seed=1)
    assert truth.dynamic_root == truth.static_root == str(tmp_path)
    assert hedy_paths(tmp_path, "sub-001")["pet_dynamic"].is_file()
    assert (tmp_path / "sub-001/ses-quadra/pet").is_dir()


def test_sidecars(cohort):
    _, truth = cohort
    for s in truth.subjects:
        p = _paths(truth, s.subject)
        static = json.loads(p["pet"].with_suffix("").with_suffix(".json").read_text())
        dynamic = json.loads(p["pet_dynamic"].with_suffix("").with_suffix(".json").read_text())
        for side in (static, dynamic):
            assert side["InjectedRadioactivityUnits"] == "MBq" and side["Units"] == "Bq/mL"
            assert side["InjectedRadioactivity"] * 1e6 == pytest.approx(s.injected_activity_bq)
            assert side["TimeZero"] == s.time_zero
            assert side["InjectionStart"] == side["ScanStart"] == 0
            assert side["TracerName"] == "FDG" and side["ImageDecayCorrected"] is True
        # SUV needs no decay: the images are decay-corrected to injection = scan start
        assert s.suv_denominator == s.injected_activity_bq / (s.weight_kg * 1000)
        assert 0.35 < s.injected_activity_bq / 1e6 / s.weight_kg < 0.46  # hedyPET's ~0.4 MBq/kg
        assert static["FrameTimesStart"] == [3000.0] and static["FrameDuration"] == [1200.0]
        assert dynamic["FrameTimesStart"] == list(truth.framing.start)
        assert dynamic["FrameDuration"] == list(truth.framing.duration)


def test_frame_table_is_hedypets():
    framing = HEDYPET_FRAMING
    durations = np.asarray(framing.duration)
    assert len(framing) == 69 and durations.sum() == 4200.0 == framing.end
    runs = [(float(d), int(n)) for d, n in zip(*np.unique(durations, return_counts=True))]
    assert runs == [(2.0, 20), (5.0, 10), (10.0, 15), (60.0, 6), (120.0, 10), (300.0, 8)]
    assert list(durations) == sorted(durations)  # short frames first
    np.testing.assert_array_equal(np.asarray(framing.start[1:]), np.cumsum(durations)[:-1])
    assert framing.start[0] == 0.0  # the listmode starts at injection


def test_label_tables_and_maps(cohort):
    _, truth = cohort
    tables = {"total": TOTAL_LABELS, "tissue": TISSUE_LABELS, "body": BODY_LABELS}
    assert truth.labels == tables
    assert len(TOTAL_LABELS) == 117 and TOTAL_LABELS[52] == "aorta" and TOTAL_LABELS[5] == "liver"
    assert TOTAL_LABELS[51] == "heart" and TOTAL_LABELS[90] == "brain"
    assert set(TOTAL_LABELS.values()) >= {"spleen", "kidney_left", "hip_left", "hip_right"}
    assert TISSUE_LABELS == {1: "subcutaneous_fat", 2: "torso_fat", 3: "skeletal_muscle"}
    assert BODY_LABELS == {1: "body_trunc", 2: "body_extremities"}
    for s in truth.subjects:
        p = _paths(truth, s.subject)
        ct = nib.load(p["ct"])
        assert ct.get_data_dtype() == np.int16
        for group, table in tables.items():
            tsv = pd.read_csv(
                p[group].with_name(p[group].name.replace(".nii.gz", ".tsv")), sep="\t"
            )
            assert list(tsv.columns) == ["index", "name"]
            assert dict(zip(tsv["index"], tsv["name"], strict=True)) == table
            img = nib.load(p[group])
            assert img.get_data_dtype() == np.uint8
            assert img.shape == ct.shape and np.array_equal(img.affine, ct.affine)
            ids, counts = np.unique(np.asarray(img.dataobj), return_counts=True)
            present = {(group, int(i)): int(n) for i, n in zip(ids, counts, strict=True) if i}
            assert present == {k: n for k, n in s.label_voxels.items() if k[0] == group}
            assert set(present) <= {(group, i) for i in table}
        assert {k for k in s.label_voxels if k[0] != "total"} == {
            ("tissue", 1), ("tissue", 2), ("tissue", 3), ("body", 1), ("body", 2)
        }  # fmt: skip
        assert len([k for k in s.label_voxels if k[0] == "total"]) > 40
        assert not set(s.absent) & set(s.label_voxels)
        assert s.composition[LIVER] == {"liver": 1.0} and s.composition[AORTA] == {"blood": 1.0}
        assert set(s.composition[("total", 51)]) == {"myocardium", "blood"}  # heart


def test_ct_and_both_pet_grids(cohort):
    _, truth = cohort
    for s in truth.subjects:
        p = _paths(truth, s.subject)
        assert nib.aff2axcodes(nib.load(p["ct"]).affine) == (
            ("R", "A", "S") if s.orientation == "RAS" else ("L", "P", "S")
        )
        for key, grid in (("ct", s.ct_grid), ("pet", s.pet_grid), ("pet_dynamic", s.dynamic_grid)):
            assert read_nifti(str(p[key])).grid == grid
        img = nib.load(p["pet_dynamic"])
        assert img.shape == (*s.dynamic_grid.shape[::-1], 69)
        assert img.get_data_dtype() == np.float32
        assert nearest_tie_margin(s.ct_grid, s.pet_grid) > 0
        assert nearest_tie_margin(s.ct_grid, s.dynamic_grid) > 0
    assert {s.orientation for s in truth.subjects} == {"RAS", "LPS"}


def test_same_seed_same_bytes(cohort, tmp_path):
    root, _ = cohort
    write_hedypet_cohort(tmp_path / "static", dynamic_root=tmp_path / "dynamic", subjects=2, seed=3)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) > 30
    for path in files:
        assert (tmp_path / path.relative_to(root)).read_bytes() == path.read_bytes(), path
    other = write_hedypet_cohort(tmp_path / "other", subjects=1, seed=4)
    dyn = "sub-001/ses-quadra/pet/sub-001_ses-quadra_trc-FDG_rec-acdyn_pet.nii.gz"
    assert (tmp_path / "other" / dyn).read_bytes() != (root / "dynamic" / dyn).read_bytes()
    assert (
        other.subjects[0].kinetics
        != write_hedypet_cohort(tmp_path / "again", subjects=1, seed=5).subjects[0].kinetics
    )


# --------------------------------------------------------------------------- kinetics


def test_kinetic_truth_is_self_consistent(cohort):
    _, truth = cohort
    t_min = truth.framing.middle / 60
    for s in truth.subjects:
        for tissue in ("liver", "brain", "muscle", "kidney", "myocardium", "spleen"):
            k = s.kinetics[tissue]
            assert k.ki == pytest.approx(k.k1 * k.k3 / (k.k2 + k.k3), rel=1e-12)
        ifv = s.input_values
        assert ifv.shape == (69,) and np.array_equal(s.input_times, truth.framing.middle)
        assert ifv[0] == 0.0 and ifv.max() > 30 * ifv[-1]  # bolus arrives after a few s
        assert 5 <= int(np.argmax(ifv)) <= 15  # peak 10-30 s after injection
        # noise-free Patlak (hedyPET's way: last 4 frames) on the true TACs recovers the
        # slope, of mixtures too (the heart: myocardium and blood)
        keys = [
            k for k in (LIVER, ("total", 1), ("total", 51), ("tissue", 3)) if k in s.composition
        ]
        assert len(keys) == 4
        for key in keys:
            ki, _ = patlak_fit(s.tac(*key), ifv, t_min, n_frames=[4])
            assert ki[0] == pytest.approx(s.ki(*key), rel=0.01), key
        heart = ("total", 51)
        w = s.composition[heart]
        assert s.ki(*heart) == pytest.approx(
            w["myocardium"] * (1 - s.kinetics["myocardium"].vb) * s.kinetics["myocardium"].ki
        )
        # the liver's static value is its 50-70 min mean, in hedyPET's SUV range
        assert 1.3 < s.static_activity(*LIVER) / s.suv_denominator < 3.5
        assert s.tissue_of(*LIVER) == "liver"
        with pytest.raises(KeyError, match="mixture"):
            s.tissue_of(*heart)


def test_truth_pickles(cohort):
    _, truth = cohort
    again = pickle.loads(pickle.dumps(truth))
    assert again.subjects[0].kinetics == truth.subjects[0].kinetics
    np.testing.assert_array_equal(again.subjects[1].input_values, truth.subjects[1].input_values)


def test_a_frames_organ_mean_is_the_true_tac(cohort):
    """The eroded liver in the dynamic PET: its mean is the true frame average, within noise."""
    _, truth = cohort
    for s in truth.subjects:
        dyn = _dynamic(truth, s.subject)
        liver = _on_grid(truth, s.subject, "total", s.dynamic_grid) == LIVER[1]
        # blur reaches ~2 voxels in z (5 mm slices), under one in-plane
        core = ndimage.binary_erosion(liver, structure=np.ones((5, 3, 3), bool))
        assert core.sum() > 100
        tac = s.tac(*LIVER)
        for frame in (12, 30, 45, 55, 68):
            duration = truth.framing.duration[frame]
            k = (
                DYN_NOISE**2 * REF_SUV * s.suv_denominator * REF_FRAME_S / duration
                * REF_VOXEL_ML / s.dynamic_grid.voxel_volume_ml
            )  # fmt: skip
            sem = np.sqrt(k * tac[frame] / core.sum())
            got = float(dyn.data[frame][core].mean())
            assert abs(got - tac[frame]) < 5 * sem + 0.01 * tac[frame], frame
        # and the static PET holds the 50-70 min mean
        pet = read_nifti(str(_paths(truth, s.subject)["pet"]))
        core = ndimage.binary_erosion(
            _on_grid(truth, s.subject, "total", s.pet_grid) == LIVER[1], np.ones((3, 3, 3), bool)
        )
        assert pet.data[core].mean() == pytest.approx(s.static_activity(*LIVER), rel=0.01)


def test_the_blood_pool_carries_the_input_function(cohort):
    _, truth = cohort
    for s in truth.subjects:
        dyn = _dynamic(truth, s.subject)
        aorta = _on_grid(truth, s.subject, "total", s.dynamic_grid) == AORTA[1]
        curve = dyn.data[:, aorta].mean(axis=1)  # partial volume lowers it, shape stays
        assert int(np.argmax(curve)) == int(np.argmax(s.input_values))
        assert np.corrcoef(curve, s.input_values)[0, 1] > 0.99


# --------------------------------------------------------------------------- the aorta


def _check_segments(seg: np.ndarray) -> None:
    assert sorted(set(np.unique(seg).tolist()) - {0}) == [1, 2, 3, 4]
    z, y = np.indices(seg.shape)[:2]

    def mean(coord, label):
        return float(coord[seg == label].mean())

    assert mean(y, 1) > mean(y, 3)  # ascending in front of descending
    assert mean(z, 2) > max(mean(z, 1), mean(z, 3)) > mean(z, 4)  # arch on top, lower below


def test_aorta_splits_into_hedypets_segments(cohort):
    """On the dynamic grid, as hedyPET's input-function step sees it, and on the CT grid."""
    _, truth = cohort
    early = np.asarray(truth.framing.start) < 40
    for s in truth.subjects:
        dyn = _dynamic(truth, s.subject)
        mask = _on_grid(truth, s.subject, "total", s.dynamic_grid) == AORTA[1]
        _check_segments(aorta_segments(mask, dyn.data[early].mean(axis=0)))
        total = read_nifti(str(_paths(truth, s.subject)["total"]))
        ct_mask = total.data == AORTA[1]
        _check_segments(aorta_segments(ct_mask, ct_mask.astype(np.float32)))


def _crop(grid: Grid, lo, hi) -> Grid:
    """The part of ``grid`` inside the world box ``lo``-``hi`` (x, y, z), on its lattice."""
    o, sp, n = (np.asarray(v, dtype=float) for v in (grid.origin, grid.spacing, grid.shape))
    i0 = np.clip(np.floor((np.asarray(lo[::-1]) - o) / sp), 0, n).astype(int)
    i1 = np.clip(np.ceil((np.asarray(hi[::-1]) - o) / sp) + 1, 0, n).astype(int)
    return Grid(tuple(int(v) for v in i1 - i0), grid.spacing, tuple(float(v) for v in o + i0 * sp))


@pytest.mark.parametrize("size", ["small", "half", "full"])
def test_aorta_topology_on_real_sized_grids(size):
    """Rendered around the aorta only: CT-grid map -> dynamic grid -> hedyPET's split."""
    for index in range(3):
        spec = draw_hedy_subject(index, seed=11, size=size)
        phantom = build_phantom(spec.anatomy)
        aid = next(i for i, st in enumerate(phantom.structures, 1) if st.name == "aorta")
        bounds = [sh.bounds() for i, sh in phantom.items if i == aid]
        lo = np.min([b[0] for b in bounds], axis=0) - 40
        hi = np.max([b[1] for b in bounds], axis=0) + 40
        ct, dyn = _crop(spec.ct_grid, lo - 20, hi + 20), _crop(spec.dynamic_grid, lo, hi)
        ct_mask = (rasterise(phantom, ct) == aid).astype(np.uint8)
        mask = resample_nearest(ct_mask, ct, dyn) > 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _check_segments(aorta_segments(mask, np.where(mask, 10.0, 1.0)))


def test_sizes_without_rendering():
    half = draw_hedy_subject(0, size="half")
    assert half.dynamic_grid.shape == (320, 220, 220)
    assert 4.2e9 < HEDY_SIZES["half"].frame_bytes * 69 < 4.4e9
    full = draw_hedy_subject(0, size="full")
    assert full.ct_grid.shape == (531, 512, 512) and full.pet_grid.shape == (531, 440, 440)
    assert full.dynamic_grid.shape == (645, 440, 440)
    assert full.pet_grid.spacing == (2.0, 1.6484375, 1.6484375)
    for grid in (full.ct_grid, full.pet_grid, full.dynamic_grid):
        assert all(float(np.float32(v)) == v for v in grid.origin)
    # one scanner: the three grids cover about the same box
    top = [g.origin[0] + g.spacing[0] * (g.shape[0] - 1) for g in (full.pet_grid, full.ct_grid)]
    assert abs(top[0] - top[1]) < 10
    assert set(HEDY_SIZES) == {"tiny", "small", "half", "full"}


# --------------------------------------------------------------------------- memory


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_dynamic_series_is_written_in_bounded_memory(tmp_path):
    """A medium series (80 MB raw) is streamed slab by slab: memory does not grow with frames."""
    grid = Grid((72, 56, 72), (5.0, 6.0, 7.0), (0.0, 0.0, 0.0))
    owner = np.zeros(grid.shape, np.uint8)
    owner[10:60, 8:48, 8:64] = 1
    owner[20:40, 20:36, 20:50] = 2
    frames = np.random.default_rng(0).uniform(100, 5000, (69, 3)).astype(np.float32)
    frames[:, 0] = 0  # air

    def write(n: int, name: str) -> None:
        write_dynamic_pet(
            tmp_path / name, owner, frames[:n], grid, orientation="LPS",
            rng=np.random.default_rng(1), fwhm_mm=10.0, k=[50.0] * n, slab=16,
        )  # fmt: skip

    write(2, "warm.nii.gz")  # compile the kernels outside the trace
    few, many = (
        _traced_peak(lambda: write(6, "few.nii.gz")),
        _traced_peak(lambda: write(69, "all.nii.gz")),
    )
    raw = 69 * 4 * math.prod(grid.shape)
    assert raw > 75e6
    assert many < few + 1e6, (few, many)  # bounded by slabs and gzip buffers, not frames
    assert many < raw / 8, (many, raw)  # ~8 MB: gzip buffers, the noise bank, a few slabs
    with open_nifti(str(tmp_path / "all.nii.gz")) as stream:
        assert stream.shape_zyx == (69, *grid.shape)
    data = read_nifti(str(tmp_path / "all.nii.gz")).data
    core = data[:, 25:35, 24:32, 28:42]  # inside structure 2, away from its edges
    sem = np.sqrt(50.0 * frames[:, 2] / core[0].size)  # noise variance k a, unbiased
    assert np.all(np.abs(core.mean(axis=(1, 2, 3)) - frames[:, 2]) < 5 * sem)


@pytest.mark.parametrize(
    "kwargs", [{"size": "huge"}, {"subjects": 0}, {"subjects": 1.5}, {"seed": -1}]
)
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(InvalidInputError, match="synthetic hedyPET cohort"):
        write_hedypet_cohort(tmp_path, **kwargs)
