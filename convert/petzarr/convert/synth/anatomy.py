"""A whole-body phantom in world millimetres (RAS+: +x patient left, +y anterior, +z head).

:func:`build_phantom` turns a subject's :class:`Anatomy` (height, BMI, arm position, rib and
vertebra variants, removed organs) into structures and the primitives that draw them, in
painting order: later primitives cover earlier ones. Positions are fractions of standing
height above the soles (``f``), so the anatomy scales with the subject. It is meant to look
right in a viewer and to put every label roughly where it belongs, not to be an atlas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from petzarr.cohort.layout import ENHANCE_GROUPS
from petzarr.convert.synth.labels import MOOSE_LABELS
from petzarr.convert.synth.shapes import Box, Capsule, Clip, Ellipsoid, Shape, Tube, rotation

__all__ = ["Anatomy", "Phantom", "Structure", "build_phantom"]

_MODEL = {g.name: g.model for g in ENHANCE_GROUPS}
SIDES = (("left", 1.0), ("right", -1.0))  # RAS+: the patient's left is +x


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
        Seed of the small per-organ position and size jitter.
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
        self.names = {
            g: {n: i for i, n in MOOSE_LABELS[m].items()} for g, m in _MODEL.items()
        }

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


def _tube(rows: list[tuple[float, float, float, float, float]], grow: float = 0.0) -> Tube:
    """A :class:`Tube` from ``(z, cx, cy, a, b)`` rows, semi-axes grown by ``grow`` mm."""
    z, cx, cy, a, b = (tuple(float(v) for v in col) for col in zip(*rows))
    return Tube(z, cx, cy, tuple(v + grow for v in a), tuple(v + grow for v in b))


def _chain(points: list[tuple[float, float, float]], r: float) -> list[Capsule]:
    return [Capsule(p, q, r) for p, q in zip(points[:-1], points[1:])]


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

    def Z(f: float) -> float:
        return anat.z_soles + f * H

    def jit(scale: float = 1.0) -> float:  # a few mm of per-organ jitter
        return float(rng.normal(0.0, 4.0 * scale))

    fat = float(np.clip(6.0 + 2.0 * (anat.bmi - 18.0), 4.0, 45.0))  # subcutaneous fat, mm
    belly = float(np.clip(3.0 * (anat.bmi - 21.0), 0.0, 50.0))  # visceral growth, mm
    b = _Builder(anat.dropped)
    O, C, M, PB, R, V, BC = (
        "organs",
        "cardiac",
        "muscles",
        "peripheral_bones",
        "ribs",
        "vertebrae",
        "body_composition",
    )
    del BC  # body composition is derived from tissues, not drawn

    # --- outline: trunk, neck, head, legs, arms; fat first, then the lean body inside ----
    def trunk(extra: float) -> Tube:
        rows = [  # f, cx, cy, lean a, lean b (+ visceral growth over the abdomen)
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
        return _tube([(Z(f), cx, cy, a * s, bb * s) for f, cx, cy, a, bb in rows], extra)

    neck_rows = [(Z(0.81), 0, -8, 58 * s, 58 * s), (Z(0.88), 0, -2, 55 * s, 58 * s)]
    head_c = (0.0, 5.0, anat.z_soles + H - 112.0)
    head_r = (72.0, 92.0, 112.0)

    def leg(sx: float, extra: float) -> Tube:
        rows = [  # f, |cx|, cy, lean a, lean b
            (0.035, 82, -15, 30, 30),
            (0.08, 80, -12, 30, 32),
            (0.22, 78, -10, 50, 55),
            (0.30, 80, 0, 48, 50),
            (0.40, 92, 0, 65, 70),
            (0.505, 95, 0, 80, 85),
        ]
        rows_ = [(Z(f), sx * cx * s, cy * s, a * s, bb * s) for f, cx, cy, a, bb in rows]
        return _tube(rows_, extra)

    # arm joints: shoulder, elbow, wrist, then the hand centre
    def arm(sx: float) -> list[tuple[float, float, float]]:
        if anat.arms_up:
            pts = [(150, -10, 0.80 * H), (120, -15, 0.80 * H + 300 * s)]
            pts += [(90, 0, 0.80 * H + 550 * s), (85, 5, 0.80 * H + 640 * s)]
        else:
            x = 132 * s + fat + 35 * s + 0.6 * fat + 3
            pts = [(x, -5, 0.80 * H), (x, -15, 0.625 * H), (x, 0, 0.485 * H), (x, 10, 0.44 * H)]
        return [(sx * px, py, anat.z_soles + pz) for px, py, pz in pts]

    arms = {side: arm(sx) for side, sx in SIDES}
    back = -102.0 * s - fat  # the table under the back; the body is painted over it
    b.add("table", "table", Box((-240.0, back - 22, -1e4), (240.0, back - 4, 1e4)))
    outer: list[Shape] = [trunk(fat), _tube(neck_rows, 0.6 * fat)]
    outer += [Ellipsoid((sx * 80 * s, -88 * s, Z(0.51)), (78 * s + fat, 45 * s + fat, 90 * s + fat)) for _, sx in SIDES]
    for side, sx in SIDES:
        outer.append(leg(sx, 0.8 * fat))
        sh, el, wr, _hand = arms[side]
        outer += [Capsule(sh, el, 35 * s + 0.6 * fat), Capsule(el, wr, 28 * s + 0.5 * fat)]
    b.add("body_fat", "fat", *outer)
    inner: list[Shape] = [trunk(0.0), _tube(neck_rows)]
    for side, sx in SIDES:
        inner.append(leg(sx, 0.0))
        sh, el, wr, _hand = arms[side]
        inner += [Capsule(sh, el, 35 * s), Capsule(el, wr, 28 * s)]
    b.add("body_muscle", "muscle", *inner)
    hands_feet: list[Shape] = []
    for side, sx in SIDES:
        hand = arms[side][3]
        hands_feet.append(Ellipsoid(hand, (15 * s, 45 * s, 95 * s)))
        hands_feet.append(Ellipsoid((sx * 88 * s, 60 * s, Z(0.022)), (42 * s, 125 * s, 32 * s)))
    b.add("hands_feet", "soft", *hands_feet)
    b.add("scalp", "fat", Ellipsoid(head_c, head_r))
    b.add("skull", "bone", Ellipsoid(head_c, tuple(r - 5 for r in head_r)))  # type: ignore[arg-type]
    b.add("face", "soft", Ellipsoid(head_c, tuple(r - 13 for r in head_r)))  # type: ignore[arg-type]
    b.add("brain", "brain", Ellipsoid((0.0, 0.0, head_c[2] + 18), (60.0, 80.0, 78.0)))

    # --- body cavities --------------------------------------------------------------------
    cav_rows = [
        (0.495, 0, 15, 100, 60),
        (0.55, 0, 10, 118 + 0.6 * belly, 75 + belly),
        (0.62, 0, 12, 112 + 0.8 * belly, 78 + belly),
        (0.69, 0, 8, 118 + 0.4 * belly, 82 + 0.5 * belly),
        (0.70, 0, 5, 110, 80),
    ]
    b.add("visceral", "visceral_fat", _tube([(Z(f), cx, cy, a * s, bb * s) for f, cx, cy, a, bb in cav_rows]))
    b.add(
        "mediastinum",
        "soft",
        _tube([(Z(f), 0, cy * s, a * s, bb * s) for f, cy, a, bb in [(0.69, -5, 112, 82), (0.76, -5, 118, 85), (0.81, -10, 70, 55)]]),
    )
    bowel = [
        Ellipsoid((float(rng.uniform(-70, 70)) * s, float(rng.uniform(0, 50)) * s, Z(float(rng.uniform(0.53, 0.60)))), (28 * s, 22 * s, 30 * s))
        for _ in range(7)
    ]
    b.add("bowel", "bowel", *bowel)

    # --- muscles ---------------------------------------------------------------------------
    for side, sx in SIDES:
        auto = [(0.53, 32, -72, 22, 20), (0.60, 36, -70, 28, 28), (0.66, 33, -75, 24, 24), (0.74, 30, -82, 18, 16), (0.82, 24, -58, 14, 14)]
        b.add(f"autochthon_{side}", "muscle", _tube([(Z(f), sx * cx * s, cy * s, a * s, bb * s) for f, cx, cy, a, bb in auto]), group=M)
    for side, sx in SIDES:
        b.add(f"gluteus_maximus_{side}", "muscle", Ellipsoid((sx * 82 * s, -88 * s, Z(0.51)), (70 * s, 40 * s, 85 * s)), group=M)
    for side, sx in SIDES:
        b.add(f"gluteus_medius_{side}", "muscle", Ellipsoid((sx * 118 * s, -40 * s, Z(0.565)), (30 * s, 50 * s, 45 * s)), group=M)
    for side, sx in SIDES:
        b.add(f"gluteus_minimus_{side}", "muscle", Ellipsoid((sx * 112 * s, -22 * s, Z(0.55)), (18 * s, 40 * s, 30 * s)), group=M)
    for side, sx in SIDES:
        pts = [(sx * 28 * s, -32 * s, Z(0.635)), (sx * 50 * s, -25 * s, Z(0.58)), (sx * 75 * s, 5 * s, Z(0.52)), (sx * 105 * s, 0.0, Z(0.47))]
        caps = [Capsule(pts[0], pts[1], 14 * s), Capsule(pts[1], pts[2], 20 * s), Capsule(pts[2], pts[3], 16 * s)]
        b.add(f"iliopsoas_{side}", "muscle", *caps, group=M)

    # --- lungs: whole lung as lower lobe, then the oblique fissure's upper part, then middle
    for side, sx in SIDES:
        rows = [(0.685, 70, -15, 52, 70), (0.71, 72, -15, 62, 80), (0.75, 68, -15, 60, 75), (0.79, 55, -15, 42, 52), (0.815, 40, -15, 18, 22)]
        lung = _tube([(Z(f), sx * cx * s, cy * s, a * s, bb * s) for f, cx, cy, a, bb in rows])
        b.add(f"lung_lower_lobe_{side}", "lung", lung, group=O)
        # the oblique fissure falls from back-top to front-bottom; the upper lobe is in front
        # of it: (z - zf) + 0.9 (y - yf) >= 0  <=>  -0.9 y - z <= -0.9 yf - zf
        zf, yf = Z(0.745), -15 * s
        upper = Clip(lung, (0.0, -0.9, -1.0), -0.9 * yf - zf)
        if side == "right":
            b.add("lung_upper_lobe_right", "lung", upper, group=O)
            b.add("lung_middle_lobe_right", "lung", Clip(upper, (0.0, 0.0, 1.0), Z(0.725)), group=O)
        else:
            b.add("lung_upper_lobe_left", "lung", upper, group=O)
    b.add("trachea", "airway", Capsule((0.0, 10 * s, Z(0.865)), (0.0, 0.0, Z(0.765)), 9 * s))
    b.add("bronchi", "airway", *(Capsule((0.0, 0.0, Z(0.765)), (sx * 38 * s, -5 * s, Z(0.752)), 6 * s) for _, sx in SIDES))

    # --- abdominal organs -------------------------------------------------------------------
    b.add(
        "liver",
        "liver",
        Ellipsoid((-50 * s + jit(), 5 * s + jit(), Z(0.662)), (80 * s, 75 * s, 72 * s), rotation("y", -15)),
        Ellipsoid((5 * s + jit(), 35 * s, Z(0.672)), (50 * s, 35 * s, 35 * s)),
        group=O,
    )
    b.add("gallbladder", "gallbladder", Ellipsoid((-45 * s + jit(), 50 * s, Z(0.628)), (14 * s, 14 * s, 32 * s), rotation("x", 25)), group=O)
    b.add("spleen", "spleen", Ellipsoid((95 * s + jit(), -40 * s + jit(), Z(0.665)), (32 * s, 48 * s, 52 * s), rotation("z", 30)), group=O)
    b.add("stomach", "stomach", Ellipsoid((45 * s + jit(), 30 * s + jit(), Z(0.668)), (45 * s, 35 * s, 58 * s), rotation("y", 20)), group=O)
    pancreas = [(-20 * s, 10 * s, Z(0.628)), (20 * s, 0.0, Z(0.635)), (70 * s, -25 * s, Z(0.648))]
    b.add("pancreas", "pancreas", *_chain(pancreas, 13 * s), group=O)
    for side, sx in SIDES:
        zk = Z(0.612) if side == "left" else Z(0.600)
        b.add(f"kidney_{side}", "kidney", Ellipsoid((sx * 72 * s + jit(), -48 * s + jit(), zk), (30 * s, 26 * s, 55 * s), rotation("z", sx * 20)), group=O)
    for side, sx in SIDES:
        b.add(f"adrenal_gland_{side}", "adrenal", Ellipsoid((sx * 48 * s, -35 * s, Z(0.650)), (9 * s, 14 * s, 18 * s)), group=O)
    fill = float(rng.uniform(0.7, 1.3)) ** (1 / 3)
    b.add("bladder", "bladder", Ellipsoid((0.0, 45 * s, Z(0.505)), (42 * s * fill, 35 * s * fill, 35 * s * fill)), group=O)
    for side, sx in SIDES:
        b.add(f"thyroid_{side}", "thyroid", Ellipsoid((sx * 17 * s, 18 * s, Z(0.838)), (9 * s, 9 * s, 22 * s)), group=O)

    # --- heart and vessels -------------------------------------------------------------------
    hc = (20 * s + jit(), 35 * s + jit(), Z(0.715))
    hrot = rotation("z", 30)

    def at(dx: float, dy: float, dz: float) -> tuple[float, float, float]:
        return (hc[0] + dx * s, hc[1] + dy * s, hc[2] + dz * s)

    b.add("heart_myocardium", "myocardium", Ellipsoid(hc, (62 * s, 52 * s, 60 * s), hrot), group=C)
    b.add("heart_ventricle_left", "blood", Ellipsoid(at(25, 5, -10), (26 * s, 22 * s, 33 * s), hrot), group=C)
    b.add("heart_ventricle_right", "blood", Ellipsoid(at(-15, 25, -12), (30 * s, 16 * s, 30 * s), hrot), group=C)
    b.add("heart_atrium_left", "blood", Ellipsoid(at(5, -30, 22), (28 * s, 16 * s, 18 * s)), group=C)
    b.add("heart_atrium_right", "blood", Ellipsoid(at(-38, -5, 12), (20 * s, 22 * s, 26 * s)), group=C)
    pa = [at(-5, 40, 35), (0.0, 5 * s, Z(0.765))]
    b.add(
        "pulmonary_artery",
        "blood",
        *_chain(pa, 13 * s),
        *(Capsule(pa[1], (sx * 55 * s, -10 * s, Z(0.758)), 9 * s) for _, sx in SIDES),
        group=C,
    )
    aorta = [at(5, 0, 40), (5 * s, 20 * s, Z(0.775)), (15 * s, -40 * s, Z(0.785)), (22 * s, -32 * s, Z(0.765)), (12 * s, -10 * s, Z(0.585))]
    b.add("aorta", "blood", *_chain(aorta[:3], 14 * s), *_chain(aorta[2:], 11.5 * s), group=C)
    ivc = [(-18 * s, -15 * s, Z(0.58)), (-25 * s, 0.0, Z(0.69)), at(-38, -5, 0)]
    b.add("inferior_vena_cava", "blood", *_chain(ivc, 11 * s), group=C)
    portal = [(70 * s, -20 * s, Z(0.655)), (0.0, 5 * s, Z(0.645)), (-45 * s, 10 * s, Z(0.655))]
    b.add("portal_splenic_vein", "blood", *_chain(portal, 6.5 * s), group=C)
    for side, sx in SIDES:
        b.add(f"iliac_vena_{side}", "blood", Capsule(ivc[0], (sx * 70 * s, 8 * s, Z(0.515)), 7.5 * s), group=C)
    for side, sx in SIDES:
        b.add(f"iliac_artery_{side}", "blood", Capsule(aorta[-1], (sx * 76 * s, 20 * s, Z(0.515)), 6.5 * s), group=C)

    # --- spine: C1 at the skull base down to the sacrum ---------------------------------------
    n_lumbar = 6 if anat.lumbar6 else 5
    levels = [(f"C{i}", 16.0, 12, 10, -25) for i in range(1, 8)]
    levels += [(f"T{i}", 23.0, 15 + i * 0.5, 13 + i * 0.35, -55) for i in range(1, 13)]
    levels += [(f"L{i}", 165.0 / n_lumbar, 23, 18, -40) for i in range(1, n_lumbar + 1)]
    top = Z(0.872)
    rib_z: dict[int, float] = {}
    for name, height, ra, rb, cy in levels:
        hgt, bottom = height * s, top - height * s
        yc = cy * s
        body = _tube([(bottom + 0.1 * hgt, 0.0, yc, ra * s, rb * s), (top - 0.1 * hgt, 0.0, yc, ra * s, rb * s)])
        zm = 0.5 * (top + bottom)
        back = yc - rb * s
        spinous = Capsule((0.0, back - 8 * s, zm), (0.0, back - 32 * s, zm - 0.4 * hgt), 4.5 * s)
        transverse = Capsule((-(ra + 14) * s, back - 6 * s, zm), ((ra + 14) * s, back - 6 * s, zm), 4.5 * s)
        b.add(f"vertebra_{name}", "spine", body, spinous, transverse, group=V)
        if name.startswith("T"):
            rib_z[int(name[1:])] = zm
        top = bottom
    if anat.rib13:
        rib_z[13] = rib_z[12] - 26 * s
    b.add(
        "sacrum",
        "spine",
        _tube([(top - 95 * s, 0.0, -85 * s, 15 * s, 10 * s), (top - 40 * s, 0.0, -70 * s, 40 * s, 18 * s), (top, 0.0, -55 * s, 48 * s, 22 * s)]),
        group=V,
    )

    # --- ribs and sternum ----------------------------------------------------------------------
    rib_shape = {  # k: lateral, AP semi-axis of the rib's ellipse, and how far round it runs
        1: (60, 45, 2.4), 2: (85, 60, 2.5), 3: (105, 70, 2.6), 4: (118, 78, 2.6), 5: (125, 82, 2.6),
        6: (128, 85, 2.6), 7: (128, 86, 2.5), 8: (126, 85, 2.3), 9: (122, 82, 2.2),
        10: (116, 78, 2.1), 11: (108, 72, 1.7), 12: (95, 65, 1.3), 13: (80, 55, 1.0),
    }  # fmt: skip
    for side, sx in SIDES:
        for k, zk in rib_z.items():
            ra, rb, th_end = rib_shape[k]
            thetas = np.linspace(0.25, th_end, 6)
            drop = 55 * s * (1 - np.cos(thetas)) / 2
            pts = [
                (sx * ra * s * math.sin(t), -5 * s - rb * s * math.cos(t), zk - d)
                for t, d in zip(thetas, drop)
            ]
            b.add(f"rib_{side}_{k}", "bone", *_chain(pts, 6 * s), group=R)
    b.add("sternum", "bone", _tube([(Z(0.70), 0.0, 85 * s, 14 * s, 7 * s), (Z(0.80), 0.0, 82 * s, 20 * s, 8 * s)]), group=R)

    # --- pelvis and legs -------------------------------------------------------------------------
    for side, sx in SIDES:
        wing = Ellipsoid((sx * 95 * s, -25 * s, Z(0.575)), (14 * s, 68 * s, 52 * s), rotation("z", -sx * 35))
        socket = Ellipsoid((sx * 90 * s, 0.0, Z(0.515)), (30 * s, 38 * s, 42 * s))
        ramus = Capsule((sx * 80 * s, 25 * s, Z(0.505)), (sx * 12 * s, 55 * s, Z(0.50)), 10 * s)
        ischium = Ellipsoid((sx * 60 * s, -40 * s, Z(0.49)), (18 * s, 22 * s, 28 * s))
        b.add(f"hip_{side}", "spine", wing, socket, ramus, ischium, group=V)
    for side, sx in SIDES:
        head = Ellipsoid((sx * 90 * s, 0.0, Z(0.515)), (23 * s, 23 * s, 23 * s))
        neck = Capsule((sx * 90 * s, 0.0, Z(0.515)), (sx * 125 * s, -5 * s, Z(0.49)), 15 * s)
        troch = Ellipsoid((sx * 135 * s, -10 * s, Z(0.495)), (18 * s, 22 * s, 25 * s))
        shaft = Capsule((sx * 125 * s, -5 * s, Z(0.485)), (sx * 80 * s, 5 * s, Z(0.30)), 14 * s)
        condyles = Ellipsoid((sx * 78 * s, 0.0, Z(0.29)), (40 * s, 30 * s, 25 * s))
        b.add(f"femur_{side}", "bone", head, neck, troch, shaft, condyles, group=PB)
        b.add(f"patella_{side}", "bone", Ellipsoid((sx * 80 * s, 42 * s, Z(0.29)), (22 * s, 9 * s, 24 * s)), group=PB)
        plateau = Ellipsoid((sx * 78 * s, 0.0, Z(0.272)), (38 * s, 28 * s, 14 * s))
        tibia = Capsule((sx * 78 * s, 5 * s, Z(0.27)), (sx * 82 * s, 0.0, Z(0.045)), 15 * s)
        b.add(f"tibia_{side}", "bone", plateau, tibia, group=PB)
        b.add(f"fibula_{side}", "bone", Capsule((sx * 108 * s, -18 * s, Z(0.265)), (sx * 105 * s, -12 * s, Z(0.04)), 7 * s), group=PB)
        b.add(f"tarsal_{side}", "bone", Ellipsoid((sx * 85 * s, 10 * s, Z(0.03)), (25 * s, 45 * s, 22 * s)), group=PB)
        b.add(f"metatarsal_{side}", "bone", Ellipsoid((sx * 88 * s, 85 * s, Z(0.018)), (28 * s, 38 * s, 10 * s)), group=PB)
        b.add(f"toes_{side}", "bone", Ellipsoid((sx * 90 * s, 150 * s, Z(0.012)), (30 * s, 22 * s, 9 * s)), group=PB)

    # --- shoulder girdle and arms -------------------------------------------------------------------
    for side, sx in SIDES:
        b.add(f"clavicle_{side}", "bone", Capsule((sx * 15 * s, 55 * s, Z(0.81)), (sx * 150 * s, -5 * s, Z(0.815)), 8 * s), group=PB)
        b.add(f"scapula_{side}", "bone", Ellipsoid((sx * 95 * s, -72 * s, Z(0.765)), (50 * s, 8 * s, 70 * s), rotation("z", sx * 15)), group=PB)
        sh, el, wr, hand = arms[side]
        b.add(f"humerus_{side}", "bone", Ellipsoid(sh, (22 * s, 22 * s, 22 * s)), Capsule(sh, el, 12 * s), group=PB)
        b.add(f"radius_{side}", "bone", Capsule((el[0], el[1] + 12 * s, el[2]), (wr[0], wr[1] + 12 * s, wr[2]), 8 * s), group=PB)
        b.add(f"ulna_{side}", "bone", Capsule((el[0], el[1] - 12 * s, el[2]), (wr[0], wr[1] - 10 * s, wr[2]), 7 * s), group=PB)
        down = math.copysign(1.0, hand[2] - wr[2])  # +1 when the hand is above the wrist

        def along(d: float, wr: tuple[float, float, float] = wr, down: float = down) -> tuple[float, float, float]:
            return (wr[0], wr[1], wr[2] + down * d * s)

        b.add(f"carpal_{side}", "bone", Ellipsoid(along(20), (12 * s, 25 * s, 15 * s)), group=PB)
        b.add(f"metacarpal_{side}", "bone", Ellipsoid(along(65), (9 * s, 30 * s, 32 * s)), group=PB)
        b.add(f"fingers_{side}", "bone", Ellipsoid(along(140), (9 * s, 30 * s, 42 * s)), group=PB)
    return b.build()
