"""Tiny hedyPET-layout BIDS trees, written in code with nibabel.

Each subject: a CT (LPS storage), a static PET, a dynamic 4D series (LAS storage, so the
reader must flip it), three TotalSegmentator maps on the CT grid with ``.tsv`` tables, an
MRI under ``ses-vida/anat``, JSON sidecars and a ``participants.tsv`` row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

TABLES = {
    "total": {1: "spleen", 2: "kidney_right", 3: "liver", 4: "aorta", 5: "brain"},
    "tissue": {1: "subcutaneous_fat", 2: "torso_fat", 3: "skeletal_muscle"},
    "body": {1: "body_trunc", 2: "body_extremities"},
}
FRAMES = (2.0, 2.0, 5.0, 10.0, 60.0, 120.0)  # durations of the default series [s]


@dataclass(frozen=True)
class BidsSubject:
    """Where one generated subject's files are."""

    subject: str
    ct: Path
    pet: Path
    pet_dynamic: Path | None
    segs: dict[str, Path]
    mri: Path


def _affine(spacing, origin, flips=(1, 1, 1)) -> np.ndarray:
    aff = np.diag([*(f * s for f, s in zip(flips, spacing, strict=True)), 1.0])
    aff[:3, 3] = origin
    return aff


def _save(arr: np.ndarray, aff: np.ndarray, path: Path, slope: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(arr, aff)
    img.header.set_xyzt_units("mm", "sec")
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)
    nib.save(img, path)
    return path


def _json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1))


def write_bids_subject(
    root: Path,
    subject: str,
    *,
    seed: int,
    dynamic_root: Path | None = None,
    frames: tuple[float, ...] | None = FRAMES,
    dynamic_shape: tuple[int, int, int] = (9, 8, 12),
    int16_dynamic: bool = False,
) -> BidsSubject:
    """Write one subject (static files under ``root``, the 4D series under ``dynamic_root``)."""
    rng = np.random.default_rng(seed)
    sub = root / subject
    ct_aff = _affine((2.0, 2.0, 3.0), (40.0, 30.0, -60.0), flips=(-1, -1, 1))  # LPS storage
    ct_shape = (20, 16, 24)
    ct = _save(
        rng.integers(-1000, 1500, ct_shape).astype(np.int16),
        ct_aff,
        sub / f"ses-quadra/ct/{subject}_ses-quadra_acq-br38f_ct.nii.gz",
    )
    pet_aff = _affine((4.0, 4.0, 5.0), (-21.3, -17.2, -58.4))
    pet = _save(
        rng.gamma(2.0, 1000.0, (10, 9, 14)).astype(np.float32),
        pet_aff,
        sub / f"ses-quadra/pet/{subject}_ses-quadra_trc-18FFDG_rec-acstatPSF_pet.nii.gz",
    )
    _json(
        pet.with_name(pet.name.replace(".nii.gz", ".json")),
        {
            "InjectedRadioactivity": 25.0 + seed,
            "InjectedRadioactivityUnits": "MBq",
            "Units": "Bq/mL",
            "TracerName": "FDG",
            "FrameTimesStart": [3600],
            "FrameDuration": [600],
            "ImageDecayCorrected": True,
        },
    )
    segs = {}
    seg_dir = root / "derivatives/totalsegmentator" / subject / "ses-quadra"
    for group, table in TABLES.items():
        labels = rng.integers(0, max(table) + 1, ct_shape).astype(np.uint8)
        path = _save(
            labels, ct_aff, seg_dir / f"{subject}_ses-quadra_acq-br38f_seg-{group}_dseg.nii.gz"
        )
        rows = "".join(f"{i}\t{n}\n" for i, n in [(0, "background"), *table.items()])
        path.with_name(path.name.replace(".nii.gz", ".tsv")).write_text("index\tname\n" + rows)
        segs[group] = path
    mri = _save(
        rng.integers(0, 800, (8, 8, 10)).astype(np.int16),
        _affine((5.0, 5.0, 6.0), (-20.0, -20.0, -30.0)),
        sub / f"ses-vida/anat/{subject}_ses-vida_acq-DIXONbodyIN_T1w.nii.gz",
    )
    pet_dynamic = None
    if frames is not None:
        droot = dynamic_root or root
        nx, ny, nz = dynamic_shape
        dyn_aff = _affine((4.5, 4.5, 6.0), (25.3, -19.2, -57.4), flips=(-1, 1, 1))  # LAS
        shape4 = (nx, ny, nz, len(frames))
        if int16_dynamic:
            data = rng.integers(0, 30000, shape4).astype(np.int16)
        else:
            data = rng.gamma(2.0, 500.0, shape4).astype(np.float32)
        pet_dynamic = _save(
            data,
            dyn_aff,
            droot / subject / f"ses-quadra/pet/{subject}_ses-quadra_rec-acdynPSF_pet.nii.gz",
            slope=0.25 if int16_dynamic else None,
        )
        starts = np.concatenate([[0.0], np.cumsum(frames)[:-1]])
        _json(
            pet_dynamic.with_name(pet_dynamic.name.replace(".nii.gz", ".json")),
            {
                "FrameTimesStart": starts.tolist(),
                "FrameDuration": list(frames),
                "Units": "Bq/mL",
                "ReconMethodName": "PSF+TOF 4i5s",
            },
        )
    return BidsSubject(subject, ct, pet, pet_dynamic, segs, mri)


def write_bids_tree(
    root: Path, *, subjects: int = 2, dynamic_root: Path | None = None, **kwargs
) -> list[BidsSubject]:
    """``participants.tsv`` and ``subjects`` subjects ``sub-001``, ``sub-002``, ..."""
    root.mkdir(parents=True, exist_ok=True)
    _json(root / "dataset_description.json", {"Name": "tiny hedyPET", "BIDSVersion": "1.9.0"})
    ids = [f"sub-{i:03d}" for i in range(1, subjects + 1)]
    rows = "".join(
        f"{s}\t{30 + i}\t{'FM'[i % 2]}\t{60 + 5 * i}\t{170 + i}\n" for i, s in enumerate(ids)
    )
    (root / "participants.tsv").write_text("participant_id\tage\tsex\tweight\theight\n" + rows)
    return [
        write_bids_subject(root, s, seed=i, dynamic_root=dynamic_root, **kwargs)
        for i, s in enumerate(ids)
    ]


@pytest.fixture
def bids_tree(tmp_path: Path) -> Callable[..., tuple[Path, list[BidsSubject]]]:
    """A factory: ``bids_tree(subjects=2, two_roots=False, ...)`` -> (static root, subjects)."""

    def make(*, two_roots: bool = False, **kwargs) -> tuple[Path, list[BidsSubject]]:
        root = tmp_path / "static"
        dynamic_root = tmp_path / "dynamic" if two_roots else None
        return root, write_bids_tree(root, dynamic_root=dynamic_root, **kwargs)

    return make


@pytest.fixture(scope="module")
def converted_bids(tmp_path_factory: pytest.TempPathFactory):
    """Two subjects under one root, converted serially: (source root, cohort, subjects, report)."""
    from petzarr.cohort.executor import Run
    from petzarr.convert.job import convert_cohort

    base = tmp_path_factory.mktemp("bids")
    subjects = write_bids_tree(base / "static", subjects=2)
    report = convert_cohort(
        str(base / "static"), str(base / "cohort"), run=Run(serial=True, progress=False)
    )
    return base / "static", base / "cohort", subjects, report
