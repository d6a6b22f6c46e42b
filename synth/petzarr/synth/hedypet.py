"""Synthetic cohorts in the hedyPET layout: static and dynamic BIDS datasets with kinetics.

Static root::

    dataset_description.json  participants.tsv  participants.json
    sub-XXX/ses-quadra/pet/sub-XXX_ses-quadra_trc-FDG_rec-acstatPSF_pet.nii.gz (+ .json)
    sub-XXX/ses-quadra/ct/sub-XXX_ses-quadra_rec-br38f_ct.nii.gz (+ .json)
    derivatives/totalsegmentator/sub-XXX/sub-XXX_ses-quadra_rec-br38f_seg-<task>_dseg.nii.gz
        task total (117 classes), tissue, body; uint8 on the CT grid, each with a .tsv table

Dynamic root (the static root unless given)::

    sub-XXX/ses-quadra/pet/sub-XXX_ses-quadra_trc-FDG_rec-acdyn_pet.nii.gz (+ .json)
        4D float32 (x, y, z, t), hedyPET's 69 frames; FrameTimesStart, FrameDuration [s]

Every tissue of the phantom follows the irreversible two-tissue compartment model driven by
one plasma input function (:mod:`petzarr.synth.kinetics`), so every label has a
known TAC and Patlak slope. The static PET is the 50-70 min mean (hedyPET's acstatPSF).
Images are decay-corrected to injection, which is scan start: the listmode starts at
injection, ``InjectionStart`` = ``ScanStart`` = 0 s after ``TimeZero``. Everything a subject
varies by is drawn from ``numpy.random.default_rng([seed, index])``; a seed gives
byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.grid import Grid
from petzarr.synth import _kernels
from petzarr.synth.anatomy import Anatomy, Phantom, build_phantom
from petzarr.synth.grids import HEDY_SIZES, HedySize, place_hedy_grids
from petzarr.synth.kinetics import (
    FENG_HEDYPET,
    HEDYPET_FRAMING,
    STATIC_WINDOW,
    TISSUE_KINETICS,
    ExpSum,
    FengInput,
    Kinetics,
)
from petzarr.synth.motion import with_motion
from petzarr.synth.niftiio import NiftiSlabWriter, Orientation
from petzarr.synth.render import (
    Luts,
    displaced,
    pet_slabs,
    rasterise_all,
    write_ct,
    write_dynamic_pet,
)
from petzarr.synth.tissues import TISSUES
from petzarr.synth.totalseg import (
    EXTREMITIES,
    HEDYPET_TABLES,
    TISSUE_TYPE_OF,
    total_id,
    write_label_table,
)
from petzarr.synth.truth import HedySubjectTruth, HedyTruth, LabelKey

__all__ = [
    "HedySpec",
    "draw_hedy_subject",
    "hedy_paths",
    "pet_sidecar",
    "write_dataset_files",
    "write_hedy_subject",
    "write_hedypet_cohort",
]

SESSION = "ses-quadra"
SEGMENTATIONS = "derivatives/totalsegmentator"
# Count-like noise: relative standard deviation DYN_NOISE at REF_SUV in a REF_FRAME_S frame
# of REF_VOXEL_ML voxels (hedyPET's dynamic grid); variance scales as activity / (frame
# duration x voxel volume).
DYN_NOISE = 0.20
REF_SUV = 2.0
REF_FRAME_S = 300.0
REF_VOXEL_ML = 1.65**3 / 1000
KINETICS_JITTER = 0.15  # sd of the log of each subject's K1, k2, k3
_ORIENTATIONS: tuple[Orientation, ...] = ("RAS", "LPS")


@dataclass(frozen=True)
class HedySpec:
    """Everything needed to render one hedyPET-layout subject (see :func:`draw_hedy_subject`)."""

    subject: str
    sex: str
    age: int
    weight_kg: float
    height_m: float
    injected_mbq: float
    time_zero: str
    anatomy: Anatomy
    feng: FengInput
    kinetics: dict[str, Kinetics]
    orientation: Orientation
    size: HedySize
    ct_grid: Grid
    pet_grid: Grid
    dynamic_grid: Grid
    noise_seed: int
    pet_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (z, y, x): motion after CT

    @property
    def injected_activity_bq(self) -> float:
        return self.injected_mbq * 1e6

    @property
    def suv_denominator(self) -> float:
        """Injected activity / weight [Bq/mL]; no decay: scan start is injection."""
        return self.injected_activity_bq / (self.weight_kg * 1000.0)

    @property
    def plasma(self) -> ExpSum:
        """The plasma input function [Bq/mL] (Feng's curve in SUV x the SUV denominator)."""
        return self.feng.curve(self.suv_denominator)


def _jitter_input(rng: np.random.Generator) -> FengInput:
    f = FENG_HEDYPET
    ln = rng.normal(0.0, [0.2, 0.15, 0.15, 0.15, 0.15, 0.1])
    a1, a2, a3, l1, l2, l3 = (
        round(v * float(math.exp(e)), 7)
        for v, e in zip((f.a1, f.a2, f.a3, f.l1, f.l2, f.l3), ln, strict=True)
    )
    return FengInput(a1, a2, a3, l1, l2, l3, round(f.tau + float(rng.uniform(-5.0, 5.0)), 3))


def draw_hedy_subject(index: int, *, seed: int = 0, size: str = "tiny") -> HedySpec:
    """Draw subject number ``index`` (0-based; id ``sub-{index + 1:03d}``) of cohort ``seed``.

    Examples
    --------
    >>> a = draw_hedy_subject(0, seed=2)
    >>> a == draw_hedy_subject(0, seed=2), a.subject, a.dynamic_grid.shape
    (True, 'sub-001', (72, 24, 36))
    """
    preset = _size(size)
    rng = np.random.default_rng([seed, index, 0x4ED7])
    sex = "M" if rng.random() < 0.5 else "F"
    age = int(rng.integers(18, 90))
    height = round(
        float(np.clip(rng.normal(*((1.80, 0.07) if sex == "M" else (1.67, 0.065))), 1.5, 2.0)), 2
    )
    weight = float(round(float(np.clip(rng.normal(25.0, 3.5), 18, 38)) * height**2))
    injected = round(weight * float(rng.uniform(0.37, 0.45)), 3)  # hedyPET: ~0.4 MBq/kg
    t0 = int(8 * 3600 + rng.integers(0, 6 * 3600))
    anatomy = Anatomy(
        height_mm=height * 1000.0,
        bmi=weight / height**2,
        z_soles=float(rng.uniform(-1900.0, -1600.0)),
        arms_up=False,
        rib13=bool(rng.random() < 0.06),
        lumbar6=bool(rng.random() < 0.08),
        seed=int(rng.integers(2**31)),
    )
    feng = _jitter_input(rng)
    kinetics = {t: k.jittered(rng, KINETICS_JITTER) for t, k in TISSUE_KINETICS.items()}
    ct, pet, dyn = place_hedy_grids(
        preset, rng, height_mm=anatomy.height_mm, z_soles=anatomy.z_soles
    )
    offset = int(np.random.default_rng([seed, 0x4ED7]).integers(len(_ORIENTATIONS)))
    return HedySpec(
        subject=f"sub-{index + 1:03d}",
        sex=sex,
        age=age,
        weight_kg=weight,
        height_m=height,
        injected_mbq=injected,
        time_zero=f"{t0 // 3600:02d}:{t0 % 3600 // 60:02d}:{t0 % 60:02d}",
        anatomy=anatomy,
        feng=feng,
        kinetics=kinetics,
        orientation=_ORIENTATIONS[(offset + index) % len(_ORIENTATIONS)],
        size=preset,
        ct_grid=ct,
        pet_grid=pet,
        dynamic_grid=dyn,
        noise_seed=int(rng.integers(2**63)),
    )


def hedy_paths(
    static_root: str | os.PathLike[str],
    subject: str,
    dynamic_root: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """``{"ct", "pet", "pet_dynamic", "total", "tissue", "body"}``: one subject's images."""
    static = Path(static_root)
    dynamic = static if dynamic_root is None else Path(dynamic_root)
    stem = f"{subject}_{SESSION}"
    seg = static / SEGMENTATIONS / subject
    return {
        "ct": static / subject / SESSION / "ct" / f"{stem}_rec-br38f_ct.nii.gz",
        "pet": static / subject / SESSION / "pet" / f"{stem}_trc-FDG_rec-acstatPSF_pet.nii.gz",
        "pet_dynamic": dynamic / subject / SESSION / "pet" / f"{stem}_trc-FDG_rec-acdyn_pet.nii.gz",
        **{g: seg / f"{stem}_rec-br38f_seg-{g}_dseg.nii.gz" for g in HEDYPET_TABLES},
    }


def _sidecar(image: Path) -> Path:
    return image.with_name(image.name.removesuffix(".nii.gz") + ".json")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _luts(phantom: Phantom) -> tuple[Luts, list[str]]:
    """CT number, the three maps' labels and the tissue of every structure id."""
    structures = phantom.structures
    tissues = ["air", *(st.tissue for st in structures)]
    hu = np.array([TISSUES[t].hu for t in tissues], dtype=np.float32)
    labels = {g: np.zeros(len(tissues), dtype=np.uint8) for g in HEDYPET_TABLES}
    for i, st in enumerate(structures, start=1):
        labels["total"][i] = total_id(st.name)
        labels["tissue"][i] = TISSUE_TYPE_OF.get(st.tissue, 0)
        if st.tissue not in ("air", "table"):
            labels["body"][i] = 2 if st.name in EXTREMITIES else 1
    return Luts(hu, np.zeros(len(tissues), np.float32), labels), tissues


def _noise_k(spec: HedySpec, duration_s: float, grid: Grid) -> float:
    """Noise variance per Bq/mL of activity for a frame of ``duration_s`` on ``grid``."""
    reference = REF_SUV * spec.suv_denominator
    return (
        DYN_NOISE**2
        * reference
        * (REF_FRAME_S / duration_s)
        * (REF_VOXEL_ML / grid.voxel_volume_ml)
    )


def pet_sidecar(
    *,
    injected_mbq: float,
    time_zero: str,
    starts: Sequence[float],
    durations: Sequence[float],
    recon: str = "PSF+TOF 4i5s",
    description: str = "petzarr synthetic",
) -> dict[str, Any]:
    """A hedyPET PET sidecar: dose, units and frame times from injection (BIDS PET)."""
    return {
        "Manufacturer": "Siemens",
        "ManufacturersModelName": "Biograph Vision Quadra",
        "Modality": "PT",
        "Units": "Bq/mL",
        "TracerName": "FDG",
        "TracerRadionuclide": "F18",
        "ModeOfAdministration": "bolus",
        "InjectedRadioactivity": injected_mbq,
        "InjectedRadioactivityUnits": "MBq",
        "TimeZero": time_zero,
        "InjectionStart": 0,
        "ScanStart": 0,
        "FrameTimesStart": [float(s) for s in starts],
        "FrameDuration": [float(d) for d in durations],
        "AcquisitionMode": "list mode",
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0,
        "ReconMethodName": recon,
        "AttenuationCorrection": "CT-based",
        "BodyPart": "WHOLEBODY",
        "Description": description,
    }


def write_hedy_subject(
    static_root: str | os.PathLike[str],
    spec: HedySpec,
    dynamic_root: str | os.PathLike[str] | None = None,
) -> HedySubjectTruth:
    """Render and write one subject: CT, three label maps, static and dynamic PET, sidecars.

    Parameters
    ----------
    static_root : str or PathLike
        The static BIDS root (folders are created as needed).
    spec : HedySpec
        The subject, from :func:`draw_hedy_subject` (possibly changed with
        ``dataclasses.replace``).
    dynamic_root : str or PathLike, optional
        Where the dynamic series goes; the static root by default.

    Returns
    -------
    HedySubjectTruth
    """
    paths = hedy_paths(static_root, spec.subject, dynamic_root)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    phantom = build_phantom(spec.anatomy)
    luts, tissue_of = _luts(phantom)
    noise = np.random.default_rng(spec.noise_seed)
    size = spec.size

    counts = write_ct(
        paths["ct"],
        {g: paths[g] for g in HEDYPET_TABLES},
        phantom,
        luts,
        spec.ct_grid,
        orientation=spec.orientation,
        rng=noise,
        slab=size.slab,
    )
    for g, table in HEDYPET_TABLES.items():
        write_label_table(paths[g].with_name(paths[g].name.removesuffix(".nii.gz") + ".tsv"), table)
    _write_json(
        _sidecar(paths["ct"]),
        {"Modality": "CT", "Manufacturer": "Siemens", "ConvolutionKernel": "Br38f", "KVP": 120},
    )

    # every tissue's voxel curve, averaged over each frame and over the static window
    cp = spec.plasma
    framing = HEDYPET_FRAMING
    tissues = sorted(set(tissue_of))
    curves = {t: spec.kinetics[t].voxel(cp) for t in tissues}
    tacs = {t: curves[t].mean(framing.start, framing.duration) for t in tissues}
    static = {
        t: float(curves[t].mean(STATIC_WINDOW.start, STATIC_WINDOW.duration)[0]) for t in tissues
    }

    # motion between CT and PET (``pet_shift_mm``) moves both PET series
    owner = rasterise_all(phantom, displaced(spec.pet_grid, spec.pet_shift_mm), size.slab)
    bank = _kernels.noise_bank(noise, math.prod(spec.pet_grid.shape))
    with NiftiSlabWriter(paths["pet"], spec.pet_grid, np.float32, spec.orientation) as out:
        for slab in pet_slabs(
            owner,
            np.array([static[t] for t in tissue_of], dtype=np.float32),
            spec.pet_grid,
            fwhm_mm=size.pet_fwhm_mm,
            k=_noise_k(spec, STATIC_WINDOW.duration[0], spec.pet_grid),
            rng=noise,
            bank=bank,
            slab=size.slab,
        ):
            out.write(slab)
    _write_json(
        _sidecar(paths["pet"]),
        pet_sidecar(
            injected_mbq=spec.injected_mbq,
            time_zero=spec.time_zero,
            starts=STATIC_WINDOW.start,
            durations=STATIC_WINDOW.duration,
        ),
    )

    del owner
    owner = rasterise_all(phantom, displaced(spec.dynamic_grid, spec.pet_shift_mm), size.slab)
    write_dynamic_pet(
        paths["pet_dynamic"],
        owner,
        np.stack([tacs[t] for t in tissue_of], axis=1).astype(np.float32),
        spec.dynamic_grid,
        orientation=spec.orientation,
        rng=noise,
        fwhm_mm=size.dyn_fwhm_mm,
        k=[_noise_k(spec, d, spec.dynamic_grid) for d in framing.duration],
        slab=size.slab,
    )
    _write_json(
        _sidecar(paths["pet_dynamic"]),
        pet_sidecar(
            injected_mbq=spec.injected_mbq,
            time_zero=spec.time_zero,
            starts=framing.start,
            durations=framing.duration,
        ),
    )

    composition, voxels = _composition(luts, tissue_of, counts)
    every = [(g, i) for g, t in HEDYPET_TABLES.items() for i in t]
    return HedySubjectTruth(
        subject=spec.subject,
        sex=spec.sex,
        age=spec.age,
        weight_kg=spec.weight_kg,
        height_m=spec.height_m,
        injected_activity_bq=spec.injected_activity_bq,
        suv_denominator=spec.suv_denominator,
        time_zero=spec.time_zero,
        framing=framing,
        plasma=cp,
        kinetics={t: spec.kinetics[t] for t in tissues},
        tissue_tacs={t: tuple(float(v) for v in tacs[t]) for t in tissues},
        tissue_static=static,
        composition=composition,
        label_voxels=voxels,
        absent=tuple(k for k in every if k not in voxels),
        orientation=spec.orientation,
        ct_grid=spec.ct_grid,
        pet_grid=spec.pet_grid,
        dynamic_grid=spec.dynamic_grid,
        anatomy=spec.anatomy,
        pet_shift_mm=spec.pet_shift_mm,
    )


def _composition(
    luts: Luts, tissue_of: list[str], counts: np.ndarray
) -> tuple[dict[LabelKey, dict[str, float]], dict[LabelKey, int]]:
    """Tissue fractions and voxel count of every present label, from per-structure counts."""
    by_label: dict[LabelKey, dict[str, int]] = {}
    for g, lut in luts.labels.items():
        for sid in np.flatnonzero(lut):
            if counts[sid]:
                parts = by_label.setdefault((g, int(lut[sid])), {})
                parts[tissue_of[sid]] = parts.get(tissue_of[sid], 0) + int(counts[sid])
    voxels = {k: sum(v.values()) for k, v in sorted(by_label.items())}
    composition = {
        k: {t: n / voxels[k] for t, n in sorted(v.items())} for k, v in sorted(by_label.items())
    }
    return composition, voxels


def _size(size: str) -> HedySize:
    if size not in HEDY_SIZES:
        raise InvalidInputError(
            f"synthetic hedyPET cohort size {size!r}: choose one of {sorted(HEDY_SIZES)}"
        )
    return HEDY_SIZES[size]


def write_dataset_files(
    root: Path, participants: Sequence[tuple[str, int, str, float, float]], name: str
) -> None:
    """A hedyPET BIDS root's dataset files: description and ``participants.tsv``/``.json``.

    ``participants`` holds ``(subject, age, sex, weight [kg], height [m])`` per subject.
    """
    root.mkdir(parents=True, exist_ok=True)
    _write_json(
        root / "dataset_description.json",
        {
            "Name": f"hedyPET layout, synthetic ({name})",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
        },
    )
    rows = ["participant_id\tage\tsex\tweight\theight"]
    rows += [f"{s}\t{age}\t{sex}\t{kg:g}\t{m:g}" for s, age, sex, kg, m in participants]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    _write_json(
        root / "participants.json",
        {
            "age": {"Description": "age at the scan", "Units": "year"},
            "sex": {"Description": "sex", "Levels": {"M": "male", "F": "female"}},
            "weight": {"Description": "body weight", "Units": "kg"},
            "height": {"Description": "body height", "Units": "m"},
        },
    )


def write_hedypet_cohort(
    static_root: str | os.PathLike[str],
    *,
    dynamic_root: str | os.PathLike[str] | None = None,
    subjects: int = 2,
    size: str = "tiny",
    seed: int = 0,
    pet_shift_mm: Mapping[str, Sequence[float]] | None = None,
) -> HedyTruth:
    """Write a synthetic cohort in the hedyPET layout, with dynamic PET of known kinetics.

    Parameters
    ----------
    static_root : str or PathLike
        The static BIDS dataset's folder (created; files of the same names are replaced).
    dynamic_root : str or PathLike, optional
        The dynamic dataset's folder; by default the static root holds both.
    subjects : int
        Number of subjects, ``sub-001`` upwards.
    size : {"tiny", "small", "half", "full"}
        ``tiny`` (dynamic 36 x 24 x 72, ~15 MB raw a series: neck to upper abdomen) for
        tests, ``small`` (dynamic 96 x 96 x 160) for demos, ``half`` (dynamic 220 x 220 x
        320, 4.3 GB raw) for benchmarks, ``full`` hedyPET's own grids (dynamic 440 x 440 x
        645, 34 GB raw). Every series is written frame by frame in bounded memory.
    seed : int
        Cohort seed; the same seed writes byte-identical files.
    pet_shift_mm : mapping of subject id to (dz, dy, dx), optional
        Simulated patient motion between CT and PET: these subjects' static and dynamic
        PET are rendered displaced by (dz, dy, dx) mm (RAS+), their headers unchanged;
        recorded in the truth (``HedySubjectTruth.pet_shift_mm``).

    Returns
    -------
    HedyTruth
        Demographics, grids, the input function, every tissue's kinetics and TAC, each
        label's composition; ``truth.subjects[0].ki("total", 5)`` is the liver's Patlak slope.

    Examples
    --------
    >>> import tempfile
    >>> truth = write_hedypet_cohort(tempfile.mkdtemp(), subjects=1, seed=1)
    >>> s = truth.subjects[0]
    >>> s.subject, len(truth.framing), truth.labels["total"][52]
    ('sub-001', 69, 'aorta')
    >>> liver = truth.label("total", "liver")
    >>> bool(0.001 < s.ki(*liver) < 0.01)
    True
    """
    if isinstance(subjects, bool) or not isinstance(subjects, int) or not 1 <= subjects <= 999:
        raise InvalidInputError(
            f"synthetic hedyPET cohort: subjects must be an int in 1..999, not {subjects!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(
            f"synthetic hedyPET cohort: seed must be a non-negative int, not {seed!r}"
        )
    _size(size)
    static = Path(static_root)
    dynamic = static if dynamic_root is None else Path(dynamic_root)
    specs = [draw_hedy_subject(i, seed=seed, size=size) for i in range(subjects)]
    specs = with_motion(specs, pet_shift_mm)
    participants = [(s.subject, s.age, s.sex, s.weight_kg, s.height_m) for s in specs]
    write_dataset_files(static, participants, "static")
    if dynamic != static:
        write_dataset_files(dynamic, participants, "dynamic")
    seg_root = static / SEGMENTATIONS
    seg_root.mkdir(parents=True, exist_ok=True)
    _write_json(
        seg_root / "dataset_description.json",
        {
            "Name": "TotalSegmentator (synthetic)",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "petzarr synth"}],
        },
    )
    truths = tuple(write_hedy_subject(static, spec, dynamic) for spec in specs)
    return HedyTruth(
        static_root=str(static),
        dynamic_root=str(dynamic),
        size=size,
        seed=seed,
        labels={g: dict(t) for g, t in HEDYPET_TABLES.items()},
        framing=HEDYPET_FRAMING,
        subjects=truths,
    )
