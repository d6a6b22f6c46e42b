"""A tiny dynamic-PET phantom whose every curve follows the Patlak model exactly.

The phantom is a whole-body-ish block at 4 mm, ``(z, y, x) = (65, 40, 30)``: a body
cylinder with a rim of subcutaneous fat, a liver, a spleen, a kidney, a muscle box and
hedyPET's aorta (a ``∩`` tube: descending from the bottom, the arch over to the front, the
ascending leg down to heart level). The aorta carries the input function
``cp(t) = scale * feng_input(t)`` and every tissue ``k`` holds ``Ki_k * ∫cp + V_k * cp`` at
the frame middles, the integral as hedyPET's Patlak takes it (cumulative Simpson from the
first frame middle, in minutes), so Patlak on noise-free data returns ``Ki_k`` to rounding.

It is written as a hedyPET-layout BIDS dataset (see :mod:`petzarr.synth.hedypet` for the
layout), so tests make their stores with the real converter::

    participants.tsv  participants.json  dataset_description.json
    sub-XXX/ses-quadra/ct/..._rec-br38f_ct.nii.gz                    int16 HU
    sub-XXX/ses-quadra/pet/..._trc-FDG_rec-acstatPSF_pet.nii.gz      50-70 min mean
    sub-XXX/ses-quadra/pet/..._trc-FDG_rec-acdyn_pet.nii.gz          69 frames (dynamic root)
    derivatives/totalsegmentator/sub-XXX/..._rec-br38f_seg-{total,tissue,body}_dseg.nii.gz

CT, static PET, dynamic PET and the label maps share one grid, so the converter's
nearest-neighbour resampling is the identity and ``pet_dynamic`` holds exactly
:attr:`PatlakPhantom.pet` and :attr:`PatlakPhantom.maps`. Subjects alternate RAS and LPS
storage; both convert back to the same canonical arrays and origin. Voxels are stored as
float32 without scaling, so no rounding is added on the way.

>>> import tempfile
>>> phantoms = write_patlak_cohort(tempfile.mkdtemp(), subjects=("sub-001",))
>>> ph = phantoms["sub-001"]
>>> ph.pet.shape, ph.pet.dtype.name, sorted(ph.maps), ph.origin
((69, 65, 40, 30), 'float32', ['body', 'tissue', 'total'], (-100.0, -80.0, -60.0))
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import cumulative_simpson
from scipy.spatial import cKDTree

from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.grid import Grid
from petzarr.cohort.storage import filesystem, is_remote
from petzarr.synth.hedypet import SEGMENTATIONS, hedy_paths, pet_sidecar, write_dataset_files
from petzarr.synth.kinetics import HEDYPET_FRAMING, STATIC_WINDOW
from petzarr.synth.niftiio import NiftiSlabWriter, Orientation
from petzarr.synth.totalseg import write_label_table

__all__ = [
    "BODY",
    "DURATIONS",
    "KINETICS",
    "MIDS",
    "ORIGIN",
    "SHAPE",
    "SPACING",
    "STARTS",
    "SUV_DENOMINATOR_BQ_ML",
    "TISSUE",
    "TOTAL",
    "PatlakPhantom",
    "feng_input",
    "make_patlak_phantom",
    "tissue_curve",
    "voxel_ml",
    "write_patlak_cohort",
    "write_patlak_subject",
]

SPACING: Final = (4.0, 4.0, 4.0)  # (dz, dy, dx) mm
SHAPE: Final = (65, 40, 30)
ORIGIN: Final = (-100.0, -80.0, -60.0)  # canonical (z, y, x) of voxel 0, mm


def _frozen(values: ArrayLike) -> NDArray[np.float64]:
    out = np.asarray(values, dtype=np.float64)
    out.setflags(write=False)  # module constants: shared by every caller
    return out


#: hedyPET's 69 frames [s]: durations, starts (from injection) and middles.
DURATIONS: Final = _frozen(HEDYPET_FRAMING.duration)
STARTS: Final = _frozen(HEDYPET_FRAMING.start)
MIDS: Final = _frozen(HEDYPET_FRAMING.middle)

TOTAL: Final[dict[int, str]] = {1: "spleen", 3: "kidney_left", 5: "liver", 52: "aorta"}
TISSUE: Final[dict[int, str]] = {1: "subcutaneous_fat", 3: "skeletal_muscle"}
BODY: Final[dict[int, str]] = {1: "body_trunc"}
_TABLES: Final = {"total": TOTAL, "tissue": TISSUE, "body": BODY}

#: Patlak truth per tissue: (Ki [1/min], V [-]); the body background is "other".
KINETICS: Final[dict[str, tuple[float, float]]] = {
    "liver": (0.010, 0.60),
    "spleen": (0.004, 0.40),
    "kidney_left": (0.030, 0.30),
    "skeletal_muscle": (0.002, 0.10),
    "subcutaneous_fat": (0.001, 0.05),
    "other": (0.003, 0.20),
}

#: Injected activity / body weight [Bq/mL] of a subject of ``scale`` 1: the dose is
#: ``scale`` x 5 MBq/kg, so SUV images are the same for every subject and the aorta's late
#: frames are ~2 SUV.
SUV_DENOMINATOR_BQ_ML: Final = 5000.0

# CT numbers by region; the label maps, not the CT, carry the anatomy
_HU: Final = {
    "air": -1000,
    "other": 0,
    "subcutaneous_fat": -100,
    "skeletal_muscle": 50,
    "liver": 60,
    "spleen": 45,
    "kidney_left": 30,
    "aorta": 40,
}

# aorta centreline (mm from voxel 0), as in tests/analytics/test_input_function.py
_DESC_YX, _ASC_YX = (50.0, 50.0), (110.0, 70.0)
_ARCH_BASE_Z, _HEART_Z, _RADIUS_MM = 200.0, 130.0, 12.0
_ORIENTATIONS: Final[tuple[Orientation, ...]] = ("RAS", "LPS")


def feng_input(t_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Feng's FDG plasma curve [Bq/mL] at ``t_s`` seconds after injection.

    >>> round(float(feng_input(np.array([3600.0]))[0]))
    11168
    """
    t = np.asarray(t_s, dtype=np.float64) / 60.0
    a1, a2, a3, l1, l2, l3 = 851.1225, 21.8798, 20.8113, 4.1339, 0.1191, 0.0104
    cp = (a1 * t - a2 - a3) * np.exp(-l1 * t) + a2 * np.exp(-l2 * t) + a3 * np.exp(-l3 * t)
    return 1000.0 * cp


