"""``petzarr demo``, the README's first command, run as users run it: a fresh process."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.image
import pandas as pd


def test_the_demo_converts_computes_statistics_and_flags_the_moved_subject(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "petzarr.cli", "demo", str(tmp_path), "--subjects", "3"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    said = out.stdout
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5", "next:"):
        assert step in said, said
    assert "3 subjects: 3 converted" in said and "Dask dashboard: http" in out.stderr
    stats = pd.read_parquet(tmp_path / "stats.parquet")
    assert set(stats["Subject"]) == {"0001", "0002", "0003"}
    liver = stats[(stats["Label Name"] == "liver") & (stats["Erosion Iterations"] == 0)]
    printed = next(line.split() for line in said.splitlines() if line.startswith("liver "))
    assert abs(float(printed[1]) - liver["SUV Mean"].median()) < 0.01  # the SUV table
    qc = pd.read_parquet(tmp_path / "qc" / "qc.parquet")
    assert qc["Subject"][qc["Flagged"]].tolist() == ["0003"] and "flagged 0003" in said
    assert str(tmp_path / "qc" / "index.html") in said
    image = matplotlib.image.imread(tmp_path / "qc" / "0003.png")
    assert image[..., :3].std() > 0.05
