"""Converting synthetic ENHANCE-layout cohorts: round trips, resume, bad subjects, CLI."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from roundtrip import check_interactive_groupby, check_subject

from petzarr.cli import main
from petzarr.cohort import open_cohort
from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort
from petzarr.convert.plan import plan_conversion
from petzarr.convert.sources import read_source
from petzarr.convert.writer import SubjectResult, run_task


@pytest.fixture(scope="module")
def converted(tiny_cohort, tmp_path_factory):
    source, _truth = tiny_cohort
    dest = tmp_path_factory.mktemp("converted")
    report = convert_cohort(str(source), str(dest), run=Run(serial=True, progress=False))
    return source, dest, report


def _copy(source: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "source"
    shutil.copytree(source, dst)
    return dst


def test_every_voxel_coordinate_and_label_round_trips(converted):
    source, dest, report = converted
    assert report.exit_code == 0 and report.counts["converted"] == 3
    for subject in open_cohort(str(dest)).subjects:
        check_subject(source, str(dest), subject)


def test_index_labels_and_report(converted):
    _source, dest, report = converted
    index = pd.read_parquet(dest / "index.parquet")
    assert list(index["subject"]) == ["0001", "0002", "0003"]
    run = json.loads(Path(report.report_url).read_text())["run_id"]
    assert list(index["store"]) == [f"subjects/{s}/{run}.zarr" for s in index["subject"]]
    assert set(index["format_version"]) == {2}
    for col in ("Age", "Sex", "Weight [kg]", "Height [m]", "Data-Source", "Licence"):
        assert col in index.columns
    labels = json.loads((dest / "labels.json").read_text())
    assert (
        len(labels) == 7 and sum(len(t) for t in labels.values()) == 128
    )  # 130 less brain and skull
    body = json.loads(Path(report.report_url).read_text())
    assert [s["status"] for s in body["subjects"]] == ["converted"] * 3
    assert not (dest / "staging").exists()  # format 2 stages nothing
    stores = sorted(p.relative_to(dest).as_posix() for p in dest.glob("subjects/*/*.zarr"))
    assert stores == sorted(index["store"])  # one version each, nothing half-written


def test_xarray_groupby_route(converted):
    _, dest, _ = converted
    check_interactive_groupby(str(dest), "0001")


def test_rerun_skips_unchanged_and_redoes_changed(converted, tmp_path):
    source, _dest, _ = converted
    work_src, work_dest = _copy(source, tmp_path), tmp_path / "cohort"
    first = convert_cohort(str(work_src), str(work_dest), run=Run(serial=True, progress=False))
    assert first.counts["converted"] == 3
    again = convert_cohort(str(work_src), str(work_dest), run=Run(serial=True, progress=False))
    assert again.counts["skipped"] == 3 and again.exit_code == 0
    # change one source file: only its subject is converted again
    ct = work_src / "imaging-data/images/CT/0002.nii.gz"
    img = nib.load(ct)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj) + np.int16(1), img.affine, img.header), ct)
    third = convert_cohort(str(work_src), str(work_dest), run=Run(serial=True, progress=False))
    assert {r.subject: r.status for r in third.results} == {
        "0001": "skipped",
        "0002": "converted",
        "0003": "skipped",
    }
    check_subject(work_src, str(work_dest), "0002")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_bad_subjects_fail_alone_and_rerun_picks_up_only_them(tiny_cohort, tmp_path, capsys):
    source, _ = tiny_cohort
    src, dest = _copy(source, tmp_path), tmp_path / "cohort"
    gt = src / "imaging-data/ground-truth"
    _truncate(src / "imaging-data/images/CT/0001.nii.gz")  # corrupt gzip
    organs = nib.load(gt / "Organs/0002.nii.gz")  # segmentation on the wrong grid
    nib.save(
        nib.Nifti1Image(np.asarray(organs.dataobj)[:-1], organs.affine), gt / "Organs/0002.nii.gz"
    )
    pet3 = src / "imaging-data/images/PT/0003.nii.gz"
    pet3.rename(tmp_path / "pet3.nii.gz")  # missing PET

    code = main(["convert", str(src), str(dest), "--serial", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "0001.nii.gz" in err and "truncated" in err
    assert "Organs/0002.nii.gz" in err and "CT grid" in err
    assert "0003" in err and "no pet" in err
    assert not (dest / "subjects").exists() or not any((dest / "subjects").iterdir())
    report = json.loads(sorted((dest / "reports").glob("convert-*.json"))[-1].read_text())
    assert report["counts"] == {"failed": 3}

    # repair two subjects: a re-run converts exactly those, the broken one fails again
    shutil.copy(
        source / "imaging-data/images/CT/0001.nii.gz", src / "imaging-data/images/CT/0001.nii.gz"
    )
    (tmp_path / "pet3.nii.gz").rename(pet3)
    code = main(["convert", str(src), str(dest), "--serial", "--no-progress"])
    assert code == 1
    index = pd.read_parquet(dest / "index.parquet")
    assert sorted(index["subject"]) == ["0001", "0003"]
    code = main(
        ["convert", str(src), str(dest), "--serial", "--no-progress", "--subjects", "0001,0003"]
    )
    assert code == 0
    assert "2 skipped" in capsys.readouterr().out


def test_bad_usage_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["convert", str(tmp_path / "empty"), str(tmp_path / "out"), "--serial"]) == 2
    assert "not a known cohort layout" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["convert"])
    assert exc.value.code == 2


def test_unknown_subject_is_bad_usage(tiny_cohort, tmp_path, capsys):
    source, _ = tiny_cohort
    code = main(["convert", str(source), str(tmp_path / "o"), "--serial", "--subjects", "9999"])
    assert code == 2 and "9999" in capsys.readouterr().err


def test_manifest_source(tiny_cohort, tmp_path):
    source, _ = tiny_cohort
    rows = []
    for sid in ("0001", "0002"):
        row = {
            "subject": f"m{sid}",
            "ct": str(source / f"imaging-data/images/CT/{sid}.nii.gz"),
            "pet": f"{source.name}/imaging-data/images/PT/{sid}.nii.gz",  # relative to the csv
            "seg_organs": str(source / f"imaging-data/ground-truth/Organs/{sid}.nii.gz"),
            "Weight [kg]": 70,
        }
        rows.append(row)
    manifest = source.parent / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    (source.parent / "labels.json").write_text(
        json.dumps({"clin_ct_organs": {"1": "spleen", "2": "kidney_right"}})
    )
    try:
        report = convert_cohort(
            str(manifest), str(tmp_path / "m"), run=Run(serial=True, progress=False)
        )
    finally:
        manifest.unlink()
        (source.parent / "labels.json").unlink()
    assert report.exit_code == 0, report.failed
    cohort = open_cohort(str(tmp_path / "m"))
    ds = cohort.open("m0001", "ct")
    assert "seg_organs" in ds and "seg_ribs" not in ds
    assert ds.seg_organs.attrs["labels"] == {"1": "spleen", "2": "kidney_right"}
    assert cohort.index.loc[0, "Weight [kg]"] == 70


def test_everything_sent_to_workers_pickles(tiny_cohort, tmp_path):
    source, _ = tiny_cohort
    cohort = read_source(str(source))
    tasks = plan_conversion(cohort, str(tmp_path / "p"), run_id="r1")
    for obj in (cohort, *tasks):
        assert pickle.loads(pickle.dumps(obj)) == obj
    result = run_task(pickle.loads(pickle.dumps(tasks[0])))
    assert result.status == "converted"
    assert pickle.loads(pickle.dumps(result)) == result
    assert isinstance(result, SubjectResult)


def test_verify_command(tiny_cohort, tmp_path, capsys):
    source, _ = tiny_cohort
    assert main(["verify", str(source), "--no-progress"]) == 0, capsys.readouterr().out
    assert "no problems found" in capsys.readouterr().out
    src = _copy(source, tmp_path)
    (src / "imaging-data/ground-truth/Ribs/0002.nii.gz").unlink()
    _truncate(src / "imaging-data/images/PT/0003.nii.gz")
    assert main(["verify", str(src), "--json", "--no-progress"]) == 1
    problems = json.loads(capsys.readouterr().out)
    checks = {(p["check"], os.path.basename(p["where"])) for p in problems}
    assert ("pairing", "0002") in checks
    assert ("header", "0003.nii.gz") in checks