def tissue_curve(ki: float, v: float, cp: NDArray[np.float64]) -> NDArray[np.float64]:
    """The Patlak-model tissue curve ``ki * ∫cp + v * cp`` at the frame middles :data:`MIDS`.

    The integral is hedyPET's: ``scipy.integrate.cumulative_simpson`` from the first frame
    middle, in minutes (which petzarr's analytics reproduce bit for bit), so Patlak's X and
    Y are exactly linear with slope ``ki``.
    """
    cp = np.asarray(cp, dtype=np.float64)
    return ki * cumulative_simpson(cp, x=MIDS / 60.0, initial=0) + v * cp


def voxel_ml() -> float:
    """The volume of one voxel [mL]."""
    return math.prod(SPACING) / 1000.0


@dataclass(frozen=True, eq=False)
class PatlakPhantom:
    """One subject as written: canonical arrays, demographics and the kinetic truth.

    Attributes
    ----------
    subject : str
        ``sub-XXX``.
    pet : ndarray, float32, shape (t, z, y, x)
        The dynamic series [Bq/mL] (what ``pet_dynamic/pet`` holds after conversion).
    maps : dict of str to ndarray
        ``{"total", "tissue", "body"}`` uint8 ``(z, y, x)`` label maps.
    scale : float
        The subject's factor on the input function (and on the injected activity).
    origin : tuple of float
        Canonical ``(z, y, x)`` centre of voxel 0 [mm].
    truth : dict of str to (float, float)
        :data:`KINETICS`: ``(Ki, V)`` by region name.
    ct : ndarray, int16, shape (z, y, x)
        The CT [HU].
    static : ndarray, float32, shape (z, y, x)
        The static PET [Bq/mL]: the mean of the frames within 50-70 min.
    metadata : dict
        The ``participants.tsv`` row (``age``, ``sex``, ``weight``, ``height``) and
        ``InjectedRadioactivity`` [MBq] as the PET sidecars give it.
    orientation : {"RAS", "LPS"}
        How the NIfTI files store the arrays.
    """

    subject: str
    pet: NDArray[np.float32]
    maps: dict[str, NDArray[np.uint8]]
    scale: float
    origin: tuple[float, float, float]
    truth: dict[str, tuple[float, float]]
    ct: NDArray[np.int16]
    static: NDArray[np.float32]
    metadata: dict[str, Any]
    orientation: Orientation

    @property
    def grid(self) -> Grid:
        """The canonical grid shared by every image of the subject."""
        return Grid(SHAPE, SPACING, self.origin)

    @property
    def plasma(self) -> NDArray[np.float64]:
        """The input function at the frame middles [Bq/mL] (what the aorta holds)."""
        return self.scale * feng_input(MIDS)

    @property
    def suv_denominator(self) -> float:
        """Injected activity / weight [Bq/mL] (no decay: the scan starts at injection)."""
        return self.metadata["InjectedRadioactivity"] * 1e6 / (self.metadata["weight"] * 1000.0)


