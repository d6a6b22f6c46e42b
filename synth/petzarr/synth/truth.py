"""What a synthetic cohort was generated from: the numbers tests check recovered values against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from petzarr.cohort.grid import Grid
from petzarr.synth.anatomy import Anatomy
from petzarr.synth.kinetics import ExpSum, Framing, Kinetics
from petzarr.synth.niftiio import Orientation

__all__ = ["CohortTruth", "HedySubjectTruth", "HedyTruth", "LabelKey", "SubjectTruth"]

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
        :mod:`petzarr.analytics.tables.suv_norms`. (The undecayed ``injected_activity_bq / (1000
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
    pet_shift_mm : (dz, dy, dx)
        Simulated patient motion: the PET's content is displaced by this (mm, RAS+ axes in
        ``(z, y, x)`` order) from where the CT and its labels put the anatomy.
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
    pet_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

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


@dataclass(frozen=True)
class HedySubjectTruth:
    """One synthetic hedyPET-layout subject, as generated.

    Activity is decay-corrected to injection, which is also scan start (the listmode starts
    at injection), so the SUV denominator is the undecayed injected activity over weight.
    Frame values are means over each frame of the continuous curves, before blur and noise.

    Attributes
    ----------
    subject : str
        ``sub-XXX``.
    sex, age, weight_kg, height_m : str, int, float, float
        As in ``participants.tsv``.
    injected_activity_bq : float
        ``InjectedRadioactivity`` (MBq in the sidecars) x 1e6.
    suv_denominator : float
        ``injected_activity_bq / (1000 weight_kg)`` [Bq/mL]: no decay (the images are
        decay-corrected to injection = scan start), as hedyPET's published constants.
    time_zero : str
        Clock time of injection and scan start, ``HH:MM:SS`` (the sidecars' ``TimeZero``).
    framing : Framing
        The dynamic series' frames (start, duration [s] from injection).
    plasma : ExpSum
        The arterial plasma input function ``Cp(t)`` [Bq/mL], ``t`` [s] from injection;
        every blood voxel (aorta, heart chambers, vessels) holds it.
    kinetics : mapping of str to Kinetics
        This subject's K1, k2, k3 [1/min] and vB of every phantom tissue.
    tissue_tacs : mapping of str to tuple of float
        Frame means [Bq/mL] of a voxel of each tissue: ``(1 - vB) C_T + vB Cp``.
    tissue_static : mapping of str to float
        The same averaged over the static window (50-70 min), what the static PET holds.
    composition : mapping of (str, int) to mapping of str to float
        Tissue fractions (CT-grid voxels) of every label present, keyed ``(group, id)``
        with group ``total``, ``tissue`` or ``body``; most ``total`` classes are one tissue,
        ``heart`` is myocardium and blood.
    label_voxels : mapping of (str, int) to int
        CT-grid voxel count of every present label.
    absent : tuple of (str, int)
        Labels of the three tables with no voxel in this subject's maps.
    orientation : {"RAS", "LPS"}
        Storage orientation of every volume.
    ct_grid, pet_grid, dynamic_grid : Grid
        Canonical RAS+ ``(z, y, x)`` grids of the CT (and maps), static and dynamic PET.
    anatomy : Anatomy
        The phantom parameters.
    pet_shift_mm : (dz, dy, dx)
        Simulated patient motion: both PET series' content is displaced by this (mm, RAS+
        axes in ``(z, y, x)`` order) from where the CT and its labels put the anatomy.
    """

    subject: str
    sex: str
    age: int
    weight_kg: float
    height_m: float
    injected_activity_bq: float
    suv_denominator: float
    time_zero: str
    framing: Framing
    plasma: ExpSum
    kinetics: Mapping[str, Kinetics]
    tissue_tacs: Mapping[str, tuple[float, ...]]
    tissue_static: Mapping[str, float]
    composition: Mapping[LabelKey, Mapping[str, float]]
    label_voxels: Mapping[LabelKey, int]
    absent: tuple[LabelKey, ...]
    orientation: Orientation
    ct_grid: Grid
    pet_grid: Grid
    dynamic_grid: Grid
    anatomy: Anatomy
    pet_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def input_times(self) -> np.ndarray:
        """Frame mid times [s]."""
        return self.framing.middle

    @property
    def input_values(self) -> np.ndarray:
        """The plasma input averaged over each frame [Bq/mL]."""
        return self.plasma.mean(self.framing.start, self.framing.duration)

    def tac(self, group: str, label: int) -> np.ndarray:
        """A label's true TAC: the frame means of its tissues, voxel-weighted [Bq/mL]."""
        return sum(
            (
                w * np.asarray(self.tissue_tacs[t])
                for t, w in self.composition[(group, label)].items()
            ),
            start=np.zeros(len(self.framing)),
        )

    def static_activity(self, group: str, label: int) -> float:
        """A label's true mean activity in the static PET [Bq/mL]."""
        return sum(w * self.tissue_static[t] for t, w in self.composition[(group, label)].items())

    def ki(self, group: str, label: int) -> float:
        """Slope Patlak recovers from the label's mean TAC, at long times [mL/cm3/min].

        ``sum_t w_t (1 - vB_t) Ki_t``: a voxel is ``1 - vB`` tissue (``Ki = K1 k3/(k2 + k3)``,
        see :attr:`Kinetics.ki`) and ``vB`` blood (slope 0).
        """
        return sum(
            w * (1.0 - self.kinetics[t].vb) * self.kinetics[t].ki
            for t, w in self.composition[(group, label)].items()
        )

    def tissue_of(self, group: str, label: int) -> str:
        """The one tissue a label is made of (``KeyError`` when it is a mixture)."""
        parts = self.composition[(group, label)]
        if len(parts) != 1:
            raise KeyError(f"{(group, label)} is a mixture: {dict(parts)}")
        return next(iter(parts))


@dataclass(frozen=True)
class HedyTruth:
    """A synthetic hedyPET-layout cohort: where it is, its tables and each subject's truth.

    ``labels`` are the three TotalSegmentator tables, ``{"total" | "tissue" | "body": {id:
    name}}``; ``framing`` the dynamic framing every subject shares.
    """

    static_root: str
    dynamic_root: str
    size: str
    seed: int
    labels: Mapping[str, Mapping[int, str]]
    framing: Framing
    subjects: tuple[HedySubjectTruth, ...]

    def subject(self, subject: str) -> HedySubjectTruth:
        """The truth of one subject by id (``"sub-001"``)."""
        for s in self.subjects:
            if s.subject == subject:
                return s
        raise KeyError(subject)

    def label(self, group: str, name: str) -> LabelKey:
        """``(group, id)`` of a class by name: ``truth.label("total", "liver")``."""
        for i, n in self.labels[group].items():
            if n == name:
                return group, i
        raise KeyError(f"{group}: no class {name!r}")
