"""``petzarr qc``: misaligned PET found where the synthetic truth put it, figures that show.

Eight `small` ENHANCE-layout subjects, two with their PET displaced by 12 mm and 20 mm
(``petzarr synth --shift-pet``), one with its PET in counts; and eight `small` hedyPET-layout
subjects (static datasets; the dynamic series written aside), two displaced the same way.
Converted and checked with the CLI as users run it.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from petzarr.cli import main
from petzarr.synth import write_enhance_cohort, write_hedypet_cohort

SHIFTS = {"0002": (0.0, 12.0, 0.0), "0005": (20.0, 0.0, 0.0)}  # (z, y, x) mm
COUNTS = "0007"


@pytest.fixture(scope="module")
def qc(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("qc")
    src, dest, out = work / "src", work / "cohort", work / "qc"
    truth = write_enhance_cohort(src, subjects=8, size="small", seed=4, pet_shift_mm=SHIFTS)
    details = pd.read_excel(src / "PT-details.xlsx")
    details["Units"] = np.where(details["Patient"] == int(COUNTS), "CNTS", "BQML")
    details.to_excel(src / "PT-details.xlsx", index=False)
    assert main(["convert", str(src), str(dest), "--serial", "--no-progress"]) == 0
    assert main(["qc", str(dest), "-o", str(out), "--serial", "--no-progress"]) == 0
    return truth, out, pd.read_parquet(out / "qc.parquet")


@pytest.fixture(scope="module")
def hedy_qc(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("hedy-qc")
    shifts = {f"sub-00{s[-1]}": mm for s, mm in SHIFTS.items()}
    truth = write_hedypet_cohort(
        work / "static", dynamic_root=work / "dynamic", subjects=8, size="small", seed=4,
        pet_shift_mm=shifts,
    )  # fmt: skip
    dest, out = work / "cohort", work / "qc"
    assert main(["convert", str(work / "static"), str(dest), "--serial", "--no-progress"]) == 0
    assert main(["qc", str(dest), "-o", str(out), "--serial", "--no-progress"]) == 0
    return truth, shifts, pd.read_parquet(out / "qc.parquet")


def test_the_synthetic_truth_records_the_motion(qc):
    truth, _, _ = qc
    shifts = {s.subject: s.pet_shift_mm for s in truth.subjects}
    assert shifts["0002"] == SHIFTS["0002"] and shifts["0001"] == (0.0, 0.0, 0.0)


def test_exactly_the_displaced_subjects_are_flagged_with_their_displacement(qc):
    _, _, table = qc
    rows = table.set_index("Subject")
    assert sorted(rows.index[rows["Flagged"]]) == sorted(SHIFTS)
    assert list(table["Subject"][: len(SHIFTS)]) == sorted(SHIFTS, key=lambda s: -max(SHIFTS[s]))
    for subject, shift in SHIFTS.items():
        got = rows.loc[subject, ["Offset z [mm]", "Offset y [mm]", "Offset x [mm]"]]
        np.testing.assert_allclose(got.to_numpy(float), shift, atol=3.0, err_msg=subject)
        assert abs(rows.loc[subject, "PET-CT Offset [mm]"] - np.linalg.norm(shift)) < 3.0
        assert "displaced" in rows.loc[subject, "Reason"]
    still = rows.drop([*SHIFTS, COUNTS])
    assert (still["PET-CT Offset [mm]"] < 3.0).all(), still["PET-CT Offset [mm]"]
    assert (still["Reason"] == "").all()
    assert set(still["Organs"].iloc[0].split(", ")) >= {"bladder", "liver", "kidney_left"}


def test_hedypet_layout_displaced_subjects_are_flagged_with_their_displacement(hedy_qc):
    truth, shifts, table = hedy_qc
    assert {s.subject: s.pet_shift_mm for s in truth.subjects if any(s.pet_shift_mm)} == shifts
    rows = table.set_index("Subject")
    assert sorted(rows.index[rows["Flagged"]]) == sorted(shifts)
    for subject, shift in shifts.items():
        got = rows.loc[subject, ["Offset z [mm]", "Offset y [mm]", "Offset x [mm]"]]
        np.testing.assert_allclose(got.to_numpy(float), shift, atol=3.0, err_msg=subject)
    still = rows.drop([*shifts])
    # nearest-neighbour labels on the PET grid sit up to half a CT slice (2.5 mm) off
    assert (still["PET-CT Offset [mm]"] < 3.0).all(), still["PET-CT Offset [mm]"]
    assert set(still["Organs"].iloc[0].split(", ")) >= {"brain", "heart", "liver", "kidney_left"}


def test_counts_get_a_reason_not_a_guess(qc):
    _, _, table = qc
    row = table.set_index("Subject").loc[COUNTS]
    assert np.isnan(row["PET-CT Offset [mm]"]) and not row["Flagged"]
    assert "not Bq/mL" in row["Reason"]


def test_every_figure_opens_and_shows_something(qc):
    _, out, table = qc
    for name in table["Figure"]:
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 300 and image.shape[1] > 600, name
        rgb = image[..., :3]
        assert rgb.std() > 0.05, name  # not blank
        assert (rgb.min(axis=2) < 0.5).mean() > 0.05, name  # a good part is drawn


def test_the_index_page_shows_the_flagged_first_and_the_csv_matches(qc):
    _, out, table = qc
    page = (out / "index.html").read_text()
    order = re.findall(r'<section[^>]*id="s-(\d+)"', page)
    assert order == list(table["Subject"]) and set(order[:2]) == set(SHIFTS)
    assert "2 flagged" in page
    assert all(Path(out / f).exists() for f in re.findall(r'<img src="([^"]+)"', page))
    csv = pd.read_csv(out / "qc.csv", dtype={"Subject": str})
    assert list(csv["Subject"]) == list(table["Subject"])


def test_the_readme_figure_script_makes_its_figure(tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "docs" / "make_qc_example.py"
    spec = importlib.util.spec_from_file_location("make_qc_example", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.make(tmp_path / "figure.png")
    assert matplotlib.image.imread(made)[..., :3].std() > 0.05