def _centreline(step: float = 0.25) -> NDArray[np.float64]:
    (yd, xd), (ya, xa) = _DESC_YX, _ASC_YX
    descending = [(z, yd, xd) for z in np.arange(-5.0, _ARCH_BASE_Z, step)]
    r, yc = (ya - yd) / 2, (ya + yd) / 2
    theta = np.linspace(np.pi, 0, int(np.pi * r / step))
    arch = [
        (_ARCH_BASE_Z + r * np.sin(t), yc + r * np.cos(t), xd + (xa - xd) * (1 - t / np.pi))
        for t in theta
    ]
    ascending = [(z, ya, xa) for z in np.arange(_ARCH_BASE_Z, _HEART_Z, -step)]
    return np.array(descending + arch + ascending)


def _ellipsoid(
    zyx: tuple[np.ndarray, ...], centre: tuple[float, ...], radii: tuple[float, ...]
) -> NDArray[np.bool_]:
    d2 = sum(((a - c) / r) ** 2 for a, c, r in zip(zyx, centre, radii, strict=True))
    return np.asarray(d2 <= 1)


def _anatomy() -> tuple[dict[str, NDArray[np.uint8]], NDArray[np.object_]]:
    """The three label maps and every voxel's region name (the same for every subject)."""
    axes = (np.arange(n) * s for n, s in zip(SHAPE, SPACING, strict=True))
    zz, yy, xx = np.meshgrid(*axes, indexing="ij")
    centres = np.stack([zz, yy, xx], axis=-1).reshape(-1, 3)
    aorta = (cKDTree(_centreline()).query(centres)[0] <= _RADIUS_MM).reshape(SHAPE)

    body = ((yy - 80.0) / 78.0) ** 2 + ((xx - 60.0) / 58.0) ** 2 <= 1
    fat = body & ~(((yy - 80.0) / 68.0) ** 2 + ((xx - 60.0) / 50.0) ** 2 <= 1)
    zyx = (zz, yy, xx)
    total = np.zeros(SHAPE, np.uint8)
    total[_ellipsoid(zyx, (90, 110, 30), (32, 28, 20))] = 5  # liver
    total[_ellipsoid(zyx, (110, 60, 100), (20, 20, 12))] = 1  # spleen
    total[_ellipsoid(zyx, (60, 50, 95), (24, 16, 12))] = 3  # kidney_left
    total[aorta] = 52
    total[~body] = 0
    tissue = np.zeros(SHAPE, np.uint8)
    tissue[fat & (total == 0)] = 1
    muscle = (zz >= 20) & (zz < 60) & (yy >= 20) & (yy < 40) & (xx >= 8) & (xx < 40)
    tissue[muscle & body & (total == 0)] = 3
    maps = {"total": total, "tissue": tissue, "body": body.astype(np.uint8)}

    region = np.full(SHAPE, "other", dtype=object)
    region[~body] = "air"
    for table, arr in ((TOTAL, total), (TISSUE, tissue)):
        for i, name in table.items():
            region[arr == i] = name
    return maps, region


def _demographics(seed: int) -> tuple[int, str, float, float]:
    """Age, sex, weight [kg] and height [m]: plain functions of the seed, no draws (the
    generator's draws are the original phantom's scale and noise, in that order)."""
    sex = "MF"[seed % 2]
    return 40 + 7 * (seed % 6), sex, 70.0 + 5.0 * (seed % 5), 1.78 if sex == "M" else 1.66


