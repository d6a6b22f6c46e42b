"""Tiny dynamic-PET cohorts generated in code, in the format's ``pet_dynamic`` layout.

Until the 4-D converter lands, the analytics tests build their stores here, straight with
zarr, as ``docs/format.md`` and the issue specify: group ``pet_dynamic`` with ``pet``
float32 ``(t, z, y, x)`` chunked ``(1, slabs, ny, nx)``, coordinates ``t`` (frame middle),
``frame_start``, ``frame_duration``, ``z, y, x`` (mm) and the label maps ``seg_total``,
``seg_tissue``, ``seg_body`` (attribute ``labels`` = {"id": name}).

The phantom is a whole-body-ish block at 4 mm: a body cylinder, a liver, a spleen, a kidney,
a muscle box and hedyPET's aorta (a ``∩`` tube: descending from the bottom, the arch over to
the front, the ascending leg down to heart level). Activity follows the Patlak model exactly:
the aorta carries the input function ``cp(t)`` and every tissue ``k`` holds
``Ki_k * ∫cp + V_k * cp`` (the integral as hedyPET's Patlak takes it: cumulative Simpson from
the first frame middle, in minutes), so Patlak on noise-free data returns ``Ki_k`` to rounding.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from petzarr.analytics.kernels.patlak import cumulative_simpson
from petzarr.cohort import layout
from petzarr.cohort.constants import HEDYPET_FRAME_DURATIONS_S
from petzarr.cohort.index import update_index
from petzarr.cohort.labels import dump_labels
from petzarr.cohort.storage import filesystem, join, zarr_store
from petzarr.cohort.zarr_io import write_array

SPACING = (4.0, 4.0, 4.0)  # (dz, dy, dx) mm
SHAPE = (65, 40, 30)
# hedyPET's framing (69 frames)
DURATIONS = np.repeat(list(HEDYPET_FRAME_DURATIONS_S), list(HEDYPET_FRAME_DURATIONS_S.values()))
STARTS = np.concatenate([[0.0], np.cumsum(DURATIONS)[:-1]])
MIDS = STARTS + DURATIONS / 2

TOTAL = {1: "spleen", 3: "kidney_left", 5: "liver", 52: "aorta"}
TISSUE = {1: "subcutaneous_fat", 3: "skeletal_muscle"}
BODY = {1: "body_trunc"}
#: Patlak truth per tissue: (Ki [1/min], V [-]); the body background is "other"
KINETICS = {
    "liver": (0.010, 0.60),
    "spleen": (0.004, 0.40),
    "kidney_left": (0.030, 0.30),
    "skeletal_muscle": (0.002, 0.10),
    "subcutaneous_fat": (0.001, 0.05),
    "other": (0.003, 0.20),
}

# aorta centreline (mm), as in tests/analytics/test_input_function.py
DESC_YX, ASC_YX = (50.0, 50.0), (110.0, 70.0)
ARCH_BASE_Z, HEART_Z, RADIUS_MM = 200.0, 130.0, 12.0


def feng_input(t_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Feng's FDG plasma curve [Bq/mL] at ``t_s`` seconds after injection."""
    t = np.asarray(t_s, dtype=np.float64) / 60.0
    a1, a2, a3, l1, l2, l3 = 851.1225, 21.8798, 20.8113, 4.1339, 0.1191, 0.0104
    cp = (a1 * t - a2 - a3) * np.exp(-l1 * t) + a2 * np.exp(-l2 * t) + a3 * np.exp(-l3 * t)
    return 1000.0 * cp


def tissue_curve(ki: float, v: float, cp: NDArray[np.float64]) -> NDArray[np.float64]:
    """Patlak-model tissue curve at the frame middles (integral as hedyPET's Patlak takes it)."""
    return ki * cumulative_simpson(cp, MIDS / 60.0) + v * cp


@dataclass(frozen=True)
class Phantom:
    """One subject's arrays (canonical ``(t, z, y, x)`` / ``(z, y, x)``) and its truth."""

    subject: str
    pet: NDArray[np.float32]
    maps: dict[str, NDArray[np.uint8]]
    scale: float
    origin: tuple[float, float, float]
    truth: dict[str, tuple[float, float]] = field(default_factory=dict)


def _centreline(step: float = 0.25) -> NDArray[np.float64]:
    (yd, xd), (ya, xa) = DESC_YX, ASC_YX
    descending = [(z, yd, xd) for z in np.arange(-5.0, ARCH_BASE_Z, step)]
    r, yc = (ya - yd) / 2, (ya + yd) / 2
    theta = np.linspace(np.pi, 0, int(np.pi * r / step))
    arch = [
        (ARCH_BASE_Z + r * np.sin(t), yc + r * np.cos(t), xd + (xa - xd) * (1 - t / np.pi))
        for t in theta
    ]
    ascending = [(z, ya, xa) for z in np.arange(ARCH_BASE_Z, HEART_Z, -step)]
    return np.array(descending + arch + ascending)


def _ellipsoid(zz, yy, xx, centre, radii):
    return sum(((a - c) / r) ** 2 for a, c, r in zip((zz, yy, xx), centre, radii)) <= 1


