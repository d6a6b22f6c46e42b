"""The notebooks run top to bottom on tiny data (their own assertions included)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

#: figures (image/png outputs) each notebook must draw
FIGURES = {
    "01-convert-and-explore": 2,
    "02-organ-statistics": 4,
    "03-dynamic-pet": 5,
    "04-on-a-cluster": 2,
}
FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))


def test_every_notebook_is_counted():
    assert sorted(FIGURES) == [p.stem for p in NOTEBOOKS]


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("PETZARR_NOTEBOOK_SIZE", "tiny")
    monkeypatch.setenv("PETZARR_NOTEBOOK_DIR", str(tmp_path))
    monkeypatch.setenv("PETZARR_NOTEBOOK_DATA", str(FOLDER / "data"))  # kernels run in tmp_path
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors
    assert os.listdir(tmp_path)
    figures = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(figures) >= FIGURES[path.stem], f"{path.name}: {len(figures)} figures"
