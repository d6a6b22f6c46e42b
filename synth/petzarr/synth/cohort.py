"""Synthetic cohorts in the ENHANCE.PET 1.6k layout.

::

    labels.json  CT-details.xlsx  PT-details.xlsx
    imaging-data/images/CT/0001.nii.gz ...                 int16 HU
    imaging-data/images/PT/0001.nii.gz ...                 Bq/mL, own coarser grid
    imaging-data/ground-truth/<Group>/0001.nii.gz ...      uint8, CT grid, 7 groups

Everything a subject varies by (body, uptake, field of view, storage orientation, PET
storage type, resected organs) is drawn from ``numpy.random.default_rng([seed, index])``
into a :class:`SubjectSpec`; rendering a spec is deterministic, so a seed gives
byte-identical NIfTI files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from petzarr.cohort.constants import F18_HALF_LIFE_S
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.grid import Grid
from petzarr.cohort.layout import ENHANCE_GROUPS
from petzarr.synth.anatomy import Anatomy, build_phantom
from petzarr.synth.details import write_details
from petzarr.synth.grids import SIZES, Size, place_grids
from petzarr.synth.labels import ENHANCE_LABELS, labels_json
from petzarr.synth.motion import with_motion
from petzarr.synth.niftiio import Orientation
from petzarr.synth.render import make_luts, write_ct, write_pet
from petzarr.synth.tissues import BODY_COMPOSITION, TISSUES
from petzarr.synth.truth import CohortTruth, LabelKey, SubjectTruth

__all__ = [
    "F18_HALF_LIFE_S",
    "SubjectSpec",
    "draw_subject",
    "subject_paths",
    "write_enhance_cohort",
    "write_subject",
]

IMAGES = "imaging-data/images"
GROUND_TRUTH = "imaging-data/ground-truth"
DATA_SOURCES = ("AutoPET", "Leipzig", "Careggi")
_SOURCE_P = (0.6, 0.25, 0.15)  # about the dataset's mix (1014 AutoPET of ~1600)
_MANUFACTURER = {"AutoPET": "SIEMENS", "Leipzig": "SIEMENS", "Careggi": "GE MEDICAL SYSTEMS"}
# Storage variants cycle so that any three consecutive subjects include LPS and int16 PET.
_VARIANTS: tuple[tuple[Orientation, bool], ...] = (
    ("RAS", False),
    ("LPS", False),
    ("RAS", True),
    ("LPS", True),
)
_RESECTED = (
    "gallbladder",
    "kidney_left",
    "kidney_right",
    "spleen",
    "thyroid_left",
    "thyroid_right",
)
_RESECTED_P = (0.4, 0.15, 0.15, 0.1, 0.1, 0.1)
_MODEL_OF = {g.name: g.model for g in ENHANCE_GROUPS}
_GROUP_OF_MODEL = {g.model: g.name for g in ENHANCE_GROUPS}


@dataclass(frozen=True)
class SubjectSpec:
    """Everything needed to render one subject (drawn by :func:`draw_subject`)."""

    subject: str
    sex: str
    age: int
    weight_kg: float
    height_m: float
    data_source: str
    injected_mbq: float
    injection_time: str
    acquisition_time: str
    anatomy: Anatomy
    tissue_suv: dict[str, float]
    orientation: Orientation
    pet_int16: bool
    size: Size
    ct_grid: Grid
    pet_grid: Grid
    noise_seed: int
    ct_details: dict[str, object] = field(default_factory=dict)
    pet_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (z, y, x): motion

    @property
    def injected_activity_bq(self) -> float:
        """Injected activity [Bq] at injection time (``Injected Activity [MBq]`` x 1e6)."""
        return self.injected_mbq * 1e6

    @property
    def uptake_s(self) -> float:
        """Seconds from ``injection_time`` to ``acquisition_time`` (whole seconds, as written)."""
        return float(_seconds(self.acquisition_time) - _seconds(self.injection_time))

    @property
    def activity_at_scan_bq(self) -> float:
        """The injected activity decayed to scan start [Bq]: ``A 2^(-uptake / T_1/2)``."""
        return float(
            np.float64(self.injected_activity_bq) * np.exp2(-self.uptake_s / F18_HALF_LIFE_S)
        )

    @property
    def suv_denominator(self) -> float:
        """Activity at scan start / body weight [Bq/g]: the PET (decay-corrected to scan
        start) in Bq/mL is SUV x this."""
        return self.activity_at_scan_bq / (self.weight_kg * 1000.0)


def _seconds(clock: str) -> int:
    h, m, s = (int(v) for v in clock.split(":"))
    return h * 3600 + m * 60 + s


def _clock(seconds: float) -> str:
    s = int(seconds) % 86400
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def draw_subject(index: int, *, seed: int = 0, size: str = "tiny") -> SubjectSpec:
    """Draw subject number ``index`` (0-based; id ``index + 1``) of cohort ``seed``.

    Parameters
    ----------
    index : int
        Position in the cohort.
    seed : int
        Cohort seed.
    size : {"tiny", "small", "full"}
        Grid preset, see :data:`~petzarr.synth.grids.SIZES`.

    Returns
    -------
    SubjectSpec

    Examples
    --------
    >>> a, b = draw_subject(0, seed=3), draw_subject(0, seed=3)
    >>> a == b, a.subject, a.sex in ("M", "F")
    (True, '0001', True)
    """
    preset = _size(size)
    rng = np.random.default_rng([seed, index])
    sex = "M" if rng.random() < 0.62 else "F"
    age = int(np.clip(rng.normal(62, 13), 18, 90))
    height = round(
        float(np.clip(rng.normal(*((1.78, 0.07) if sex == "M" else (1.65, 0.065))), 1.5, 2.0)), 2
    )
    weight = float(round(float(np.clip(rng.normal(26.5, 4.5), 17, 40)) * height**2))
    source = str(rng.choice(DATA_SOURCES, p=_SOURCE_P))
    injected = round(weight * float(rng.uniform(2.8, 4.0)), 1)
    t_inj = 7.5 * 3600 + float(rng.uniform(0, 5 * 3600))
    t_acq = t_inj + float(rng.uniform(55, 75)) * 60
    offset = int(np.random.default_rng(seed).integers(len(_VARIANTS)))
    orientation, pet_int16 = _VARIANTS[(offset + index) % len(_VARIANTS)]
    dropped = frozenset([str(rng.choice(_RESECTED, p=_RESECTED_P))] if rng.random() < 0.3 else [])
    anatomy = Anatomy(
        height_mm=height * 1000.0,
        bmi=weight / height**2,
        z_soles=float(rng.uniform(-1900.0, -1600.0)),
        arms_up=bool(rng.random() < 0.35),
        rib13=bool(rng.random() < 0.06),
        lumbar6=bool(rng.random() < 0.08),
        dropped=dropped,
        seed=int(rng.integers(2**31)),
    )
    tissue_suv = {t: round(float(rng.uniform(*v.suv)), 3) for t, v in TISSUES.items()}
    ct, pet = place_grids(preset, rng, height_mm=anatomy.height_mm, z_soles=anatomy.z_soles)
    ct_details = {
        "Manufacturer": _MANUFACTURER[source],
        "kVp": int(rng.choice([100, 120])),
        "Exposure [mAs]": int(rng.integers(40, 160)),
        "Slice Thickness [mm]": preset.ct_spacing[2],
    }
    return SubjectSpec(
        subject=f"{index + 1:04d}",
        sex=sex,
        age=age,
        weight_kg=weight,
        height_m=height,
        data_source=source,
        injected_mbq=injected,
        injection_time=_clock(t_inj),
        acquisition_time=_clock(t_acq),
        anatomy=anatomy,
        tissue_suv=tissue_suv,
        orientation=orientation,
        pet_int16=pet_int16,
        size=preset,
        ct_grid=ct,
        pet_grid=pet,
        noise_seed=int(rng.integers(2**63)),
        ct_details=ct_details,
    )


def subject_paths(root: str | os.PathLike[str], subject: str) -> dict[str, Path]:
    """``{"CT": path, "PT": path, <group name>: path, ...}`` of one subject's files."""
    root = Path(root)
    paths = {m: root / IMAGES / m / f"{subject}.nii.gz" for m in ("CT", "PT")}
    paths |= {g.name: root / GROUND_TRUTH / g.folder / f"{subject}.nii.gz" for g in ENHANCE_GROUPS}
    return paths