def make_phantom(subject: str, *, seed: int = 0, noise: float = 0.0) -> Phantom:
    """A subject's dynamic PET and label maps; ``noise`` is the relative voxel noise (sd)."""
    rng = np.random.default_rng(seed)
    scale = float(rng.uniform(0.8, 1.2))  # injected activity / weight varies per subject
    zz, yy, xx = np.meshgrid(*(np.arange(n) * s for n, s in zip(SHAPE, SPACING)), indexing="ij")
    centres = np.stack([zz, yy, xx], axis=-1).reshape(-1, 3)
    aorta = (cKDTree(_centreline()).query(centres)[0] <= RADIUS_MM).reshape(SHAPE)

    body = ((yy - 80.0) / 78.0) ** 2 + ((xx - 60.0) / 58.0) ** 2 <= 1
    fat = body & ~(((yy - 80.0) / 68.0) ** 2 + ((xx - 60.0) / 50.0) ** 2 <= 1)
    total = np.zeros(SHAPE, np.uint8)
    total[_ellipsoid(zz, yy, xx, (90, 110, 30), (32, 28, 20))] = 5  # liver
    total[_ellipsoid(zz, yy, xx, (110, 60, 100), (20, 20, 12))] = 1  # spleen
    total[_ellipsoid(zz, yy, xx, (60, 50, 95), (24, 16, 12))] = 3  # kidney_left
    total[aorta] = 52
    total[~body] = 0
    tissue = np.zeros(SHAPE, np.uint8)
    tissue[fat & (total == 0)] = 1
    muscle = (zz >= 20) & (zz < 60) & (yy >= 20) & (yy < 40) & (xx >= 8) & (xx < 40)
    tissue[muscle & body & (total == 0)] = 3
    maps = {
        "total": total,
        "tissue": tissue,
        "body": body.astype(np.uint8),
    }

    cp = scale * feng_input(MIDS)
    region = np.full(SHAPE, "other", dtype=object)
    region[~body] = "air"
    for table, arr in ((TOTAL, total), (TISSUE, tissue)):
        for i, name in table.items():
            region[arr == i] = name
    pet = np.zeros((len(MIDS), *SHAPE), np.float32)
    for name, (ki, v) in KINETICS.items():
        where = region == name
        pet[:, where] = tissue_curve(ki, v, cp)[:, None].astype(np.float32)
    pet[:, region == "aorta"] = cp[:, None].astype(np.float32)
    if noise:
        pet *= 1 + noise * rng.standard_normal(pet.shape, dtype=np.float32)
    origin = (-100.0, -80.0, -60.0)
    return Phantom(subject, pet, maps, scale, origin, truth=dict(KINETICS))


def write_subject_store(url: str, phantom: Phantom, *, slabs: int = 16, options=None) -> None:
    """Write ``phantom`` as a subject store with a ``pet_dynamic`` group at ``url``."""
    root = zarr.open_group(zarr_store(url, options), mode="w", zarr_format=3)
    root.attrs["petzarr"] = {"format_version": 1, "subject": phantom.subject}
    g = root.create_group(layout.PET_DYNAMIC_GROUP)
    write_array(
        g,
        "pet",
        phantom.pet,
        dims=("t", *layout.SPATIAL_DIMS),
        attrs={"units": "Bq/mL"},
        slabs=slabs,
    )
    for name, table in (("total", TOTAL), ("tissue", TISSUE), ("body", BODY)):
        attrs = {"labels": {str(k): v for k, v in table.items()}, "group": name}
        write_array(
            g,
            layout.SEG_PREFIX + name,
            phantom.maps[name],
            dims=layout.SPATIAL_DIMS,
            attrs=attrs,
            slabs=slabs,
        )
    for dim, o, s, n in zip(layout.SPATIAL_DIMS, phantom.origin, SPACING, SHAPE):
        write_array(g, dim, o + s * np.arange(n), dims=(dim,), attrs={"units": "mm"})
    write_array(g, "t", MIDS.copy(), dims=("t",), attrs={"units": "s"})
    write_array(g, "frame_start", STARTS.copy(), dims=("t",), attrs={"units": "s"})
    write_array(g, "frame_duration", DURATIONS.copy(), dims=("t",), attrs={"units": "s"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(root.store)


def write_dynamic_cohort(
    root: str | Path,
    subjects: tuple[str, ...] = ("sub-001", "sub-002"),
    *,
    noise: float = 0.0,
    slabs: int = 16,
    options: dict[str, Any] | None = None,
) -> dict[str, Phantom]:
    """A cohort of ``subjects`` at ``root`` (folder or URL); returns each subject's phantom."""
    url = str(root)
    phantoms = {}
    for i, subject in enumerate(subjects):
        ph = make_phantom(subject, seed=i, noise=noise)
        write_subject_store(
            join(url, layout.subject_store(subject)), ph, slabs=slabs, options=options
        )
        phantoms[subject] = ph
    fs, path = filesystem(join(url, layout.LABELS), options)
    with fs.open(path, "w") as f:
        f.write(dump_labels({"total": TOTAL, "tissue": TISSUE, "body": BODY}))
    rows = [
        {
            "subject": s,
            "store": layout.subject_store(s),
            "format_version": 1,
            "groups": "total,tissue,body",
        }
        for s in subjects
    ]
    update_index(url, rows, options)
    return phantoms


def voxel_ml() -> float:
    return math.prod(SPACING) / 1000.0
