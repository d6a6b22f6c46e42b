"""A subject's QC figure: PET MIPs, and a CT slice through the liver with organ contours
and the PET fused on top (see :mod:`petzarr.analytics.figures` for the conventions)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from petzarr.analytics.figures.views import coronal_mip, extent, sagittal_mip
from petzarr.cohort import layout
from petzarr.cohort.subject import SubjectStore

__all__ = ["qc_figure"]


def qc_figure(
    subject: SubjectStore,
    pet: np.ndarray,
    row: Mapping[str, Any],
    *,
    per_suv: float,
    units: str,
    focus_z_mm: float | None = None,
) -> bytes:
    """PNG bytes of the figure of one subject (``pet`` is its PET group's image).

    ``per_suv`` is the PET's value of SUV 1 (its SUV denominator in the stored units);
    NaN shows the stored ``units`` instead. The axial CT slice is the one nearest
    ``focus_z_mm`` (e.g. the liver's middle), else the middle of the CT.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    grid = subject.group(layout.PET_GROUP).grid
    suv = np.isfinite(per_suv) and per_suv > 0
    shown = np.nan_to_num(pet / per_suv if suv else pet, nan=0.0, posinf=0.0, neginf=0.0)
    label = "SUV" if suv else units
    top = float(np.percentile(shown, 99.9)) or 1.0

    fig, axes = plt.subplots(1, 3, figsize=(13, 6.2), width_ratios=[1, 1, 1.25])
    coronal, sagittal, axial = axes
    image = coronal_mip(coronal, shown, grid, vmax=top, title="PET coronal MIP")
    sagittal_mip(sagittal, shown, grid, vmax=top, title="PET sagittal MIP")
    fig.colorbar(image, ax=[coronal, sagittal], label=label, shrink=0.8, location="bottom")
    _fused_slice(axial, subject, shown, grid, top, label, focus_z_mm)

    offset = row.get("PET-CT Offset [mm]", np.nan)
    said = f"PET-CT offset {offset:.1f} mm" if np.isfinite(offset) else str(row.get("Reason"))
    flag = "  FLAGGED" if row.get("Flagged") else ""
    fig.suptitle(f"subject {subject.subject}: {said}{flag}", color="red" if flag else "black")
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80)
    plt.close(fig)
    return out.getvalue()


def _fused_slice(ax: Any, subject: SubjectStore, pet: np.ndarray, grid: Any, top: float,
                 label: str, focus_z_mm: float | None) -> None:  # fmt: skip
    """A CT axial slice (nearest ``focus_z_mm``), organ contours, the PET on top."""
    ct_group = subject.group(layout.CT_GROUP)
    ct_grid = ct_group.grid
    cz, cy, cx = (ct_grid.coords()[a] for a in ("z", "y", "x"))
    k = len(cz) // 2 if focus_z_mm is None else int(np.argmin(np.abs(cz - focus_z_mm)))
    names = ct_group.map_names
    # the map that names the organs: ENHANCE's organs, TotalSegmentator's total
    seg_name = next((n for n in ("organs", "total") if n in names), names[0] if names else None)
    seg = np.asarray(ct_group.label_map(seg_name)[k]) if seg_name else None  # one slice
    ct = np.asarray(ct_group.image[k], np.float32)
    ax.imshow(ct, extent=extent(cx, cy), origin="lower", cmap="gray", vmin=-160, vmax=240)
    pz = int(np.argmin(np.abs(grid.coords()["z"] - cz[k])))
    py, px = grid.coords()["y"], grid.coords()["x"]
    hot = np.ma.masked_less(pet[pz], 0.05 * top)
    fused = ax.imshow(
        hot, extent=extent(px, py), origin="lower", cmap="hot", vmin=0, vmax=top, alpha=0.55
    )
    if seg is not None:
        for value in np.unique(seg[seg > 0])[:12]:
            ax.contour(cx, cy, (seg == value).astype(float), levels=[0.5], linewidths=0.8,
                       colors="cyan")  # fmt: skip
    ax.set_xlim(cx[-1], cx[0])  # the patient's right on the image's left
    ax.set_ylim(cy[0], cy[-1])  # anterior up
    ax.set(title=f"CT z = {cz[k]:.0f} mm, organ contours, PET fused",
           xlabel="x [mm]  (R | L)", ylabel="y [mm] (anterior up)")  # fmt: skip
    ax.figure.colorbar(fused, ax=ax, label=f"PET {label}", shrink=0.8, location="bottom")
