"""The explorer's figures: values by group, the axial CT/PET slice with contours, a
subject's TAC and Patlak plot (matplotlib, in mm and physical units), and the QC table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import panel as pn
from matplotlib.figure import Figure

from petzarr.analytics.explore.tables import UNITS, Kinetics
from petzarr.analytics.explore.volumes import SubjectVolumes
from petzarr.analytics.figures.kinetics import patlak_axes, tac_axes
from petzarr.analytics.figures.views import extent
from petzarr.analytics.tables.groups import group_bands
from petzarr.analytics.tables.label_stats import TASK_NAMES

MAP_OF_TASK = {task: name for name, task in TASK_NAMES.items()}
WINDOWS = {"soft tissue W400 L40": (400, 40), "lung W1500 L-600": (1500, -600),
           "bone W1800 L400": (1800, 400)}  # fmt: skip
DPI = 96


def figure_pane(bound: Any, css: str) -> pn.pane.Matplotlib:
    return pn.pane.Matplotlib(bound, interactive=False, dpi=DPI, tight=False,
                              css_classes=[css], format="png")  # fmt: skip


def values_figure(table: pd.DataFrame, value: str, what: str, flagged: set[str]) -> Figure:
    """Points per subject, by sex and age group and all together; mean, CI, PI per group."""
    table = table[table[value].notna()]  # a subject without this value is not counted
    table = pd.concat([table.assign(Group="all"),
                       table.assign(Group=table["Sex"] + " " + table["Age Group"])])  # fmt: skip
    groups = ["all", *sorted(set(table["Group"]) - {"all"})]
    bands = group_bands(table, value, ["Group"]).set_index("Group")
    fig = Figure(figsize=(9.5, 4.6), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for x, group in enumerate(groups):
        rows = table[table["Group"] == group]
        jitter = np.linspace(-0.12, 0.12, len(rows)) if len(rows) > 1 else np.zeros(1)
        red = rows["Subject"].isin(flagged).to_numpy()
        ax.scatter(x + jitter[~red], rows[value][~red], s=18, color="0.35", zorder=3)
        ax.scatter(x + jitter[red], rows[value][red], s=26, color="tab:red", zorder=3,
                   label="QC flagged" if x == 0 and red.any() else None)  # fmt: skip
        if group in bands.index:
            b = bands.loc[group]
            ax.vlines(x + 0.25, b["PI Low"], b["PI High"], color="tab:blue", linewidth=1)
            ax.vlines(x + 0.25, b["CI Low"], b["CI High"], color="tab:blue", linewidth=5)
            ax.plot(x + 0.25, b["Mean"], "o", color="white", markeredgecolor="tab:blue")
    ax.set_xticks(range(len(groups)),
                  [f"{g}\nn={int((table['Group'] == g).sum())}" for g in groups])  # fmt: skip
    if (table[value].dropna() >= 0).all():  # Ki may be negative: never cut a subject off
        ax.set_ylim(bottom=0)
    ax.set(ylabel=f"{value} [{UNITS[value]}]", xlabel="sex, age group [years]",
           title=f"{value} of {what}: subjects (dots), group mean (o),\n95 % confidence "
           "interval of the mean (thick), 95 % prediction interval (thin)")  # fmt: skip
    if flagged & set(table["Subject"]):
        ax.legend(loc="upper right")
    return fig


def label_at(volumes: SubjectVolumes, subject: str, z_mm: float, task: str, x: float,
              y: float) -> str | None:  # fmt: skip
    """The name of the label of map ``task`` at ``(x, y)`` mm on the slice the axial view
    shows for ``z_mm`` (None: background or no such map)."""
    cz, cy, cx = (volumes.levels(subject)["ct"][1].grid.coords()[a] for a in "zyx")
    label_map = MAP_OF_TASK.get(task, task)
    seg = volumes.label_slice(subject, label_map, int(np.argmin(np.abs(cz - z_mm))))
    if seg is None:
        return None
    value = int(seg[np.argmin(np.abs(cy - y)), np.argmin(np.abs(cx - x))])
    names = {v: n for n, v in volumes.label_ids(subject, label_map).items()}
    return names.get(value)


def axial_figure(volumes: SubjectVolumes, subject: str, z_mm: float, window: tuple[int, int],
                  task: str, organ: str) -> Figure:  # fmt: skip
    """The CT slice nearest ``z_mm`` (window, level), the map's contours, the PET fused."""
    ct_grid = volumes.levels(subject)["ct"][1].grid
    cz, cy, cx = (ct_grid.coords()[a] for a in "zyx")
    k = int(np.argmin(np.abs(cz - z_mm)))
    width, level = window
    fig = Figure(figsize=(6.4, 6.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(volumes.slice("ct", subject, k), extent=extent(cx, cy), origin="lower", cmap="gray",
              vmin=level - width / 2, vmax=level + width / 2)  # fmt: skip
    pet = volumes.pet(subject)
    pz, py, px = (pet.grid.coords()[a] for a in "zyx")
    j = int(np.argmin(np.abs(pz - cz[k])))
    shown = volumes.slice("pet", subject, j) / pet.per_unit
    hot = np.ma.masked_less(np.nan_to_num(shown), 0.05 * pet.top)  # the CT shows through
    if abs(pz[j] - cz[k]) > pet.grid.spacing[0] / 2:  # beyond the PET's axial field of view
        hot = np.ma.masked_all(shown.shape)
    fused = ax.imshow(hot, extent=extent(px, py), origin="lower", cmap="hot", vmin=0,
                      vmax=pet.top, alpha=0.5)  # fmt: skip
    label_map = MAP_OF_TASK.get(task, task)  # hedyPET's task "ts_total" is map "total"
    seg = volumes.label_slice(subject, label_map, k)
    chosen = volumes.label_ids(subject, label_map).get(organ)
    if seg is not None:
        for v in np.unique(seg[seg > 0]):
            hit = v == chosen
            ax.contour(cx, cy, (seg == v).astype(np.float32), levels=[0.5],
                       colors="yellow" if hit else "cyan",
                       linewidths=2.2 if hit else 0.7)  # fmt: skip
    ax.set_xlim(cx[-1], cx[0])  # the patient's right on the image's left
    ax.set_ylim(cy[0], cy[-1])  # anterior up
    ax.set(title=f"CT z = {cz[k]:.0f} mm, {task} contours ({organ} yellow), PET fused\n"
           "click an organ to choose it",
           xlabel="x [mm]  (R | L)", ylabel="y [mm] (anterior up)")  # fmt: skip
    fig.colorbar(fused, ax=ax, label=f"PET {pet.unit}", shrink=0.7, location="bottom")
    return fig


def curves_figure(kin: Kinetics, subject: str, task: str, organ: str, erosion: int,
                     if_id: str, frames: int) -> Figure:  # fmt: skip
    """The organ's TAC with the input function, and its Patlak plot (with a fit to show)."""
    assert kin.tacs is not None
    t = kin.tacs
    tissue = t[(t["Subject"] == subject) & (t["Task"] == task) & (t["Label Name"] == organ)
               & (t["Erosion Iterations"] == erosion)]  # fmt: skip
    blood = kin.blood(if_id)
    blood = blood[blood["Subject"] == subject]
    fig = Figure(figsize=(12, 4), dpi=DPI, layout="constrained")
    tac_ax, patlak_ax = fig.subplots(1, 2)
    if tissue.empty or blood.empty:
        for ax in (tac_ax, patlak_ax):
            ax.set_axis_off()
        fig.suptitle(f"{subject}: no TAC of {organ} ({task}, erosion {erosion}) or no input "
                     f"function {if_id} in the tables{_erosions_note(t, erosion)}")  # fmt: skip
        return fig
    what = f"{subject}: {organ} ({task}), erosion {erosion}"
    tac_axes(tac_ax, tissue, blood, organ=organ, blood_name=if_id, title=f"{what}, TAC")
    fit = pd.DataFrame() if kin.patlak is None else kin.fits(if_id, frames)
    fit = fit[(fit["Subject"] == subject) & (fit["Task"] == task)
              & (fit["Label Name"] == organ) & (fit["Erosion Iterations"] == erosion)]  # fmt: skip
    if fit.empty:
        patlak_ax.set_axis_off()
        why = ("give --patlak (petzarr patlak's table)" if kin.patlak is None else
               f"none in the Patlak table{_erosions_note(kin.patlak, erosion)}")  # fmt: skip
        patlak_ax.set_title(f"no Patlak fit: {why}", wrap=True)
    else:
        patlak_axes(patlak_ax, tissue, blood, fit.iloc[0], organ=organ,
                    title=f"Patlak plot, {if_id}")  # fmt: skip
    return fig


def _erosions_note(table: pd.DataFrame, erosion: int) -> str:
    """Why a table has nothing at ``erosion``, when it has other erosions."""
    have = sorted(int(e) for e in table["Erosion Iterations"].unique())
    if erosion in have or not have:
        return ""
    return (
        f"\n(it has erosion {', '.join(map(str, have))} only: run its command with "
        f"--erosion {','.join(map(str, sorted({*have, erosion})))})"
    )


def qc_pane(qc: pd.DataFrame | None) -> Any:
    if qc is None:
        said = "no QC table: run `petzarr qc COHORT -o DIR`, then `petzarr explore COHORT --qc DIR`"
        return pn.pane.Markdown(said, css_classes=["petzarr-qc"])
    shown = qc[["Subject", "PET-CT Offset [mm]", "Flagged", "Reason"]].sort_values(
        ["Flagged", "PET-CT Offset [mm]"], ascending=False).round(1)  # fmt: skip
    return pn.pane.DataFrame(shown, index=False, css_classes=["petzarr-qc"])