def make_patlak_phantom(
    subject: str,
    *,
    seed: int = 0,
    noise: float = 0.0,
    orientation: Orientation | None = None,
) -> PatlakPhantom:
    """One subject's arrays, drawn from ``numpy.random.default_rng(seed)``; nothing is written.

    Parameters
    ----------
    subject : str
        ``sub-XXX``.
    seed : int
        The subject's ``scale`` is the generator's first draw, ``uniform(0.8, 1.2)``; the
        noise follows.
    noise : float
        Relative voxel noise (sd): every frame value is multiplied by ``1 + noise * N(0, 1)``.
    orientation : {"RAS", "LPS"}, optional
        Storage orientation of the files; by default RAS for even seeds, LPS for odd ones.

    Returns
    -------
    PatlakPhantom

    Examples
    --------
    >>> ph = make_patlak_phantom("sub-001")
    >>> liver = ph.maps["total"] == 5
    >>> expected = tissue_curve(*KINETICS["liver"], ph.plasma).astype(np.float32)
    >>> bool((ph.pet[:, liver] == expected[:, None]).all())
    True
    """
    if not math.isfinite(noise) or noise < 0:
        raise InvalidInputError(f"patlak phantom: noise must be finite and >= 0, not {noise!r}")
    rng = np.random.default_rng(seed)
    scale = float(rng.uniform(0.8, 1.2))  # injected activity / weight varies per subject
    maps, region = _anatomy()

    cp = scale * feng_input(MIDS)
    pet = np.zeros((len(MIDS), *SHAPE), np.float32)
    for name, (ki, v) in KINETICS.items():
        pet[:, region == name] = tissue_curve(ki, v, cp)[:, None].astype(np.float32)
    pet[:, region == "aorta"] = cp[:, None].astype(np.float32)
    if noise:
        pet *= 1 + noise * rng.standard_normal(pet.shape, dtype=np.float32)

    # hedyPET's acstatPSF is the 50-70 min listmode: the mean of the frames inside it
    (w0,), (wd,) = STATIC_WINDOW.start, STATIC_WINDOW.duration
    inside = (STARTS >= w0) & (STARTS + DURATIONS <= w0 + wd)
    weights = DURATIONS[inside] / DURATIONS[inside].sum()
    static = np.tensordot(weights, pet[inside].astype(np.float64), axes=1).astype(np.float32)

    ct = np.zeros(SHAPE, np.int16)
    for name, hu in _HU.items():
        ct[region == name] = hu

    age, sex, weight, height = _demographics(seed)
    metadata = {
        "age": age,
        "sex": sex,
        "weight": weight,
        "height": height,
        # dose in proportion to weight and scale: the SUV denominator is scale x 5000 Bq/mL
        "InjectedRadioactivity": SUV_DENOMINATOR_BQ_ML * scale * weight / 1000.0,
    }
    if orientation is None:
        orientation = _ORIENTATIONS[seed % 2]
    return PatlakPhantom(
        subject=subject,
        pet=pet,
        maps=maps,
        scale=scale,
        origin=ORIGIN,
        truth=dict(KINETICS),
        ct=ct,
        static=static,
        metadata=metadata,
        orientation=orientation,
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _pet_sidecar(ph: PatlakPhantom, starts: ArrayLike, durations: ArrayLike) -> dict:
    """hedyPET's PET sidecar (:func:`petzarr.synth.hedypet.pet_sidecar`) for this phantom."""
    return pet_sidecar(
        injected_mbq=ph.metadata["InjectedRadioactivity"],
        time_zero="10:00:00",
        starts=np.asarray(starts, dtype=np.float64).tolist(),
        durations=np.asarray(durations, dtype=np.float64).tolist(),
        description="petzarr synthetic Patlak phantom",
    )


def _sidecar(image: Path) -> Path:
    return image.with_name(image.name.removesuffix(".nii.gz") + ".json")


def write_patlak_subject(
    root: str | Path, phantom: PatlakPhantom, *, dynamic_root: str | Path | None = None
) -> dict[str, Path]:
    """Write one phantom's NIfTI files and sidecars under local BIDS root(s).

    Parameters
    ----------
    root : str or PathLike
        The static BIDS root (a local folder; created as needed).
    phantom : PatlakPhantom
        From :func:`make_patlak_phantom`.
    dynamic_root : str or PathLike, optional
        Where the dynamic series and its sidecar go; ``root`` by default.

    Returns
    -------
    dict of str to Path
        The files written, by role (see :func:`petzarr.synth.hedypet.hedy_paths`).
    """
    paths = hedy_paths(root, phantom.subject, dynamic_root)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    grid, o = phantom.grid, phantom.orientation
    volumes: list[tuple[str, np.ndarray, type]] = [
        ("ct", phantom.ct, np.int16),
        ("pet", phantom.static, np.float32),
    ]
    volumes += [(g, phantom.maps[g], np.uint8) for g in _TABLES]
    for role, data, dtype in volumes:
        with NiftiSlabWriter(paths[role], grid, dtype, o) as out:
            out.write(data)
    with NiftiSlabWriter(paths["pet_dynamic"], grid, np.float32, o, frames=len(MIDS)) as out:
        for frame in phantom.pet:
            out.write(frame)

    for g, table in _TABLES.items():
        write_label_table(paths[g].with_name(paths[g].name.removesuffix(".nii.gz") + ".tsv"), table)
    _write_json(
        _sidecar(paths["ct"]),
        {"Modality": "CT", "Manufacturer": "Siemens", "ConvolutionKernel": "Br38f", "KVP": 120},
    )
    _write_json(
        _sidecar(paths["pet"]),
        _pet_sidecar(phantom, STATIC_WINDOW.start, STATIC_WINDOW.duration),
    )
    _write_json(_sidecar(paths["pet_dynamic"]), _pet_sidecar(phantom, STARTS, DURATIONS))
    return paths


def _write_dataset_files(root: Path, phantoms: Sequence[PatlakPhantom], name: str) -> None:
    rows = [
        (ph.subject, m["age"], m["sex"], m["weight"], m["height"])
        for ph in phantoms
        for m in [ph.metadata]
    ]
    write_dataset_files(root, rows, f"Patlak phantom, {name}")


def _upload(local: Path, url: str, options: Mapping[str, Any] | None) -> None:
    """Copy every file under ``local`` to the same relative path under ``url``."""
    fs, base = filesystem(url, options)
    base = base.rstrip("/")
    for f in sorted(local.rglob("*")):
        if f.is_file():
            fs.put_file(str(f), f"{base}/{f.relative_to(local).as_posix()}")


def write_patlak_cohort(
    root: str | Path,
    subjects: Sequence[str] = ("sub-001", "sub-002"),
    *,
    noise: float = 0.0,
    dynamic_root: str | Path | None = None,
    seed: int = 0,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, PatlakPhantom]:
    """Write a cohort of Patlak phantoms as a hedyPET-layout BIDS dataset.

    Parameters
    ----------
    root : str or PathLike
        The static BIDS root: a folder, or a URL (``s3://bucket/prefix``) — remote roots
        are written to a local temporary folder first, then uploaded file by file.
    subjects : sequence of str
        Subject ids (``sub-XXX``); subject ``i`` is drawn with seed ``seed + i``.
    noise : float
        Relative voxel noise (sd) of the dynamic frames; 0 for exact Patlak curves.
    dynamic_root : str or PathLike, optional
        A second BIDS root for the dynamic series (hedyPET ships two datasets); ``root``
        by default. Convert with ``convert_cohort(root, dest, dynamic_root=...)``.
    seed : int
        Offset of the subjects' seeds; the same seed writes byte-identical files.
    storage_options : mapping, optional
        fsspec options of remote roots (e.g. ``petzarr.cohort.storage.storage_options``).

    Returns
    -------
    dict of str to PatlakPhantom
        Each subject's phantom, in the order of ``subjects``.
    """
    subjects = list(subjects)
    bad = [s for s in subjects if not isinstance(s, str) or not s.startswith("sub-")]
    if not subjects or bad or len(set(subjects)) != len(subjects):
        raise InvalidInputError(
            f"patlak phantom cohort: subjects must be distinct 'sub-XXX' ids, not {subjects!r}"
        )
    phantoms = {
        s: make_patlak_phantom(s, seed=seed + i, noise=noise) for i, s in enumerate(subjects)
    }
    dests = {"static": str(root)}
    if dynamic_root is not None and str(dynamic_root) != str(root):
        dests["dynamic"] = str(dynamic_root)
    with tempfile.TemporaryDirectory(prefix="patlak-phantom-") as stage:
        local = {
            k: Path(stage, k) if is_remote(u) else Path(filesystem(u)[1]) for k, u in dests.items()
        }
        for k, folder in local.items():
            _write_dataset_files(folder, list(phantoms.values()), k)
        seg_root = local["static"] / SEGMENTATIONS
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
        for ph in phantoms.values():
            write_patlak_subject(local["static"], ph, dynamic_root=local.get("dynamic"))
        for k, u in dests.items():
            if is_remote(u):
                _upload(local[k], u, storage_options)
    return phantoms
