"""Regenerate docs/qc-example.png, the QC figure README.md shows.

    python docs/make_qc_example.py

Two `small` synthetic subjects, the second with its PET displaced 15 mm towards anterior
(``petzarr synth --shift-pet``), converted and checked with ``petzarr qc``; the flagged
subject's figure is copied here.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from petzarr.cli import main

HERE = Path(__file__).resolve().parent


def make(target: Path = HERE / "qc-example.png") -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        src, dest, out = f"{tmp}/src", f"{tmp}/cohort", f"{tmp}/qc"
        steps = [
            ["synth", src, "--subjects", "2", "--size", "small", "--shift-pet", "0002:0,15,0"],
            ["convert", src, dest, "--serial", "--no-progress"],
            ["qc", dest, "-o", out, "--serial", "--no-progress"],
        ]
        for words in steps:
            if main(words) != 0:
                raise SystemExit(f"petzarr {' '.join(words)} failed")
        shutil.copy(f"{out}/0002.png", target)
    return target


if __name__ == "__main__":
    print(make())
