"""A whole-body phantom in millimetres: +x the patient's left, +y anterior, +z head.

The renderer mirrors x onto RAS+ grids (+x the patient's right), so the liver lands on
the patient's right as in every real scan.

:func:`build_phantom` turns a subject's :class:`Anatomy` (height, BMI, arm position, rib and
vertebra variants, resected organs) into structures and the primitives that draw them, in
painting order: later primitives cover earlier ones. Sizes are millimetres for a 1750 mm
adult, scaled by height; heights are fractions ``f`` of standing height above the soles.
It is meant to look right in a viewer and to put every label roughly where it belongs, not
to be an atlas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from petzarr.cohort.layout import ENHANCE_GROUPS
from petzarr.synth.labels import MOOSE_LABELS
from petzarr.synth.shapes import (
    Box,
    Capsule,
    Clip,
    Ellipsoid,
    Mat,
    Shape,
    Tube,
    rotation,
)

__all__ = ["Anatomy", "Phantom", "Structure", "build_phantom"]

Point = tuple[float, float, float]
SIDES = (("left", 1.0), ("right", -1.0))  # the phantom's +x is the patient's left
_MODEL = {g.name: g.model for g in ENHANCE_GROUPS}
ORGANS, CARDIAC, MUSCLES = "organs", "cardiac", "muscles"
BONES, RIBS, SPINE = "peripheral_bones", "ribs", "vertebrae"


@dataclass(frozen=True)
class Anatomy:
    """What varies between phantom subjects.

    Attributes
    ----------
    height_mm, bmi : float
        Standing height and body-mass index; they scale the body and its fat.
    z_soles : float
        World z [mm] of the soles of the feet.
    arms_up : bool
        Arms raised above the head (common in oncology PET/CT) or down at the sides.
    rib13, lumbar6 : bool
        Anatomical variants: a 13th rib pair, a sixth lumbar vertebra.
    dropped : frozenset of str
        Label names not drawn at all (resected organs).
    seed : int
        Seed of the small per-organ position jitter.
    """

    height_mm: float = 1750.0
    bmi: float = 25.0
    z_soles: float = -1700.0
    arms_up: bool = False
    rib13: bool = False
    lumbar6: bool = False
    dropped: frozenset[str] = field(default_factory=frozenset)
    seed: int = 0


@dataclass(frozen=True)
class Structure:
    """One paintable structure: a tissue, and its label in at most one group."""

    name: str
    tissue: str
    group: str | None = None  # store group name ("organs", ...)
    label: int = 0


@dataclass(frozen=True)
class Phantom:
    """Structures (id = index + 1; 0 is outside air) and ``(id, shape)`` in paint order."""

    structures: tuple[Structure, ...]
    items: tuple[tuple[int, Shape], ...]


class _Builder:
    def __init__(self, dropped: frozenset[str]) -> None:
        self.structures: list[Structure] = []
        self.items: list[tuple[int, Shape]] = []
        self.ids: dict[tuple[str, str | None], int] = {}
        self.dropped = dropped
        self.names = {g: {n: i for i, n in MOOSE_LABELS[m].items()} for g, m in _MODEL.items()}

    def add(self, name: str, tissue: str, *shapes: Shape, group: str | None = None) -> None:
        if name in self.dropped:
            return
        key = (name, group)
        if key not in self.ids:
            label = self.names[group][name] if group else 0
            self.structures.append(Structure(name, tissue, group, label))
            self.ids[key] = len(self.structures)
        self.items.extend((self.ids[key], s) for s in shapes)

    def build(self) -> Phantom:
        return Phantom(tuple(self.structures), tuple(self.items))


def _chain(points: list[Point], r: float) -> list[Capsule]:
    return [Capsule(p, q, r) for p, q in pairwise(points)]


def build_phantom(anat: Anatomy) -> Phantom:
    """The phantom of one subject.

    Parameters
    ----------
    anat : Anatomy
        The subject's body.

    Returns
    -------
    Phantom
        Structures and the primitives that draw them, back to front.

    Examples
    --------
    >>> ph = build_phantom(Anatomy())
    >>> liver = next(s for s in ph.structures if s.name == "liver")
    >>> liver.group, liver.label, liver.tissue
    ('organs', 8, 'liver')
    """
    H, s = anat.height_mm, anat.height_mm / 1750.0
    rng = np.random.default_rng(anat.seed)
    fat = float(np.clip(6.0 + 2.0 * (anat.bmi - 18.0), 4.0, 45.0))  # subcutaneous fat, mm
    belly = float(np.clip(3.0 * (anat.bmi - 21.0), 0.0, 50.0))  # visceral growth, mm
    b = _Builder(anat.dropped)

    def Z(f: float) -> float:
        return anat.z_soles + f * H

    def P(x: float, y: float, f: float) -> Point:
        return (x * s, y * s, Z(f))

    def E(x: float, y: float, f: float, radii: Point, rot: Mat | None = None) -> Ellipsoid:
        return Ellipsoid(P(x, y, f), (radii[0] * s, radii[1] * s, radii[2] * s), rot)

    def C(p: Point, q: Point, r: float) -> Capsule:
        return Capsule(p, q, r * s)

    def T(rows: Sequence[tuple[float, ...]], grow: float = 0.0, sx: float = 1.0) -> Tube:
        """A tube from ``(f, cx, cy, a, b)`` rows, semi-axes grown by ``grow`` mm."""
        f, cx, cy, a, bb = zip(*rows)
        return Tube(
            tuple(Z(v) for v in f),
            tuple(sx * v * s for v in cx),
            tuple(v * s for v in cy),
            tuple(v * s + grow for v in a),
            tuple(v * s + grow for v in bb),
        )

    def jit() -> float:  # a few mm of per-organ position jitter
        return float(rng.normal(0.0, 4.0))

    # --- outline: fat first, then the lean body inside it ----------------------------------
    trunk = [  # f, cx, cy, lean a, lean b (the abdomen grows with visceral fat)
        (0.485, 0, 0, 150, 95),
        (0.53, 0, 0, 158, 100),
        (0.58, 0, 5, 138 + 0.6 * belly, 95 + belly),
        (0.62, 0, 8, 130 + 0.8 * belly, 95 + belly),
        (0.68, 0, 5, 135 + 0.4 * belly, 100 + 0.5 * belly),
        (0.74, 0, 0, 132, 102),
        (0.79, 0, -5, 140, 95),
        (0.815, 0, -10, 110, 75),
        (0.83, 0, -8, 55, 55),
    ]
    neck = [(0.81, 0, -8, 58, 58), (0.88, 0, -2, 55, 58)]
    leg = [  # f, |cx|, cy, lean a, lean b
        (0.035, 82, -15, 30, 30),
        (0.08, 80, -12, 30, 32),
        (0.22, 78, -10, 50, 55),
        (0.30, 80, 0, 48, 50),
        (0.40, 92, 0, 65, 70),
        (0.505, 95, 0, 80, 85),
    ]

    def arm(sx: float) -> list[Point]:
        """Shoulder, elbow, wrist and hand centre."""
        if anat.arms_up:
            pts = [(150, -10, 0.0), (120, -15, 300), (90, 0, 550), (85, 5, 640)]
            return [(sx * x * s, y * s, Z(0.80) + dz * s) for x, y, dz in pts]
        x = (132 + 35) * s + 1.6 * fat + 3  # beside the chest
        return [P(sx * x / s, y, f) for y, f in [(-5, 0.80), (-15, 0.625), (0, 0.485), (10, 0.44)]]

    arms = {side: arm(sx) for side, sx in SIDES}
    back = -102.0 * s - fat  # the table under the back; the body is painted over it
    b.add("table", "table", Box((-240.0, back - 22, -1e4), (240.0, back - 4, 1e4)))
    outer: list[Shape] = [T(trunk, fat), T(neck, 0.6 * fat)]
    inner: list[Shape] = [T(trunk), T(neck)]
    limbs_outer: list[Shape] = []
    limbs_inner: list[Shape] = []
    for side, sx in SIDES:
        buttock = (78 * s + fat, 45 * s + fat, 90 * s + fat)
        outer += [Ellipsoid(P(sx * 80, -88, 0.51), buttock)]
        limbs_outer += [T(leg, 0.8 * fat, sx)]
        limbs_inner += [T(leg, 0.0, sx)]
        shoulder, elbow, wrist, _ = arms[side]
        limbs_outer += [
            Capsule(shoulder, elbow, 35 * s + 0.6 * fat),
            Capsule(elbow, wrist, 28 * s + 0.5 * fat),
        ]
        limbs_inner += [C(shoulder, elbow, 35), C(elbow, wrist, 28)]
    # trunk and limbs apart (TotalSegmentator's body map tells them apart); fat first
    b.add("body_fat", "fat", *outer)
    b.add("limb_fat", "fat", *limbs_outer)
    b.add("body_muscle", "muscle", *inner)
    b.add("limb_muscle", "muscle", *limbs_inner)
    hands_feet = [Ellipsoid(arms[side][3], (15 * s, 45 * s, 95 * s)) for side, _ in SIDES]
    hands_feet += [E(sx * 88, 60, 0.022, (42, 125, 32)) for _, sx in SIDES]
    b.add("hands_feet", "soft", *hands_feet)
    head_c, head_r = (0.0, 5.0, anat.z_soles + H - 112.0), (72.0, 92.0, 112.0)
    b.add("scalp", "fat", Ellipsoid(head_c, head_r))
    b.add("skull", "bone", Ellipsoid(head_c, (head_r[0] - 5, head_r[1] - 5, head_r[2] - 5)))
    b.add("face", "soft", Ellipsoid(head_c, (head_r[0] - 13, head_r[1] - 13, head_r[2] - 13)))
    b.add("brain", "brain", Ellipsoid((0.0, 0.0, head_c[2] + 18), (60.0, 80.0, 78.0)))

    # --- body cavities ------------------------------------------------------------------------
    cavity = [
        (0.495, 0, 15, 100, 60),
        (0.55, 0, 10, 118 + 0.6 * belly, 75 + belly),
        (0.62, 0, 12, 112 + 0.8 * belly, 78 + belly),
        (0.69, 0, 8, 118 + 0.4 * belly, 82 + 0.5 * belly),
        (0.70, 0, 5, 110, 80),
    ]
    b.add("visceral", "visceral_fat", T(cavity))
    mediastinum = [(0.69, 0, -5, 112, 82), (0.76, 0, -5, 118, 85), (0.81, 0, -10, 70, 55)]
    b.add("mediastinum", "soft", T(mediastinum))
    loops = [(rng.uniform(-70, 70), rng.uniform(0, 50), rng.uniform(0.53, 0.60)) for _ in range(7)]
    b.add("bowel", "bowel", *(E(x, y, f, (28, 22, 30)) for x, y, f in loops))

    # --- muscles ---------------------------------------------------------------------------------
    autochthon = [
        (0.53, 32, -72, 22, 20),
        (0.60, 36, -70, 28, 28),
        (0.66, 33, -75, 24, 24),
        (0.74, 30, -82, 18, 16),
        (0.82, 24, -58, 14, 14),
    ]
    for side, sx in SIDES:
        b.add(f"autochthon_{side}", "muscle", T(autochthon, sx=sx), group=MUSCLES)
    for side, sx in SIDES:
        b.add(
            f"gluteus_maximus_{side}", "muscle", E(sx * 82, -88, 0.51, (70, 40, 85)), group=MUSCLES
        )
    for side, sx in SIDES:
        b.add(
            f"gluteus_medius_{side}", "muscle", E(sx * 118, -40, 0.565, (30, 50, 45)), group=MUSCLES
        )
    for side, sx in SIDES:
        b.add(
            f"gluteus_minimus_{side}", "muscle", E(sx * 112, -22, 0.55, (18, 40, 30)), group=MUSCLES
        )
    for side, sx in SIDES:
        p = [
            P(sx * 28, -32, 0.635),
            P(sx * 50, -25, 0.58),
            P(sx * 75, 5, 0.52),
            P(sx * 105, 0, 0.47),
        ]
        psoas = [C(p[0], p[1], 14), C(p[1], p[2], 20), C(p[2], p[3], 16)]
        b.add(f"iliopsoas_{side}", "muscle", *psoas, group=MUSCLES)

    # --- lungs: the whole lung as lower lobe, then the upper (and middle) lobe over it ------------
    for side, sx in SIDES:
        rows = [
            (0.685, 70, -15, 52, 70),
            (0.71, 72, -15, 62, 80),
            (0.75, 68, -15, 60, 75),
            (0.79, 55, -15, 42, 52),
            (0.815, 40, -15, 18, 22),
        ]
        lung = T(rows, sx=sx)
        b.add(f"lung_lower_lobe_{side}", "lung", lung, group=ORGANS)
        # the oblique fissure falls from back-top to front-bottom; the upper lobe lies in front
        # of it: (z - zf) + 0.9 (y - yf) >= 0  <=>  -0.9 y - z <= -0.9 yf - zf
        zf, yf = Z(0.745), -15 * s
        upper = Clip(lung, (0.0, -0.9, -1.0), -0.9 * yf - zf)
        b.add(f"lung_upper_lobe_{side}", "lung", upper, group=ORGANS)
        if side == "right":
            middle = Clip(upper, (0.0, 0.0, 1.0), Z(0.725))
            b.add("lung_middle_lobe_right", "lung", middle, group=ORGANS)
    b.add("trachea", "airway", C(P(0, 10, 0.865), P(0, 0, 0.765), 9))
    b.add("bronchi", "airway", *(C(P(0, 0, 0.765), P(sx * 38, -5, 0.752), 6) for _, sx in SIDES))

    # --- abdominal and neck organs ---------------------------------------------------------------
    def shifted(x: float, y: float, f: float, dx: float = 0.0, dy: float = 0.0) -> Point:
        return (x * s + dx, y * s + dy, Z(f))

    liver = [
        Ellipsoid(
            shifted(-50, 5, 0.662, jit(), jit()), (80 * s, 75 * s, 72 * s), rotation("y", -15)
        ),
        Ellipsoid(shifted(5, 35, 0.672, jit()), (50 * s, 35 * s, 35 * s)),
    ]
    b.add("liver", "liver", *liver, group=ORGANS)
    gall = Ellipsoid(shifted(-45, 50, 0.628, jit()), (14 * s, 14 * s, 32 * s), rotation("x", 25))
    b.add("gallbladder", "gallbladder", gall, group=ORGANS)
    spleen = Ellipsoid(
        shifted(95, -40, 0.665, jit(), jit()), (32 * s, 48 * s, 52 * s), rotation("z", 30)
    )
    b.add("spleen", "spleen", spleen, group=ORGANS)
    stomach = Ellipsoid(
        shifted(45, 30, 0.668, jit(), jit()), (45 * s, 35 * s, 58 * s), rotation("y", 20)
    )
    b.add("stomach", "stomach", stomach, group=ORGANS)
    pancreas = [P(-20, 10, 0.628), P(20, 0, 0.635), P(70, -25, 0.648)]
    b.add("pancreas", "pancreas", *_chain(pancreas, 13 * s), group=ORGANS)
    for side, sx in SIDES:
        centre = shifted(sx * 72, -48, 0.612 if side == "left" else 0.600, jit(), jit())
        kidney = Ellipsoid(centre, (30 * s, 26 * s, 55 * s), rotation("z", sx * 20))
        b.add(f"kidney_{side}", "kidney", kidney, group=ORGANS)
    for side, sx in SIDES:
        b.add(f"adrenal_gland_{side}", "adrenal", E(sx * 48, -35, 0.650, (9, 14, 18)), group=ORGANS)
    fill = float(rng.uniform(0.7, 1.3)) ** (1 / 3)
    b.add("bladder", "bladder", E(0, 45, 0.505, (42 * fill, 35 * fill, 35 * fill)), group=ORGANS)
    for side, sx in SIDES:
        b.add(f"thyroid_{side}", "thyroid", E(sx * 17, 18, 0.838, (9, 9, 22)), group=ORGANS)

    # --- heart and vessels -----------------------------------------------------------------------
    hc = shifted(20, 35, 0.715, jit(), jit())
    hrot = rotation("z", 30)

    def at(dx: float, dy: float, dz: float) -> Point:  # relative to the heart's centre
        return (hc[0] + dx * s, hc[1] + dy * s, hc[2] + dz * s)

    def chamber(dx: float, dy: float, dz: float, radii: Point, rot: Mat | None = None) -> Ellipsoid:
        return Ellipsoid(at(dx, dy, dz), (radii[0] * s, radii[1] * s, radii[2] * s), rot)

    b.add("heart_myocardium", "myocardium", chamber(0, 0, 0, (62, 52, 60), hrot), group=CARDIAC)
    b.add("heart_ventricle_left", "blood", chamber(25, 5, -10, (26, 22, 33), hrot), group=CARDIAC)
    b.add(
        "heart_ventricle_right", "blood", chamber(-15, 25, -12, (30, 16, 30), hrot), group=CARDIAC
    )
    b.add("heart_atrium_left", "blood", chamber(5, -30, 22, (28, 16, 18)), group=CARDIAC)
    b.add("heart_atrium_right", "blood", chamber(-38, -5, 12, (20, 22, 26)), group=CARDIAC)
    pa = [at(-5, 40, 35), P(0, 5, 0.765)]
    branches = [C(pa[1], P(sx * 55, -10, 0.758), 9) for _, sx in SIDES]
    b.add("pulmonary_artery", "blood", *_chain(pa, 13 * s), *branches, group=CARDIAC)
    # The aorta: the root in the heart, the ascending aorta up on the right in front, the arch
    # back and to the left over the pulmonary artery, the descending aorta down beside the
    # spine and in front of it below the diaphragm, to the bifurcation. Axial slices cut it in
    # one piece at the arch, two (ascending in front, descending behind) below it down to the
    # root, then one: the topology hedyPET's aorta segments are found by.
    bifurcation = P(8, -5, 0.585)
    for side, sx in SIDES:  # painted first: the aorta's end stays whole
        b.add(
            f"iliac_artery_{side}",
            "blood",
            C(bifurcation, P(sx * 76, 20, 0.515), 6.5),
            group=CARDIAC,
        )
    ascending = [at(-15, 0, 30), P(-10, 30, 0.768)]
    arch = [ascending[-1], P(8, 2, 0.790), P(24, -26, 0.776)]
    thoracic = [arch[-1], P(24, -30, 0.72), P(14, -20, 0.66)]
    aorta = [
        *_chain(ascending, 15 * s),
        *_chain(arch, 13 * s),
        *_chain(thoracic, 12 * s),
        C(thoracic[-1], bifurcation, 10.5),
    ]
    b.add("aorta", "blood", *aorta, group=CARDIAC)
    ivc = [P(-18, -15, 0.58), P(-25, 0, 0.69), at(-38, -5, 0)]
    b.add("inferior_vena_cava", "blood", *_chain(ivc, 11 * s), group=CARDIAC)
    portal = [P(70, -20, 0.655), P(0, 5, 0.645), P(-45, 10, 0.655)]
    b.add("portal_splenic_vein", "blood", *_chain(portal, 6.5 * s), group=CARDIAC)
    for side, sx in SIDES:
        b.add(f"iliac_vena_{side}", "blood", C(ivc[0], P(sx * 70, 8, 0.515), 7.5), group=CARDIAC)

    # --- spine: C1 under the skull down to the sacrum; ribs hang on the thoracic vertebrae ------
    n_lumbar = 6 if anat.lumbar6 else 5
    levels = [(f"C{i}", 16.0, 12.0, 10.0, -25.0) for i in range(1, 8)]
    levels += [(f"T{i}", 23.0, 15 + i * 0.5, 13 + i * 0.35, -55.0) for i in range(1, 13)]
    levels += [(f"L{i}", 165.0 / n_lumbar, 23.0, 18.0, -40.0) for i in range(1, n_lumbar + 1)]
    top = Z(0.872)
    rib_z: dict[int, float] = {}
    for name, height, ra, rb, cy in levels:
        hgt = height * s
        bottom, zm = top - hgt, top - hgt / 2
        yc, back_y = cy * s, (cy - rb) * s
        body = Tube(
            (bottom + 0.1 * hgt, top - 0.1 * hgt),
            (0.0, 0.0),
            (yc, yc),
            (ra * s,) * 2,
            (rb * s,) * 2,
        )
        spinous = C((0.0, back_y - 8 * s, zm), (0.0, back_y - 32 * s, zm - 0.4 * hgt), 4.5)
        transverse = C(
            (-(ra + 14) * s, back_y - 6 * s, zm), ((ra + 14) * s, back_y - 6 * s, zm), 4.5
        )
        b.add(f"vertebra_{name}", "spine", body, spinous, transverse, group=SPINE)
        if name.startswith("T"):
            rib_z[int(name[1:])] = zm
        top = bottom
    if anat.rib13:
        rib_z[13] = rib_z[12] - 26 * s
    sacrum = Tube(
        (top - 95 * s, top - 40 * s, top),
        (0.0, 0.0, 0.0),
        (-85 * s, -70 * s, -55 * s),
        (15 * s, 40 * s, 48 * s),
        (10 * s, 18 * s, 22 * s),
    )
    b.add("sacrum", "spine", sacrum, group=SPINE)

    rib_shape = {  # k: semi-axes of the rib's ellipse (lateral, AP) and how far round it runs
        1: (60, 45, 2.4), 2: (85, 60, 2.5), 3: (105, 70, 2.6), 4: (118, 78, 2.6), 5: (125, 82, 2.6),
        6: (128, 85, 2.6), 7: (128, 86, 2.5), 8: (126, 85, 2.3), 9: (122, 82, 2.2),
        10: (116, 78, 2.1), 11: (108, 72, 1.7), 12: (95, 65, 1.3), 13: (80, 55, 1.0),
    }  # fmt: skip
    for side, sx in SIDES:
        for k, zk in rib_z.items():
            ra, rb, th_end = rib_shape[k]
            pts = [  # from beside the vertebra round the side, dropping towards the front
                (
                    sx * ra * s * math.sin(t),
                    (-5 - rb * math.cos(t)) * s,
                    zk - 27.5 * s * (1 - math.cos(t)),
                )
                for t in np.linspace(0.25, th_end, 6)
            ]
            b.add(f"rib_{side}_{k}", "bone", *_chain(pts, 6 * s), group=RIBS)
    b.add("sternum", "bone", T([(0.70, 0, 85, 14, 7), (0.80, 0, 82, 20, 8)]), group=RIBS)

    # --- pelvis and legs -------------------------------------------------------------------------
    for side, sx in SIDES:
        wing = E(sx * 95, -25, 0.575, (14, 68, 52), rotation("z", -sx * 35))
        socket = E(sx * 90, 0, 0.515, (30, 38, 42))
        ramus = C(P(sx * 80, 25, 0.505), P(sx * 12, 55, 0.50), 10)
        ischium = E(sx * 60, -40, 0.49, (18, 22, 28))
        b.add(f"hip_{side}", "spine", wing, socket, ramus, ischium, group=SPINE)
    for side, sx in SIDES:
        femur: list[Shape] = [
            E(sx * 90, 0, 0.515, (23, 23, 23)),  # head
            C(P(sx * 90, 0, 0.515), P(sx * 125, -5, 0.49), 15),  # neck
            E(sx * 135, -10, 0.495, (18, 22, 25)),  # greater trochanter
            C(P(sx * 125, -5, 0.485), P(sx * 80, 5, 0.30), 14),  # shaft
            E(sx * 78, 0, 0.29, (40, 30, 25)),  # condyles
        ]
        b.add(f"femur_{side}", "bone", *femur, group=BONES)
        b.add(f"patella_{side}", "bone", E(sx * 80, 42, 0.29, (22, 9, 24)), group=BONES)
        tibia: list[Shape] = [
            E(sx * 78, 0, 0.272, (38, 28, 14)),
            C(P(sx * 78, 5, 0.27), P(sx * 82, 0, 0.045), 15),
        ]
        b.add(f"tibia_{side}", "bone", *tibia, group=BONES)
        fibula = C(P(sx * 108, -18, 0.265), P(sx * 105, -12, 0.04), 7)
        b.add(f"fibula_{side}", "bone", fibula, group=BONES)
        b.add(f"tarsal_{side}", "bone", E(sx * 85, 10, 0.03, (25, 45, 22)), group=BONES)
        b.add(f"metatarsal_{side}", "bone", E(sx * 88, 85, 0.018, (28, 38, 10)), group=BONES)
        b.add(f"toes_{side}", "bone", E(sx * 90, 150, 0.012, (30, 22, 9)), group=BONES)

    # --- shoulder girdle and arms ----------------------------------------------------------------
    for side, sx in SIDES:
        clavicle = C(P(sx * 15, 55, 0.81), P(sx * 150, -5, 0.815), 8)
        b.add(f"clavicle_{side}", "bone", clavicle, group=BONES)
        scapula = E(sx * 80, -70, 0.765, (42, 7, 65), rotation("z", sx * 30))
        b.add(f"scapula_{side}", "bone", scapula, group=BONES)
        shoulder, elbow, wrist, hand = arms[side]
        humerus: list[Shape] = [Ellipsoid(shoulder, (22 * s,) * 3), C(shoulder, elbow, 12)]
        b.add(f"humerus_{side}", "bone", *humerus, group=BONES)
        ex, ey, ez = elbow
        wx, wy, wz = wrist
        b.add(
            f"radius_{side}",
            "bone",
            C((ex, ey + 12 * s, ez), (wx, wy + 12 * s, wz), 8),
            group=BONES,
        )
        b.add(
            f"ulna_{side}", "bone", C((ex, ey - 12 * s, ez), (wx, wy - 10 * s, wz), 7), group=BONES
        )
        sign = math.copysign(1.0, hand[2] - wz)  # +1 when the hand is above the wrist
        hand_bones = [("carpal", 20, (12, 25, 15)), ("metacarpal", 65, (9, 30, 32))]
        for part, d, (rx, ry, rz) in [*hand_bones, ("fingers", 140, (9, 30, 42))]:
            centre = (wx, wy, wz + sign * d * s)
            b.add(
                f"{part}_{side}", "bone", Ellipsoid(centre, (rx * s, ry * s, rz * s)), group=BONES
            )
    return b.build()