def _label_of(name: str) -> LabelKey:
    for model, table in ENHANCE_LABELS.items():
        for i, n in table.items():
            if n == name:
                return _GROUP_OF_MODEL[model], i
    raise KeyError(name)  # pragma: no cover


def write_subject(root: str | os.PathLike[str], spec: SubjectSpec) -> SubjectTruth:
    """Render and write one subject's CT, PET and seven label maps under ``root``.

    Parameters
    ----------
    root : str or PathLike
        Cohort folder (the ``imaging-data`` tree is created as needed).
    spec : SubjectSpec
        The subject, from :func:`draw_subject` (possibly changed with ``dataclasses.replace``).

    Returns
    -------
    SubjectTruth
    """
    paths = subject_paths(root, spec.subject)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    phantom = build_phantom(spec.anatomy)
    luts = make_luts(phantom, spec.tissue_suv, spec.suv_denominator)
    noise = np.random.default_rng(spec.noise_seed)
    counts = write_ct(
        paths["CT"],
        {g.name: paths[g.name] for g in ENHANCE_GROUPS},
        phantom,
        luts,
        spec.ct_grid,
        orientation=spec.orientation,
        rng=noise,
        slab=spec.size.slab,
    )
    slope = write_pet(
        paths["PT"],
        phantom,
        luts,
        spec.pet_grid,
        orientation=spec.orientation,
        rng=noise,
        fwhm_mm=spec.size.pet_fwhm_mm,
        reference=spec.tissue_suv["liver"] * spec.suv_denominator,
        as_int16=spec.pet_int16,
        slab=spec.size.slab,
        shift_mm=spec.pet_shift_mm,
    )
    voxels: dict[LabelKey, int] = {}
    tissue_of: dict[LabelKey, str] = {}
    for g, lut in luts.labels.items():
        for sid in np.flatnonzero(lut):
            key = (g, int(lut[sid]))
            voxels[key] = voxels.get(key, 0) + int(counts[sid])
            tissue_of[key] = phantom.structures[sid - 1].tissue
    bc_tissue = {v: k for k, v in BODY_COMPOSITION.items()}
    for (g, label), n in list(voxels.items()):
        if g == "body_composition":
            tissue_of[(g, label)] = bc_tissue[label]
        if n == 0:
            del voxels[(g, label)]
    every = [(_GROUP_OF_MODEL[m], i) for m, t in ENHANCE_LABELS.items() for i in t]
    return SubjectTruth(
        subject=spec.subject,
        sex=spec.sex,
        age=spec.age,
        weight_kg=spec.weight_kg,
        height_m=spec.height_m,
        data_source=spec.data_source,
        injected_activity_bq=spec.injected_activity_bq,
        uptake_s=spec.uptake_s,
        activity_at_scan_bq=spec.activity_at_scan_bq,
        suv_denominator=spec.suv_denominator,
        injection_time=spec.injection_time,
        acquisition_time=spec.acquisition_time,
        suv={k: spec.tissue_suv[tissue_of[k]] for k in sorted(voxels)},
        tissue_suv=dict(spec.tissue_suv),
        label_voxels=dict(sorted(voxels.items())),
        dropped=tuple(sorted(_label_of(n) for n in spec.anatomy.dropped)),
        absent=tuple(k for k in every if k not in voxels),
        orientation=spec.orientation,
        pet_int16=spec.pet_int16,
        pet_slope=slope,
        ct_grid=spec.ct_grid,
        pet_grid=spec.pet_grid,
        anatomy=spec.anatomy,
        pet_shift_mm=spec.pet_shift_mm,
    )


