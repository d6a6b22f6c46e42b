"""Ids are names, never paths: a hostile manifest is refused before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from petzarr.cli import main


def _tree(root: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(d, n), root) for d, ds, fs in os.walk(root) for n in ds + fs
    }


def _manifest(tiny_cohort, folder: Path, ids: list[str]) -> Path:
    source, _ = tiny_cohort
    images = source / "imaging-data" / "images"
    rows = [
        {
            "subject": sid,
            "ct": images / "CT" / "0001.nii.gz",
            "pet": images / "PT" / "0001.nii.gz",
        }
        for sid in ids
    ]
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("hostile", ["../../escape", "a/b", ".hidden", "/abs", "x" * 129])
def test_a_hostile_subject_id_is_refused_and_nothing_is_written_anywhere(
    tiny_cohort, tmp_path, capsys, hostile
):
    work = tmp_path / "work"
    work.mkdir()
    manifest = _manifest(tiny_cohort, work, ["good", hostile])
    dest = work / "mo" / "cohort"
    before = _tree(tmp_path)
    assert main(["convert", str(manifest), str(dest), "--serial", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "subject ids" in err and "nothing was written" in err
    assert _tree(tmp_path) == before  # not even DEST: the run was refused up front


def test_good_ids_of_every_allowed_character_convert(tiny_cohort, tmp_path):
    manifest = _manifest(tiny_cohort, tmp_path, ["sub-01", "A.b_c-9"])
    dest = tmp_path / "cohort"
    assert main(["convert", str(manifest), str(dest), "--serial", "--no-progress"]) == 0
    assert sorted(p.name for p in (dest / "subjects").iterdir()) == ["A.b_c-9", "sub-01"]
