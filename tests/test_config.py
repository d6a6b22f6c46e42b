"""``petzarr.cohort.config``: defaults, ``PETZARR_*`` overrides, and ``config.set`` reaching
the code that uses each key (the converter's threads and tolerances)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from petzarr.cohort import zarr_io
from petzarr.cohort.config import DEFAULTS, config, env_var, get_float, get_int, keys
from petzarr.cohort.errors import GridMismatchError, InvalidInputError, ObliqueAffineError
from petzarr.convert.nifti import read_nifti
from petzarr.convert.plan import CohortSource, ConvertOptions, SubjectSource, plan_conversion
from petzarr.convert.writer import convert_subject

ROOT = Path(__file__).resolve().parents[1]
SHAPE_XYZ = (5, 6, 70)  # 70 slices: two slab chunks of 64 and 6


def test_defaults():
    assert config.get("convert.write_threads") == 2
    assert config.get("index.flush_s") == 10.0
    assert get_float("nifti.oblique_tol") == 1e-4
    assert ConvertOptions().write_threads == 2
    for key in keys():
        assert config.get(key) is not None, key


def test_env_override_is_read_in_a_new_process():
    code = (
        "from petzarr.cohort.config import config, get_float, get_int\n"
        "from petzarr.convert.plan import ConvertOptions\n"
        "print(get_int('convert.write_threads'), ConvertOptions().write_threads,"
        " get_float('index.flush_s'), config.get('nifti.oblique_tol'))\n"
    )
    env = os.environ | {
        "PETZARR_CONVERT__WRITE_THREADS": "5",
        "PETZARR_INDEX__FLUSH_S": "5",
        "PETZARR_NIFTI__OBLIQUE_TOL": "1e-3",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["5", "5", "5.0", "0.001"]


def test_env_var_names_follow_donfig():
    assert env_var("convert.write_threads") == "PETZARR_CONVERT__WRITE_THREADS"
    collected = config.collect(paths=[], env={"PETZARR_INDEX__FLUSH_S": "2.5", "OTHER": "1"})
    assert collected == {"index": {"flush_s": 2.5}}


def test_bad_values_name_the_key_and_its_variable():
    with (
        config.set({"convert.write_threads": "four"}),
        pytest.raises(InvalidInputError, match="PETZARR_CONVERT__WRITE_THREADS"),
    ):
        get_int("convert.write_threads")
    with config.set({"convert.write_threads": 0}), pytest.raises(InvalidInputError, match=">= 1"):
        ConvertOptions()
    with config.set({"nifti.oblique_tol": float("nan")}), pytest.raises(InvalidInputError):
        get_float("nifti.oblique_tol")


def test_docs_list_every_key_with_its_default_and_variable():
    rows = re.findall(
        r"^\| `([a-z0-9_.]+)` \| `([^`]+)`.*\| `(PETZARR_[A-Z0-9_]+)` \|$",
        (ROOT / "docs/config.md").read_text(),
        flags=re.MULTILINE,
    )
    assert [key for key, _, _ in rows] == list(keys())
    for key, default, var in rows:
        assert var == env_var(key)
        assert float(default) == float(config.get(key)), key
    assert set(DEFAULTS) == {key.split(".")[0] for key, _, _ in rows}


# --- config.set reaching the converter ---------------------------------------------------


def _subject(root: Path, *, seg_shift_mm: float = 0.0) -> CohortSource:
    """One tiny subject (CT, PET, one label map) written with nibabel."""
    root.mkdir()
    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    seg_affine = affine.copy()
    seg_affine[0, 3] += seg_shift_mm
    ct = rng.integers(-1000, 1000, SHAPE_XYZ).astype(np.int16)
    pet = rng.uniform(0, 5000, SHAPE_XYZ).astype(np.float32)
    seg = (pet > 2500).astype(np.uint8)
    files = {}
    for name, data, aff in (("ct", ct, affine), ("pet", pet, affine), ("seg", seg, seg_affine)):
        files[name] = str(root / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(data, aff), files[name])
    source = SubjectSource(
        subject="0001", ct=files["ct"], pet=files["pet"], segs={"organs": files["seg"]}
    )
    return CohortSource(
        uri=str(root), layout="test", subjects=(source,), labels={"organs": {1: "liver"}}
    )


@pytest.fixture
def pools(monkeypatch):
    """The ``max_workers`` of every thread pool the zarr writer starts."""
    seen: list[int | None] = []

    class Recording(ThreadPoolExecutor):
        def __init__(self, max_workers=None, *args, **kwargs):
            seen.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(zarr_io, "ThreadPoolExecutor", Recording)
    return seen


@pytest.mark.parametrize("threads", [1, 3])
def test_write_threads_reach_the_writer(tmp_path, pools, threads):
    source = _subject(tmp_path / "src")
    with config.set({"convert.write_threads": threads}):
        (task,) = plan_conversion(source, str(tmp_path / "dest"), run_id="r1")
    assert task.options.write_threads == threads  # captured in the plan, on the "client"
    assert convert_subject(task).status == "converted"  # outside the block: the plan's value
    # ct, pet and seg_organs on both grids: four 3-D arrays, each written by one pool (the
    # check reads stored bytes back through the store's own async I/O, no pool of ours)
    assert pools == [threads] * 4


def test_grid_tolerance_is_read_when_checking(tmp_path):
    source = _subject(tmp_path / "src", seg_shift_mm=0.01)
    (task,) = plan_conversion(source, str(tmp_path / "dest"), run_id="r1")
    with pytest.raises(GridMismatchError, match="seg.nii.gz"):
        convert_subject(task)
    with config.set({"convert.grid_atol_mm": 0.05}):
        assert convert_subject(task).status == "converted"


def test_oblique_tolerance_is_read_when_reading(tmp_path):
    angle = 1e-3  # radians about z: direction cosines off-axis by ~1e-3
    c, s = np.cos(angle), np.sin(angle)
    affine = np.eye(4)
    affine[:2, :2] = [[c, -s], [s, c]]
    path = str(tmp_path / "tilted.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), affine), path)
    with pytest.raises(ObliqueAffineError):
        read_nifti(path)
    with config.set({"nifti.oblique_tol": 1e-2}):
        assert read_nifti(path).data.shape == (3, 3, 3)
