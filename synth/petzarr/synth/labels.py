"""ENHANCE.PET 1.6k segmentation tables, ``{MOOSE model name: {id: name}}``.

Sources (the MOOSE repository as of its April 2026 data-card revision):

- the MOOSE README table of ``clin_ct_*`` models and ``moosez/mappings/moose_snomed_mapping.csv``
  (github.com/ENHANCE-PET/MOOSE) give every model's ids and names;
- the ENHANCE.PET 1.6k data card (``DATA_CARD.md`` in the same repository) gives each
  group's ``labels.json`` table: ``{"1": "heart_myocardium", ...}`` under the model name.
  Its "130 segmentations" are the seven tables *before* anonymisation. The current card
  leaves out Organs 4 (``brain``) and Peripheral-Bones 23 (``skull``): those voxels and
  names were removed, so the released ``labels.json`` has 128 entries with two gaps.
  The dataset's ``clin_ct_organs`` ends at 18 (``thyroid_right``); the ``trachea`` (19) of
  today's MOOSE model came later and is not in the dataset.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ENHANCE_LABELS", "MOOSE_LABELS", "N_CLASSES", "REMOVED_LABELS", "labels_json"]


def _numbered(*names: str) -> dict[int, str]:
    return {i: n for i, n in enumerate(names, start=1)}


def _sided(*stems: str) -> tuple[str, ...]:
    return tuple(f"{s}_{side}" for s in stems for side in ("left", "right"))


# The seven tables as the MOOSE models that made ENHANCE.PET define them (130 classes).
MOOSE_LABELS: Final[dict[str, dict[int, str]]] = {
    "clin_ct_body_composition": _numbered("skeletal_muscle", "subcutaneous_fat", "visceral_fat"),
    "clin_ct_cardiac": _numbered(
        "heart_myocardium",
        "heart_atrium_left",
        "heart_atrium_right",
        "heart_ventricle_left",
        "heart_ventricle_right",
        "aorta",
        "iliac_artery_left",
        "iliac_artery_right",
        "iliac_vena_left",
        "iliac_vena_right",
        "inferior_vena_cava",
        "portal_splenic_vein",
        "pulmonary_artery",
    ),
    "clin_ct_muscles": _numbered(
        *_sided("autochthon", "gluteus_maximus", "gluteus_medius", "gluteus_minimus", "iliopsoas")
    ),
    "clin_ct_organs": _numbered(
        "adrenal_gland_left",
        "adrenal_gland_right",
        "bladder",
        "brain",
        "gallbladder",
        "kidney_left",
        "kidney_right",
        "liver",
        "lung_lower_lobe_left",
        "lung_lower_lobe_right",
        "lung_middle_lobe_right",
        "lung_upper_lobe_left",
        "lung_upper_lobe_right",
        "pancreas",
        "spleen",
        "stomach",
        "thyroid_left",
        "thyroid_right",
    ),
    "clin_ct_peripheral_bones": _numbered(
        *_sided(
            "carpal",
            "clavicle",
            "femur",
            "fibula",
            "fingers",
            "humerus",
            "metacarpal",
            "metatarsal",
            "patella",
            "radius",
            "scapula",
        ),
        "skull",
        *_sided("tarsal", "tibia", "toes", "ulna"),
    ),
    "clin_ct_ribs": _numbered(
        *(f"rib_left_{i}" for i in range(1, 14)),
        *(f"rib_right_{i}" for i in range(1, 14)),
        "sternum",
    ),
    "clin_ct_vertebrae": _numbered(
        *(f"vertebra_C{i}" for i in range(1, 8)),
        *(f"vertebra_T{i}" for i in range(1, 13)),
        *(f"vertebra_L{i}" for i in range(1, 7)),
        "hip_left",
        "hip_right",
        "sacrum",
    ),
}

# Removed from the released data for anonymisation: the ids stay unused (gaps).
REMOVED_LABELS: Final[dict[str, dict[int, str]]] = {
    "clin_ct_organs": {4: "brain"},
    "clin_ct_peripheral_bones": {23: "skull"},
}

# The tables of the released dataset's labels.json (128 entries; ids keep their gaps).
ENHANCE_LABELS: Final[dict[str, dict[int, str]]] = {
    model: {i: n for i, n in table.items() if i not in REMOVED_LABELS.get(model, {})}
    for model, table in MOOSE_LABELS.items()
}

N_CLASSES: Final = sum(len(t) for t in MOOSE_LABELS.values())  # 130, as the data card counts


def labels_json() -> dict[str, dict[str, str]]:
    """The content of a synthetic cohort's ``labels.json``.

    Keyed by MOOSE model name, one ``{"id": "name"}`` table per group, as the ENHANCE.PET
    data card shows it.

    >>> tables = labels_json()
    >>> tables["clin_ct_cardiac"]["1"], "4" in tables["clin_ct_organs"]
    ('heart_myocardium', False)
    """
    return {m: {str(i): n for i, n in t.items()} for m, t in ENHANCE_LABELS.items()}
