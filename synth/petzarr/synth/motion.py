"""Simulated patient motion between CT and PET, for either layout's subject specs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from petzarr.cohort.errors import InvalidInputError

__all__ = ["with_motion"]


def with_motion[S](specs: list[S], shifts: Mapping[str, Sequence[float]] | None) -> list[S]:
    """``specs`` with the PET of the subjects in ``shifts`` displaced by (dz, dy, dx) mm.

    A spec is a frozen dataclass with ``subject`` and ``pet_shift_mm`` fields.

    >>> from petzarr.synth.cohort import draw_subject
    >>> [s.pet_shift_mm for s in with_motion([draw_subject(0)], {"0001": (0, 12, 0)})]
    [(0.0, 12.0, 0.0)]
    """
    shifts = dict(shifts or {})
    by_subject: dict[str, Any] = {s.subject: s for s in specs}  # type: ignore[attr-defined]
    unknown = sorted(set(shifts) - set(by_subject))
    if unknown:
        raise InvalidInputError(f"synthetic cohort: no subject(s) {', '.join(unknown)} to shift")
    for subject, mm in shifts.items():
        shift = tuple(float(v) for v in mm)
        if len(shift) != 3:
            raise InvalidInputError(f"PET shift of {subject}: give (dz, dy, dx) in mm")
        by_subject[subject] = replace(by_subject[subject], pet_shift_mm=shift)
    return list(by_subject.values())
