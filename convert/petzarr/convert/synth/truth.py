"""What a synthetic cohort was generated from: the numbers tests check recovered values against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from petzarr.convert.nifti import Grid
from petzarr.convert.synth.anatomy import Anatomy
from petzarr.convert.synth.niftiio import Orientation

__all__ = ["CohortTruth", "LabelKey", "SubjectTruth"]

LabelKey = tuple[str, int]  # (group name as in petzarr.cohort.layout, label id)


@dataclass(frozen=True)
class SubjectTruth:
    """One synthetic subject, as generated.

    Attributes
    ----------
    subject : str
        The 4-digit id of the file names and of the spreadsheets' ``Patient`` column.
    sex, age, weight_kg, height_m, data_source : str, int, float, float, str
        Demographics as written to ``PT-details.xlsx``.
    injected_activity_bq : float
        Injected activity [Bq] at injection time (``Injected Activity [MBq]`` x 1e6), not
        decayed.
    uptake_s : float
        Seconds from ``injection_time`` to ``acquisition_time``.
    activity_at_scan_bq : float
        The injected activity decayed to scan start: ``injected_activity_bq x
        2^(-uptake_s / 6586.2 s)`` (F-18).
    suv_denominator : float
        ``activity_at_scan_bq`` / body weight [Bq/g]. The PET is decay-corrected to scan
        start, as scanners write it, so PET [Bq/mL] = SUV x this, and SUV = PET /
        (A_inj 2^(-(t_acq - t_inj) / T_1/2) / W), the convention of
        :mod:`petzarr.analytics.norms`. (The undecayed ``injected_activity_bq / (1000
        weight_kg)`` is *not* the SUV denominator.)
    injection_time, acquisition_time : str
        ``HH:MM:SS``, as written to ``PT-details.xlsx``.
    suv : mapping of (str, int) to float
        True SUV of every label present in the label maps, before blur and noise, keyed
        ``(group name, label id)``, e.g. ``("organs", 8)`` for the liver.
    tissue_suv : mapping of str to float
        SUV of every phantom tissue (including unlabelled ones such as ``brain``).
    label_voxels : mapping of (str, int) to int
        CT-grid voxel count of every present label.
    dropped : tuple of (str, int)
        Labels left out of the anatomy (resected organs).
    absent : tuple of (str, int)
        Every label of the dataset's tables with no voxel in this subject's maps: dropped,
        outside the field of view, or an anatomical variant this subject does not have.
    orientation : {"RAS", "LPS"}
        How CT, PET and label maps are stored (LPS: negative x and y in the affine).
    pet_int16 : bool
        PET stored as int16 with ``scl_slope`` = ``pet_slope`` and ``scl_inter`` = 0.
    ct_grid, pet_grid : Grid
        Canonical RAS+ ``(z, y, x)`` grids.
    anatomy : Anatomy
        The phantom parameters.
    """

    subject: str
    sex: str
    age: int
    weight_kg: float
    height_m: float
    data_source: str
    injected_activity_bq: float
    uptake_s: float
    activity_at_scan_bq: float
    suv_denominator: float
    injection_time: str
    acquisition_time: str
    suv: Mapping[LabelKey, float]
    tissue_suv: Mapping[str, float]
    label_voxels: Mapping[LabelKey, int]
    dropped: tuple[LabelKey, ...]
    absent: tuple[LabelKey, ...]
    orientation: Orientation
    pet_int16: bool
    pet_slope: float | None
    ct_grid: Grid
    pet_grid: Grid
    anatomy: Anatomy

    def activity(self, group: str, label: int) -> float:
        """True activity concentration [Bq/mL] of a label at scan start: SUV x SUV
        denominator."""
        return self.suv[(group, label)] * self.suv_denominator


@dataclass(frozen=True)
class CohortTruth:
    """A synthetic ENHANCE-layout cohort: where it is and what each subject holds.

    ``labels`` is the content of ``labels.json``: ``{model name: {id: name}}``.
    """

    root: str
    size: str
    seed: int
    labels: Mapping[str, Mapping[int, str]]
    subjects: tuple[SubjectTruth, ...]

    def subject(self, subject: str) -> SubjectTruth:
        """The truth of one subject by id (``"0001"``)."""
        for s in self.subjects:
            if s.subject == subject:
                return s
        raise KeyError(subject)
