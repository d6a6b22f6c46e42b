"""The bad-input matrix: every kind of broken input a cohort brings, generated in code.

Subject-level kinds share one ENHANCE-layout cohort, each its own subject beside good
ones, converted once by the CLI: each broken subject fails alone with a message naming
its file (or converts with a warning, where the data is usable), every good subject is
published, the exit code and the run report say so, and a re-run converts nothing new.
Run-level kinds (the whole input is unusable) exit 2 with one clear line and write
nothing. docs/reliability.md lists every kind with its message.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from petzarr.cli import main
from petzarr.synth import write_enhance_cohort

IMAGES, MAPS = "imaging-data/images", "imaging-data/ground-truth"
GOOD = ["0001", "0002", "0003", "0004", "0005", "0006"]


def _nifti(src: Path, folder: str, subject: str) -> Path:
    return src / folder / f"{subject}.nii.gz"


def _resave(path: Path, edit: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]):
    img = nib.load(path)
    data, affine = edit(np.asarray(img.dataobj), img.affine.copy())
    out = nib.Nifti1Image(data, affine, img.header)
    out.set_qform(affine, code=1)
    out.set_sform(affine, code=1)
    nib.save(out, path)


def _truncated(src: Path, s: str) -> None:
    path = _nifti(src, f"{IMAGES}/CT", s)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _not_gzip(src: Path, s: str) -> None:
    _nifti(src, f"{IMAGES}/CT", s).write_bytes(b"this is not a NIfTI file\n" * 100)


def _zero_byte_map(src: Path, s: str) -> None:
    _nifti(src, f"{MAPS}/Organs", s).write_bytes(b"")


def _absurd_header(src: Path, s: str) -> None:
    path = _nifti(src, f"{IMAGES}/PT", s)
    header = nib.load(path).header.copy()
    header.set_data_shape((30000, 30000, 30000))  # 108 TB: refused from the header
    path.write_bytes(gzip.compress(header.binaryblock + bytes(4) + bytes(1000)))


def _other_grid(src: Path, s: str) -> None:
    _resave(_nifti(src, f"{MAPS}/Organs", s), lambda d, a: (d[:-2], a))


def _oblique_ct(src: Path, s: str) -> None:
    def tilt(d: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, si = np.cos(0.2), np.sin(0.2)
        return d, np.array([[c, -si, 0, 0], [si, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]) @ a

    _resave(_nifti(src, f"{IMAGES}/CT", s), tilt)


def _missing_pet(src: Path, s: str) -> None:
    _nifti(src, f"{IMAGES}/PT", s).unlink()


def _pet_4d(src: Path, s: str) -> None:
    _resave(_nifti(src, f"{IMAGES}/PT", s), lambda d, a: (np.stack([d, d], axis=-1), a))


def _unnamed_labels(src: Path, s: str) -> None:
    def mark(d: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = d.copy()
        x, y = d.shape[0] // 2, d.shape[1] // 2
        d[x - 4 : x + 4, y - 4 : y + 4, :] = 250  # no such label in labels.json
        return d, a

    _resave(_nifti(src, f"{MAPS}/Organs", s), mark)


def _nonfinite_pet(src: Path, s: str) -> None:
    def poison(d: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = d.astype(np.float32)
        x, y, z = (n // 2 for n in d.shape)
        d[x - 2 : x + 2, y - 2 : y + 2, z - 2 : z + 2] = np.nan  # inside the trunk's organs
        d[x + 3, y, z] = np.inf
        return d, a

    _resave(_nifti(src, f"{IMAGES}/PT", s), poison)


def _details(src: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    path = src / "PT-details.xlsx"
    edit(pd.read_excel(path)).to_excel(path, index=False)


def _pet_in_counts(src: Path, s: str) -> None:
    def counts(d: pd.DataFrame) -> pd.DataFrame:
        d["Units"] = np.where(d["Patient"] == int(s), "CNTS", "BQML")
        return d

    _details(src, counts)


def _no_spreadsheet_row(src: Path, s: str) -> None:
    _details(src, lambda d: d[d["Patient"] != int(s)])


#: subject-level kinds: (breaks the subject, status, what stderr says about it)
SUBJECT_KINDS: dict[str, tuple[Callable[[Path, str], None], str, str]] = {
    "truncated gzip": (_truncated, "failed", r"CT/{s}\.nii\.gz: truncated"),
    "not gzip": (_not_gzip, "failed", r"CT/{s}\.nii\.gz: .*(not a|NIfTI|gzip)"),
    "zero-byte map": (_zero_byte_map, "failed", r"Organs/{s}\.nii\.gz: empty file \(0 bytes\)"),
    "absurd header": (_absurd_header, "failed", r"PT/{s}\.nii\.gz: .*its header is wrong"),
    "map on another grid": (_other_grid, "failed", r"Organs/{s}\.nii\.gz is on grid .*CT grid"),
    "oblique CT": (_oblique_ct, "failed", r"CT/{s}\.nii\.gz: .*oblique.*--allow-oblique"),
    "missing PET": (_missing_pet, "failed", r"subject {s}: no pet"),
    "4-D static PET": (_pet_4d, "failed", r"PT/{s}\.nii\.gz: a 4-D image .*expected one 3-D"),
    "unnamed labels": (_unnamed_labels, "converted", r"Organs/{s}\.nii\.gz: label value\(s\) 250"),
    "PET in CNTS": (_pet_in_counts, "converted", ""),
    "no spreadsheet row": (_no_spreadsheet_row, "converted", ""),
    "NaN/Inf PET voxels": (_nonfinite_pet, "converted", ""),
}
BAD = {kind: f"{i:04d}" for i, kind in enumerate(SUBJECT_KINDS, start=len(GOOD) + 1)}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("matrix")
    src, dest = work / "enhance", work / "cohort"
    write_enhance_cohort(src, subjects=len(GOOD) + len(BAD), size="tiny", seed=11)
    for kind, subject in BAD.items():
        SUBJECT_KINDS[kind][0](src, subject)
    return src, dest


@pytest.fixture(scope="module")
def converted(matrix):
    src, dest = matrix
    capture = _Capture()
    with capture:
        code = main(["convert", str(src), str(dest), "--serial", "--no-progress"])
    (report,) = (dest / "reports").glob("convert-*.json")
    return code, capture.err, capture.out, json.loads(report.read_text())


class _Capture:
    """stdout and stderr of a block, read at the file-descriptor level (as a user sees)."""

    def __enter__(self) -> _Capture:
        import contextlib
        import io

        self._out, self._err = io.StringIO(), io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._out))
        self._stack.enter_context(contextlib.redirect_stderr(self._err))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.out, self.err = self._out.getvalue(), self._err.getvalue()


def test_the_run_says_what_happened(converted):
    code, err, out, report = converted
    failed = [s for k, s in BAD.items() if SUBJECT_KINDS[k][1] == "failed"]
    assert code == 1  # some subjects failed; the rest are published
    assert report["counts"] == {"converted": len(GOOD) + len(BAD) - len(failed),
                                "failed": len(failed)}  # fmt: skip
    assert f"{len(failed)} failed" in out
    assert "Traceback" not in err  # bad input is not a bug


@pytest.mark.parametrize("kind", list(SUBJECT_KINDS))
def test_each_kind_fails_or_warns_its_own_subject_naming_the_file(converted, kind):
    _, err, _, report = converted
    subject = BAD[kind]
    _, status, pattern = SUBJECT_KINDS[kind]
    entry = {s["subject"]: s for s in report["subjects"]}[subject]
    assert entry["status"] == status, entry
    if pattern:
        pattern = pattern.format(s=subject)
        where = entry["error"] if status == "failed" else " ".join(entry.get("warnings", []))
        assert re.search(pattern, where), where
        head = "FAILED" if status == "failed" else "WARNING"
        assert re.search(rf"{head} {subject}: .*{pattern}", err), err
        assert "traceback" not in entry


def test_every_good_subject_is_published_and_a_rerun_converts_nothing_new(matrix, converted):
    src, dest = matrix
    index = pd.read_parquet(dest / "index.parquet")
    usable = [s for k, s in BAD.items() if SUBJECT_KINDS[k][1] == "converted"]
    assert sorted(index["subject"]) == sorted(GOOD + usable)
    failed = {s for k, s in BAD.items() if SUBJECT_KINDS[k][1] == "failed"}
    assert not any((dest / "subjects" / s).exists() for s in failed)  # nothing half-written
    capture = _Capture()
    with capture:
        assert main(["convert", str(src), str(dest), "--serial", "--no-progress"]) == 1
    assert f"0 converted, {len(GOOD) + len(usable)} skipped" in capture.out


def test_usable_inputs_give_statistics_that_say_what_is_missing(matrix, converted, tmp_path):
    _, dest = matrix
    table = tmp_path / "stats.parquet"
    capture = _Capture()
    with capture:
        code = main(["stats", str(dest), "--serial", "--no-progress", "-o", str(table)])
    assert code == 0, capture.err
    stats = pd.read_parquet(table)
    for kind in ("PET in CNTS", "no spreadsheet row"):
        rows = stats[stats["Subject"] == BAD[kind]]
        assert rows["SUV Mean"].isna().all() and rows["PET Mean [Bq/mL]"].notna().any()
        assert rows["Note"].str.len().gt(0).all(), rows["Note"]
    assert "CNTS" in stats.loc[stats["Subject"] == BAD["PET in CNTS"], "Note"].iloc[0]
    unnamed = stats[(stats["Subject"] == BAD["unnamed labels"]) & (stats["Label Index"] == 250)]
    assert len(unnamed) and (unnamed["Label Name"] == "250").all()
    poisoned = stats[stats["Subject"] == BAD["NaN/Inf PET voxels"]]
    assert poisoned["Non-finite Voxels"].sum() > 0  # said, and left out of every statistic
    assert np.isfinite(poisoned[["PET Mean [Bq/mL]", "PET Max [Bq/mL]"]].to_numpy()).all()
    good = stats[stats["Subject"] == GOOD[0]]
    assert good["SUV Mean"].notna().any()


def test_a_missing_spreadsheet_row_is_a_warning_of_the_run(converted):
    _, err, _, report = converted
    subject = BAD["no spreadsheet row"]
    (said,) = [w for w in report["warnings"] if f"subject {subject}:" in w]
    assert "no row in" in said and "PT-details.xlsx" in said and "SUV and SUL are NaN" in said
    assert f"WARNING: {said}" in err


def test_a_missing_spreadsheet_converts_with_a_warning(tmp_path):
    src = _small_cohort(tmp_path)
    (src / "PT-details.xlsx").unlink()
    code, capture = _convert(src, tmp_path / "cohort")
    assert code == 0, capture.err
    assert re.search(r"WARNING: .*PT-details\.xlsx: missing; .*SUV and SUL are NaN", capture.err)
    assert "2 converted" in capture.out


def test_dest_under_a_bids_derivatives_folder_is_allowed(tmp_path):
    src = _small_cohort(tmp_path)
    code, capture = _convert(src, src / "derivatives" / "petzarr")
    assert code == 0, capture.err


def test_verify_names_the_unnamed_labels(matrix):
    src, _ = matrix
    capture = _Capture()
    with capture:
        main(["verify", str(src), "--no-progress"])
    assert re.search(rf"Organs/{BAD['unnamed labels']}\.nii\.gz.*250", capture.out + capture.err)


# -- run-level kinds: the whole input is unusable -> exit 2, one line, nothing written ----


def _one_line(capture: _Capture) -> str:
    lines = [x for x in capture.err.splitlines() if x.strip()]
    assert len(lines) == 1, capture.err
    return lines[0]


def _small_cohort(tmp_path: Path) -> Path:
    src = tmp_path / "enhance"
    write_enhance_cohort(src, subjects=2, size="tiny", seed=2)
    return src


def _convert(src: Path, dest: Path) -> tuple[int, _Capture]:
    capture = _Capture()
    with capture:
        code = main(["convert", str(src), str(dest), "--serial", "--no-progress"])
    return code, capture


def _tree(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root)
            for n in ds + fs}  # fmt: skip


RUN_KINDS = {
    "malformed labels.json": "labels.json: not valid JSON",
    "empty folder": "not a known cohort layout",
    "DEST inside SOURCE": "inside the source",
    "DEST not writable": "not writable",
}


@pytest.mark.parametrize("kind", list(RUN_KINDS))
def test_an_unusable_input_exits_2_with_one_line_and_writes_nothing(tmp_path, kind):
    src = _small_cohort(tmp_path) if kind != "empty folder" else tmp_path / "empty"
    dest = tmp_path / "out" / "cohort"
    if kind == "malformed labels.json":
        (src / "labels.json").write_text("{ not json")
    elif kind == "empty folder":
        src.mkdir()
    elif kind == "DEST inside SOURCE":
        dest = src / "converted"
    elif kind == "DEST not writable":
        if os.geteuid() == 0:  # root writes anywhere; a read-only mount refuses even root
            dest = Path("/proc/petzarr-cohort")
        else:
            (tmp_path / "out").mkdir()
            (tmp_path / "out").chmod(stat.S_IRUSR | stat.S_IXUSR)
    before = _tree(tmp_path)
    code, capture = _convert(src, dest)
    assert code == 2, capture.err
    line = _one_line(capture)
    assert RUN_KINDS[kind] in line, line
    assert str(src if kind != "DEST not writable" else dest) in line or kind == "empty folder"
    assert _tree(tmp_path) == before
    if kind == "DEST not writable" and os.geteuid() != 0:
        (tmp_path / "out").chmod(stat.S_IRWXU)
    shutil.rmtree(tmp_path, ignore_errors=True)
