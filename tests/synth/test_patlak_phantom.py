"""The Patlak phantom: written as hedyPET-layout NIfTI, converted by the real converter, and
its ``pet_dynamic`` group checked against the phantom and an independent float64 model."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from petzarr.cohort import open_cohort
from petzarr.cohort.constants import HEDYPET_FRAME_DURATIONS_S
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.executor import Run
from petzarr.cohort.storage import storage_options
from petzarr.convert.job import convert_cohort
from petzarr.synth.hedypet import hedy_paths
from petzarr.synth.patlak_phantom import (
    BODY,
    DURATIONS,
    KINETICS,
    MIDS,
    SHAPE,
    SPACING,
    STARTS,
    SUV_DENOMINATOR_BQ_ML,
    TISSUE,
    TOTAL,
    make_patlak_phantom,
    voxel_ml,
    write_patlak_cohort,
)

TABLES = {"total": TOTAL, "tissue": TISSUE, "body": BODY}
SERIAL = Run(serial=True, progress=False)
EPS32 = float(np.finfo(np.float32).eps)


def _feng_bq_ml(t_s: np.ndarray) -> np.ndarray:
    """Feng's FDG input function [Bq/mL], written out again here (float64)."""
    t = t_s / 60.0
    return 1000.0 * (
        (851.1225 * t - 21.8798 - 20.8113) * np.exp(-4.1339 * t)
        + 21.8798 * np.exp(-0.1191 * t)
        + 20.8113 * np.exp(-0.0104 * t)
    )