def _size(size: str) -> Size:
    if size not in SIZES:
        raise InvalidInputError(f"synthetic cohort size {size!r}: choose one of {sorted(SIZES)}")
    return SIZES[size]


def write_enhance_cohort(
    dest: str | os.PathLike[str],
    *,
    subjects: int = 3,
    size: str = "tiny",
    seed: int = 0,
    pet_shift_mm: Mapping[str, Sequence[float]] | None = None,
) -> CohortTruth:
    """Write a synthetic cohort in the ENHANCE.PET 1.6k layout.

    Parameters
    ----------
    dest : str or PathLike
        Local folder to write into (created; existing files of the same names are replaced).
    subjects : int
        Number of subjects, ids ``0001`` upwards.
    size : {"tiny", "small", "full"}
        ``tiny`` (CT 64x64x48, PET 40^3, a few hundred kB a subject) for tests, ``small``
        (CT 128x128x96) for demos, ``full`` (CT 512x512x531, PET 440x440x531) for benchmarks.
    seed : int
        Cohort seed; the same seed writes byte-identical NIfTI files.
    pet_shift_mm : mapping of subject id to (dz, dy, dx), optional
        Simulated motion: those subjects' PET content is displaced rigidly by this many mm
        (RAS+ axes) from where their CT and labels put it; recorded in the truth.

    Returns
    -------
    CohortTruth
        Demographics, true uptake per label, storage variants and missing labels.

    Examples
    --------
    >>> import tempfile
    >>> truth = write_enhance_cohort(tempfile.mkdtemp(), subjects=1, seed=5)
    >>> s = truth.subjects[0]
    >>> at_scan = s.injected_activity_bq * 2 ** (-s.uptake_s / 6586.2)
    >>> s.subject, abs(s.suv_denominator / (at_scan / (s.weight_kg * 1000)) - 1) < 1e-12
    ('0001', True)
    """
    if isinstance(subjects, bool) or not isinstance(subjects, int) or not 1 <= subjects <= 9999:
        raise InvalidInputError(
            f"synthetic cohort: subjects must be an int in 1..9999, not {subjects!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"synthetic cohort: seed must be a non-negative int, not {seed!r}")
    _size(size)
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.json").write_text(json.dumps(labels_json(), indent=2) + "\n")
    specs = [draw_subject(i, seed=seed, size=size) for i in range(subjects)]
    specs = with_motion(specs, pet_shift_mm)
    truths = tuple(write_subject(root, spec) for spec in specs)
    pt_rows = [
        {
            "Patient": s.subject,
            "Age": s.age,
            "Sex": s.sex,
            "Weight [kg]": s.weight_kg,
            "Height [m]": s.height_m,
            "Data-Source": s.data_source,
            "Injected Activity [MBq]": s.injected_mbq,
            "Injection Time": s.injection_time,
            "Acquisition Time": s.acquisition_time,
            "Radiopharmaceutical": "FDG",
            "Manufacturer": s.ct_details["Manufacturer"],
        }
        for s in specs
    ]
    ct_rows = [{"Patient": s.subject, "Data-Source": s.data_source, **s.ct_details} for s in specs]
    write_details(root, pt_rows, ct_rows)
    return CohortTruth(
        root=str(root),
        size=size,
        seed=seed,
        labels={m: dict(t) for m, t in ENHANCE_LABELS.items()},
        subjects=truths,
    )
