"""Tissue classes of the phantom: CT number and the range FDG uptake (SUV) is drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BODY_COMPOSITION", "TISSUES", "Tissue"]


@dataclass(frozen=True)
class Tissue:
    """A tissue: CT number [HU] and the SUV range a subject's value is drawn from."""

    hu: int
    suv: tuple[float, float]


# Typical adult whole-body [18F]FDG uptake ~60 min p.i.; bladder and myocardium vary most.
TISSUES: Final[dict[str, Tissue]] = {
    "air": Tissue(-1000, (0.0, 0.0)),
    "table": Tissue(150, (0.0, 0.0)),
    "fat": Tissue(-100, (0.25, 0.40)),
    "visceral_fat": Tissue(-90, (0.35, 0.55)),
    "muscle": Tissue(50, (0.6, 0.9)),
    "soft": Tissue(40, (0.8, 1.2)),
    "bowel": Tissue(30, (1.2, 1.8)),
    "lung": Tissue(-800, (0.35, 0.6)),
    "airway": Tissue(-950, (0.0, 0.1)),
    "bone": Tissue(700, (0.7, 1.1)),
    "spine": Tissue(450, (1.4, 2.0)),
    "brain": Tissue(35, (6.0, 10.0)),
    "liver": Tissue(60, (2.0, 2.9)),
    "spleen": Tissue(50, (1.6, 2.4)),
    "kidney": Tissue(35, (2.2, 4.0)),
    "bladder": Tissue(10, (6.0, 25.0)),
    "myocardium": Tissue(45, (1.5, 9.0)),
    "blood": Tissue(45, (1.4, 2.2)),
    "stomach": Tissue(35, (1.3, 2.5)),
    "pancreas": Tissue(45, (1.2, 1.9)),
    "gallbladder": Tissue(15, (0.6, 1.1)),
    "adrenal": Tissue(30, (1.3, 2.0)),
    "thyroid": Tissue(90, (1.2, 2.2)),
}

# clin_ct_body_composition is a tissue map: its label for each tissue.
BODY_COMPOSITION: Final[dict[str, int]] = {"muscle": 1, "fat": 2, "visceral_fat": 3}
