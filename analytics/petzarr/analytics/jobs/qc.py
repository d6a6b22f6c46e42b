"""One subject's quality control: how far its PET sits from its CT labels, and a figure.

The offset is :func:`~petzarr.analytics.kernels.alignment.pet_offset` of the PET against
the hot organs its label maps name (on the PET grid). The figure
(:func:`~petzarr.analytics.figures.qc.qc_figure`) shows PET MIPs and a CT slice through
the liver with organ contours and the PET fused on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from petzarr.analytics.figures.qc import qc_figure
from petzarr.analytics.jobs.norms import subject_norms
from petzarr.analytics.kernels.alignment import pet_offset
from petzarr.analytics.tables.suv_norms import SUV
from petzarr.cohort import layout
from petzarr.cohort.storage import filesystem, join
from petzarr.cohort.subject import ImageGroup, open_subject

__all__ = ["FLAG_MM", "HOT_ORGANS", "hot_organ_masks", "subject_qc"]

#: An offset above this (mm) flags the subject: its organ statistics may mix in neighbours.
FLAG_MM = 10.0

#: Label names of organs with high uptake in FDG PET whose masks anchor the alignment
#: (MOOSE/ENHANCE and TotalSegmentator names).
HOT_ORGANS = ("bladder", "urinary_bladder", "kidney_left", "kidney_right", "liver",
              "heart", "heart_myocardium", "brain")  # fmt: skip


def hot_organ_masks(group: ImageGroup) -> dict[str, np.ndarray]:
    """Boolean masks of the :data:`HOT_ORGANS` a group's label maps hold, by name."""
    masks: dict[str, np.ndarray] = {}
    for name in group.map_names:
        wanted = {k: n for k, n in group.label_names(name).items() if n in HOT_ORGANS}
        if not wanted:
            continue
        labels = np.asarray(group.label_map(name)[...])
        for k, organ in wanted.items():
            mask = labels == k
            if mask.sum() >= 8 and organ not in masks:
                masks[organ] = mask
    return masks


def subject_qc(
    store: str,
    *,
    out_dir: str,
    flag_mm: float = FLAG_MM,
    index_row: Mapping[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
    out_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The QC row of one subject, and its figure written to ``out_dir/<subject>.png``.

    Columns: ``Subject``, ``PET-CT Offset [mm]``, ``Offset z [mm]``, ``Offset y [mm]``,
    ``Offset x [mm]`` (RAS+: the PET's content lies this far towards superior, anterior,
    right of its labels), ``Flagged`` (offset above ``flag_mm``), ``Reason``, ``Organs``
    (those the estimate used), ``Figure``.
    """
    subject = open_subject(store, storage_options=storage_options)
    pet = subject.group(layout.PET_GROUP)
    norms = subject_norms(subject, index_row=index_row)
    units = str(pet.image.attrs.get("units", "Bq/mL"))
    to_bq = float(norms.get("PET to Bq/mL", np.nan))  # NaN: counts, not activity
    row: dict[str, Any] = {"Subject": subject.subject}
    masks = hot_organ_masks(pet)
    values = np.asarray(pet.image[...], np.float32)
    if not np.isfinite(to_bq):
        reason = f"PET in {units}, not Bq/mL: the uptake pattern is not checked"
        offset = None
    elif not masks:
        reason = f"no hot organ labelled ({', '.join(HOT_ORGANS[:5])}, ...): nothing to align"
        offset = None
    else:
        offset = pet_offset(values, list(masks.values()), pet.spacing_mm)
        flagged = offset.norm_mm > flag_mm
        reason = (
            f"PET displaced {offset.norm_mm:.1f} mm from its CT labels (> {flag_mm:g} mm): "
            "organ statistics may mix in neighbouring tissue"
            if flagged
            else ""
        )
    mm = offset.mm if offset else (np.nan, np.nan, np.nan)
    row |= {
        "PET-CT Offset [mm]": offset.norm_mm if offset else np.nan,
        "Offset z [mm]": mm[0],
        "Offset y [mm]": mm[1],
        "Offset x [mm]": mm[2],
        "Flagged": bool(offset is not None and offset.norm_mm > flag_mm),
        "Reason": reason,
        "Organs": ", ".join(sorted(masks)),
    }
    suv = float(norms.get(SUV, np.nan)) / to_bq  # stored units per SUV
    liver = masks.get("liver")  # the figure's axial slice: through the liver's middle
    focus = None
    if liver is not None:
        focus = float(pet.grid.coords()["z"][int(np.argwhere(liver)[:, 0].mean())])
    figure = qc_figure(subject, values, row, per_suv=suv, units=units, focus_z_mm=focus)
    path = join(out_dir, f"{subject.subject}.png")
    fs, where = filesystem(path, out_options)
    with fs.open(where, "wb") as f:
        f.write(figure)
    row["Figure"] = f"{subject.subject}.png"
    return row