def _simpson_from_first(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cumulative Simpson integral from ``t[0]``, as hedyPET's Patlak takes it (scipy's
    ``cumulative_simpson(initial=0)``), computed here with fitted parabolas: interval
    ``k`` under the parabola through samples ``k, k+1, k+2`` when ``k`` is even and not
    the last interval, else through ``k-1, k, k+1``."""
    n = len(t)
    pieces = np.zeros(n - 1)
    for k in range(n - 1):
        first = k if k % 2 == 0 and k + 2 < n else k - 1
        x0 = t[k]
        coef = np.polyint(np.polyfit(t[first : first + 3] - x0, y[first : first + 3], 2))
        pieces[k] = np.polyval(coef, t[k + 1] - x0) - np.polyval(coef, 0.0)
    return np.concatenate([[0.0], np.cumsum(pieces)])


def _regions(maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each kinetic region's voxels, from the converted label maps."""
    total, tissue, body = maps["total"], maps["tissue"], maps["body"]
    out = {name: total == i for i, name in TOTAL.items()}
    out |= {name: (tissue == i) & (total == 0) for i, name in TISSUE.items()}
    out["other"] = (body == 1) & (total == 0) & (tissue == 0)
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Two noise-free subjects, static and dynamic roots apart, converted serially."""
    root = tmp_path_factory.mktemp("patlak")
    phantoms = write_patlak_cohort(root / "static", dynamic_root=root / "dynamic")
    report = convert_cohort(
        str(root / "static"), str(root / "cohort"), dynamic_root=str(root / "dynamic"), run=SERIAL
    )
    assert report.exit_code == 0 and report.counts["converted"] == 2, report.failed
    cohort = open_cohort(str(root / "cohort"))
    datasets = {s: cohort.open(s, "pet_dynamic").load() for s in phantoms}
    return root, phantoms, cohort, datasets


def test_both_orientations_are_written(converted):
    root, phantoms, _, _ = converted
    codes = {}
    for s in phantoms:
        img = nib.load(hedy_paths(root / "static", s, root / "dynamic")["pet_dynamic"])
        codes[s] = "".join(nib.aff2axcodes(img.affine))
        assert img.shape == (*SHAPE[::-1], len(MIDS)) and img.get_data_dtype() == np.float32
    assert codes == {"sub-001": "RAS", "sub-002": "LPS"}


def test_dynamic_series_is_the_phantom_exactly(converted):
    # float32 voxels stored unscaled: the converter only reorients, so equality is exact
    _, phantoms, cohort, datasets = converted
    for s, ph in phantoms.items():
        ds = datasets[s]
        assert ds.pet.dims == ("t", "z", "y", "x") and ds.pet.dtype == np.float32
        assert ds.pet.attrs["units"] == "Bq/mL"
        np.testing.assert_array_equal(ds.pet.values, ph.pet)
        static, ct = cohort.open(s, "pet"), cohort.open(s, "ct")
        np.testing.assert_array_equal(static.pet.values, ph.static)
        np.testing.assert_array_equal(ct.ct.values, ph.ct)


def test_label_maps_carry_the_phantom_and_its_names(converted):
    _, phantoms, cohort, datasets = converted
    assert cohort.labels == TABLES
    for s, ph in phantoms.items():
        for group, table in TABLES.items():
            seg = datasets[s][f"seg_{group}"]
            assert seg.dtype == np.uint8
            np.testing.assert_array_equal(seg.values, ph.maps[group])
            assert seg.attrs["labels"] == {str(k): v for k, v in table.items()}
            assert set(np.unique(seg.values)) == {0, *table}  # every label is present


def test_frame_and_voxel_coordinates(converted):
    _, phantoms, _, datasets = converted
    # hedyPET's framing, rebuilt here from the protocol constant
    durations = np.array([d for d, n in HEDYPET_FRAME_DURATIONS_S.items() for _ in range(n)])
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    assert len(durations) == 69 and starts[-1] + durations[-1] == 70 * 60
    np.testing.assert_array_equal(DURATIONS, durations)
    np.testing.assert_array_equal(STARTS, starts)
    np.testing.assert_array_equal(MIDS, starts + durations / 2)
    for s, ph in phantoms.items():
        ds = datasets[s]
        np.testing.assert_array_equal(ds.t.values, MIDS)
        np.testing.assert_array_equal(ds.frame_start.values, STARTS)
        np.testing.assert_array_equal(ds.frame_duration.values, DURATIONS)
        assert ph.origin == (-100.0, -80.0, -60.0)
        for axis, dim in enumerate("zyx"):
            expected = ph.origin[axis] + SPACING[axis] * np.arange(SHAPE[axis])
            np.testing.assert_array_equal(ds[dim].values, expected)
    assert voxel_ml() == 0.064


def test_noise_free_curves_follow_the_patlak_truth(converted):
    _, phantoms, _, datasets = converted
    t_min = MIDS / 60.0
    for s, ph in phantoms.items():
        ds = datasets[s]
        regions = _regions({g: ds[f"seg_{g}"].values for g in TABLES})
        pet = ds.pet.values.astype(np.float64)
        cp = ph.scale * _feng_bq_ml(ds.t.values)
        # the aorta holds the input function, to float32 rounding
        aorta = pet[:, regions["aorta"]]
        np.testing.assert_allclose(aorta, np.broadcast_to(cp[:, None], aorta.shape), rtol=EPS32)
        integral = _simpson_from_first(cp, t_min)
        for name, (ki, v) in KINETICS.items():
            voxels = pet[:, regions[name]]
            assert voxels.shape[1] > 0, name
            assert (voxels == voxels[:, :1]).all(), name  # one curve per region
            recovered = (voxels[:, 0] - v * cp) / ki
            # float32 storage of C_t, amplified by 1/Ki, bounds the error (and 1e-10 the
            # difference between two float64 Simpson sums)
            bound = 2 * EPS32 * (voxels[:, 0] + v * cp) / ki + 1e-10 * integral
            assert (np.abs(recovered - integral) <= bound).all(), name
            # Patlak over the last 6 frames gives the truth back
            x, y = integral / cp, voxels[:, 0] / cp
            got_ki, got_v = np.polyfit(x[-6:], y[-6:], 1)
            np.testing.assert_allclose([got_ki, got_v], [ki, v], rtol=1e-5)
        assert not pet[:, ds.seg_body.values == 0].any()  # air holds nothing


def test_metadata_gives_the_suv_denominator(converted):
    _, phantoms, cohort, datasets = converted
    index = cohort.index.set_index("subject")
    for s, ph in phantoms.items():
        row = index.loc[s]
        assert row["weight"] == ph.metadata["weight"] and row["sex"] == ph.metadata["sex"]
        assert row["InjectedRadioactivityUnits"] == "MBq"
        denominator = row["InjectedRadioactivity"] * 1e6 / (row["weight"] * 1000.0)
        assert math.isclose(denominator, SUV_DENOMINATOR_BQ_ML * ph.scale, rel_tol=1e-12)
        assert math.isclose(ph.suv_denominator, denominator, rel_tol=1e-12)
        bids = datasets[s].attrs["bids"]
        assert bids["InjectionStart"] == bids["ScanStart"] == 0 and bids["Units"] == "Bq/mL"
        assert row["pet_dynamic_shape"] == "x".join(map(str, ph.pet.shape))


def test_noise_scale_and_static_window():
    clean = make_patlak_phantom("sub-001", seed=4)
    noisy = make_patlak_phantom("sub-001", seed=4, noise=0.05)
    rng = np.random.default_rng(4)
    assert clean.scale == noisy.scale == rng.uniform(0.8, 1.2)
    np.testing.assert_array_equal(noisy.pet, make_patlak_phantom("sub-001", seed=4, noise=0.05).pet)
    body = clean.pet > 0
    rel = noisy.pet[body] / clean.pet[body] - 1
    assert abs(rel.std() - 0.05) < 0.001 and abs(rel.mean()) < 0.001
    # the static PET is the mean of the frames inside 50-70 min
    inside = (STARTS >= 3000) & (STARTS + DURATIONS <= 4200)
    assert inside.sum() == 4
    expected = noisy.pet[inside].astype(np.float64).mean(axis=0).astype(np.float32)
    np.testing.assert_allclose(noisy.static, expected, rtol=EPS32)


def test_a_seed_writes_identical_files(tmp_path):
    a = write_patlak_cohort(tmp_path / "a", ("sub-001",), noise=0.05, seed=2)
    b = write_patlak_cohort(tmp_path / "b", ("sub-001",), noise=0.05, seed=2)
    c = write_patlak_cohort(tmp_path / "c", ("sub-001",), noise=0.05, seed=3)
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert len(files) == 16
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    np.testing.assert_array_equal(a["sub-001"].pet, b["sub-001"].pet)
    assert a["sub-001"].scale != c["sub-001"].scale
    dynamic = hedy_paths(tmp_path / "a", "sub-001")["pet_dynamic"].relative_to(tmp_path / "a")
    assert (tmp_path / "c" / dynamic).read_bytes() != (tmp_path / "a" / dynamic).read_bytes()
    participants = pd.read_csv(tmp_path / "a" / "participants.tsv", sep="\t")
    assert list(participants.columns) == ["participant_id", "age", "sex", "weight", "height"]


@pytest.mark.parametrize("subjects", [(), ("001",), ("sub-001", "sub-001")])
def test_bad_subjects_are_refused(tmp_path, subjects):
    with pytest.raises(InvalidInputError, match="subjects"):
        write_patlak_cohort(tmp_path, subjects)


@pytest.mark.s3
def test_s3_root_converts_like_a_folder(s3_bucket, tmp_path):
    url = f"{s3_bucket}/bids"
    (ph,) = write_patlak_cohort(url, ("sub-001",), storage_options=storage_options(url)).values()
    report = convert_cohort(url, str(tmp_path / "cohort"), run=SERIAL)
    assert report.exit_code == 0 and report.counts["converted"] == 1, report.failed
    ds = open_cohort(str(tmp_path / "cohort")).open("sub-001", "pet_dynamic")
    np.testing.assert_array_equal(ds.pet.values, ph.pet)
    np.testing.assert_array_equal(ds.seg_total.values, ph.maps["total"])
