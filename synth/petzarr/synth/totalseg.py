"""TotalSegmentator label tables of the hedyPET layout, and which phantom structure is which.

Sources: TotalSegmentator v2's class map (``totalsegmentator/map_to_binary.py`` in
github.com/wasserth/TotalSegmentator: tasks ``total``, ``tissue_types`` and ``body``), and
hedyPET's published readouts (github.com/DEPICT-RH/hedyPET ``readouts/``), whose ``ts_total``
table has the same 117 ids and names. hedyPET's own tables spell two classes differently:
``visceral_fat`` for ``torso_fat`` (tissue 2) and ``trunk``/``extremeties`` for
``body_trunc``/``body_extremities``; we write TotalSegmentator's names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

__all__ = [
    "BODY_LABELS",
    "EXTREMITIES",
    "HEDYPET_TABLES",
    "TISSUE_LABELS",
    "TISSUE_TYPE_OF",
    "TOTAL_LABELS",
    "total_id",
    "total_name",
    "write_label_table",
]


def _numbered(*names: str, start: int = 1) -> dict[int, str]:
    return {i: n for i, n in enumerate(names, start=start)}


#: TotalSegmentator v2 ``total``: 117 classes (``aorta`` is 52).
TOTAL_LABELS: Final[dict[int, str]] = _numbered(
    "spleen",
    "kidney_right",
    "kidney_left",
    "gallbladder",
    "liver",
    "stomach",
    "pancreas",
    "adrenal_gland_right",
    "adrenal_gland_left",
    "lung_upper_lobe_left",
    "lung_lower_lobe_left",
    "lung_upper_lobe_right",
    "lung_middle_lobe_right",
    "lung_lower_lobe_right",
    "esophagus",
    "trachea",
    "thyroid_gland",
    "small_bowel",
    "duodenum",
    "colon",
    "urinary_bladder",
    "prostate",
    "kidney_cyst_left",
    "kidney_cyst_right",
    "sacrum",
    "vertebrae_S1",
    *(f"vertebrae_L{i}" for i in range(5, 0, -1)),
    *(f"vertebrae_T{i}" for i in range(12, 0, -1)),
    *(f"vertebrae_C{i}" for i in range(7, 0, -1)),
    "heart",
    "aorta",
    "pulmonary_vein",
    "brachiocephalic_trunk",
    "subclavian_artery_right",
    "subclavian_artery_left",
    "common_carotid_artery_right",
    "common_carotid_artery_left",
    "brachiocephalic_vein_left",
    "brachiocephalic_vein_right",
    "atrial_appendage_left",
    "superior_vena_cava",
    "inferior_vena_cava",
    "portal_vein_and_splenic_vein",
    "iliac_artery_left",
    "iliac_artery_right",
    "iliac_vena_left",
    "iliac_vena_right",
    "humerus_left",
    "humerus_right",
    "scapula_left",
    "scapula_right",
    "clavicula_left",
    "clavicula_right",
    "femur_left",
    "femur_right",
    "hip_left",
    "hip_right",
    "spinal_cord",
    "gluteus_maximus_left",
    "gluteus_maximus_right",
    "gluteus_medius_left",
    "gluteus_medius_right",
    "gluteus_minimus_left",
    "gluteus_minimus_right",
    "autochthon_left",
    "autochthon_right",
    "iliopsoas_left",
    "iliopsoas_right",
    "brain",
    "skull",
    *(f"rib_left_{i}" for i in range(1, 13)),
    *(f"rib_right_{i}" for i in range(1, 13)),
    "sternum",
    "costal_cartilages",
)
#: TotalSegmentator ``tissue_types``.
TISSUE_LABELS: Final[dict[int, str]] = _numbered("subcutaneous_fat", "torso_fat", "skeletal_muscle")
#: TotalSegmentator ``body``.
BODY_LABELS: Final[dict[int, str]] = _numbered("body_trunc", "body_extremities")
#: hedyPET's three TotalSegmentator maps: ``seg-<group>`` -> table.
HEDYPET_TABLES: Final[dict[str, dict[int, str]]] = {
    "total": TOTAL_LABELS,
    "tissue": TISSUE_LABELS,
    "body": BODY_LABELS,
}

# Phantom structure names (MOOSE's, see petzarr.synth.anatomy) whose TotalSegmentator
# name differs; every other structure named like a total class is that class.
_RENAMED = {
    "bladder": "urinary_bladder",
    "thyroid_left": "thyroid_gland",
    "thyroid_right": "thyroid_gland",
    "bowel": "small_bowel",
    "heart_myocardium": "heart",
    "heart_atrium_left": "heart",
    "heart_atrium_right": "heart",
    "heart_ventricle_left": "heart",
    "heart_ventricle_right": "heart",
    "portal_splenic_vein": "portal_vein_and_splenic_vein",
    "clavicle_left": "clavicula_left",
    "clavicle_right": "clavicula_right",
    "vertebra_L6": "vertebrae_S1",  # a sixth lumbar vertebra is a lumbarised S1
    **{f"vertebra_{p}{i}": f"vertebrae_{p}{i}" for p, n in (("C", 7), ("T", 12), ("L", 5))
       for i in range(1, n + 1)},
}  # fmt: skip
_TOTAL_ID = {n: i for i, n in TOTAL_LABELS.items()}


def total_name(structure: str) -> str | None:
    """The ``total`` class a phantom structure belongs to, or None (the pulmonary artery,
    a 13th rib, the forearms and lower legs, unlabelled tissue are no ``total`` class).

    >>> total_name("bladder"), total_name("liver"), total_name("rib_left_13")
    ('urinary_bladder', 'liver', None)
    """
    name = _RENAMED.get(structure, structure)
    return name if name in _TOTAL_ID else None


def total_id(structure: str) -> int:
    """The ``total`` class id of a phantom structure, 0 if it is none."""
    name = total_name(structure)
    return _TOTAL_ID[name] if name else 0


#: phantom tissue -> ``tissue_types`` label.
TISSUE_TYPE_OF: Final[dict[str, int]] = {"fat": 1, "visceral_fat": 2, "muscle": 3}
#: phantom structures in the limbs (``body_extremities``); the rest of the body is trunk.
EXTREMITIES: Final[frozenset[str]] = frozenset(
    {"limb_fat", "limb_muscle", "hands_feet"}
    | {
        f"{bone}_{side}"
        for side in ("left", "right")
        for bone in (
            "humerus",
            "radius",
            "ulna",
            "carpal",
            "metacarpal",
            "fingers",
            "femur",
            "patella",
            "tibia",
            "fibula",
            "tarsal",
            "metatarsal",
            "toes",
        )
    }
)


def write_label_table(path: str | os.PathLike[str], table: Mapping[int, str]) -> None:
    """A BIDS ``dseg.tsv``: tab-separated ``index`` and ``name``, background not listed."""
    lines = ["index\tname", *(f"{i}\t{n}" for i, n in sorted(table.items()))]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
