"""Tiny dynamic-PET cohorts for the analytics tests, made the way users make them.

:mod:`petzarr.synth.patlak_phantom` writes a hedyPET-layout BIDS dataset whose every curve
follows the Patlak model exactly (the aorta carries ``cp``, every tissue ``Ki * ∫cp + V * cp``);
:func:`write_dynamic_cohort` converts it with the real converter, so the analytics tests read
stores exactly as ``petzarr convert`` writes them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort
from petzarr.synth.patlak_phantom import (
    KINETICS,
    MIDS,
    SPACING,
    STARTS,
    PatlakPhantom,
    feng_input,
    voxel_ml,
    write_patlak_cohort,
)

__all__ = [
    "KINETICS",
    "MIDS",
    "SPACING",
    "STARTS",
    "feng_input",
    "voxel_ml",
    "write_dynamic_cohort",
]


def write_dynamic_cohort(
    root: str | Path,
    subjects: tuple[str, ...] = ("sub-001", "sub-002"),
    *,
    noise: float = 0.0,
    options: dict[str, Any] | None = None,
) -> dict[str, PatlakPhantom]:
    """Convert a Patlak-phantom cohort into ``root`` (folder or URL); each subject's phantom."""
    source = Path(tempfile.mkdtemp(prefix="patlak-phantom-"))
    try:
        phantoms = write_patlak_cohort(source, subjects, noise=noise)
        report = convert_cohort(
            str(source),
            str(root),
            run=Run(serial=True, progress=False),
            dest_storage_options=options,
        )
    finally:
        shutil.rmtree(source, ignore_errors=True)
    if report.exit_code != 0:
        raise RuntimeError(f"the phantom cohort did not convert: {report.failed}")
    return phantoms
