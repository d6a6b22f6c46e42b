"""A new store is checked chunk by chunk against the bytes written: a changed, lost or
stray chunk fails the subject's verification, naming the array and the chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from petzarr.cohort.errors import VerificationError
from petzarr.cohort.zarr_io import stored_crcs, write_array
from petzarr.convert.writer import check_written


def _written(tmp_path: Path) -> tuple[zarr.Group, dict, np.ndarray]:
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w", zarr_format=3)
    data = np.random.default_rng(1).normal(size=(10, 6, 5)).astype(np.float32)
    stored = write_array(root.require_group("pet"), "pet", data, dims=("z", "y", "x"), slabs=4)
    return root, {"pet/pet": stored}, data


def test_as_written_passes_and_reads_back(tmp_path):
    root, crcs, data = _written(tmp_path)
    assert sorted(crcs["pet/pet"]) == ["c/0/0/0", "c/1/0/0", "c/2/0/0"]  # last one padded
    check_written(root, crcs, where="")
    np.testing.assert_array_equal(root["pet/pet"][...], data)
    assert stored_crcs(root, "pet/pet") == crcs["pet/pet"]


def test_a_changed_chunk_fails_naming_it(tmp_path):
    root, crcs, _ = _written(tmp_path)
    chunk = tmp_path / "s.zarr/pet/pet/c/1/0/0"
    raw = bytearray(chunk.read_bytes())
    raw[-1] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    with pytest.raises(
        VerificationError, match=r"S: pet/pet read back differently.*c/1/0/0 changed"
    ):
        check_written(root, crcs, where="S: ")


def test_a_lost_chunk_fails(tmp_path):
    root, crcs, _ = _written(tmp_path)
    (tmp_path / "s.zarr/pet/pet/c/2/0/0").unlink()
    with pytest.raises(VerificationError, match=r"c/2/0/0 missing or changed"):
        check_written(root, crcs, where="")


def test_a_missing_array_fails(tmp_path):
    root, crcs, _ = _written(tmp_path)
    with pytest.raises(VerificationError, match="ct/ct is missing from the new store"):
        check_written(root, {**crcs, "ct/ct": {"c/0/0/0": 1}}, where="")
