"""The explorer's layout for one browser session: its widgets, and what each redraws."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn
from matplotlib.figure import Figure

from petzarr.analytics.explore.clickable import ClickableFigure
from petzarr.analytics.explore.tables import (
    KI,
    STATS_COLUMNS,
    VALUES,
    Kinetics,
    checked_stats,
    cohort_groups,
    computed_stats,
)
from petzarr.analytics.explore.views import (
    DPI,
    WINDOWS,
    axial_figure,
    curves_figure,
    figure_pane,
    label_at,
    qc_pane,
    values_figure,
)
from petzarr.analytics.explore.volumes import cohort_volumes
from petzarr.analytics.figures.kinetics import input_functions_axes
from petzarr.analytics.figures.views import coronal_mip
from petzarr.analytics.jobs.ki_map import DEFAULT_KI_FRAMES, DEFAULT_KI_INPUT_FUNCTION
from petzarr.cohort.errors import InvalidInputError


def make_app(
    cohort_url: str,
    *,
    storage_options: dict[str, Any] | None = None,
    stats: pd.DataFrame | None = None,
    qc: pd.DataFrame | None = None,
    kinetics: Kinetics | None = None,
    query: dict[str, str] | None = None,
) -> pn.Column:
    """The explorer's layout for one browser session (``stats`` None: computed now).

    ``query``: the link's ``tab`` and ``subject`` (default: the session's URL query).
    """
    volumes = cohort_volumes(cohort_url, storage_options)
    stats = checked_stats(computed_stats(cohort_url, storage_options) if stats is None else stats)
    kin = kinetics or Kinetics()
    people = cohort_groups(volumes.cohort.index)
    flagged: set[str] = set() if qc is None else set(qc.loc[qc["Flagged"], "Subject"])

    maps = sorted(stats["Task"].unique())
    map_w = pn.widgets.Select(
        label="Map", options=maps, value=_first(maps, "organs", "total", "ts_total")
    )
    organ_w = pn.widgets.Select(label="Organ", css_classes=["petzarr-organ"])
    values = [v for v in VALUES if v in stats and stats[v].notna().any()]
    values += [KI] if kin.patlak is not None else []
    value_w = pn.widgets.Select(label="Value", options=values, value=values[0])
    # which Patlak fits (input function, frames) Ki and the subject's plots show
    if_w = pn.widgets.Select(label="Input function", options=kin.input_function_ids,
                             value=_first(kin.input_function_ids, DEFAULT_KI_INPUT_FUNCTION),
                             visible=bool(kin.input_function_ids), width=380)  # fmt: skip
    frames_w = pn.widgets.Select(label="Patlak frames", options=kin.frames,
                                 value=_first(kin.frames, DEFAULT_KI_FRAMES),
                                 visible=bool(kin.frames), width=120)  # fmt: skip
    erosions = sorted(int(e) for e in stats["Erosion Iterations"].unique())
    erosion_w = pn.widgets.RadioButtonGroup(label="Erosion", options=erosions, value=erosions[0])

    def organs(event: Any = None) -> None:  # the organ list follows the map
        names = sorted(stats.loc[stats["Task"] == map_w.value, "Label Name"].unique())
        keep = organ_w.value if organ_w.value in names else _first(names, "liver")
        organ_w.param.update(options=names, value=keep)

    organs()
    map_w.param.watch(organs, "value")

    def cohort_figure(task: str, organ: str, value: str, erosion: int, if_id: str,
                      frames: int) -> Figure:  # fmt: skip
        table = kin.fits(if_id, frames) if value == KI else stats
        rows = table[(table["Task"] == task) & (table["Label Name"] == organ)
                     & (table["Erosion Iterations"] == erosion)]  # fmt: skip
        what = f"{organ} ({task}), erosion {erosion}"
        return values_figure(rows[["Subject", value]].merge(people, on="Subject"),
                              value, what, flagged)  # fmt: skip

    def blood_figure(if_id: str) -> Figure:
        fig = Figure(figsize=(9.5, 3.6), dpi=DPI, layout="constrained")
        early, late = fig.subplots(1, 2, width_ratios=[1, 2])
        blood = kin.blood(if_id)
        input_functions_axes(early, blood, flagged, title="the first 3 minutes")
        early.set_xlim(0, 3)
        input_functions_axes(late, blood, flagged, title=f"Input function {if_id},\nevery "
                             "subject (QC flagged in red)")  # fmt: skip
        return fig

    values_w = figure_pane(None, "petzarr-cohort")
    _follow([map_w, organ_w, value_w, erosion_w, if_w, frames_w], cohort_figure, values_w)
    blood = [] if kin.input_functions is None else [
        figure_pane(pn.bind(blood_figure, if_w), "petzarr-input-functions")]  # fmt: skip
    cohort_tab = pn.Column(
        pn.Row(value_w, pn.Column("Erosion iterations", erosion_w), if_w, frames_w),
        values_w,
        *blood,
        "### QC",
        qc_pane(qc),
        name="Cohort",
    )

    # the subject tab: flagged subjects first, in QC order
    order = [s for s in (qc["Subject"] if qc is not None else []) if s in volumes.cohort.subjects]
    order += [s for s in volumes.cohort.subjects if s not in order]
    if not order:
        raise InvalidInputError(f"{cohort_url}: the cohort's index names no subject")
    # a link can open a tab and a subject: /?tab=1&subject=0003 (read raw: "0003" is no int),
    # taken as the widgets' first values so that no figure is drawn twice
    asked = (
        query
        if query is not None
        else {k: v[0].decode() for k, v in (pn.state.session_args or {}).items() if v}
    )
    subject_w = pn.widgets.Select(
        label="Subject", options={f"{s} (QC flagged)" if s in flagged else s: s for s in order},
        value=asked["subject"] if asked.get("subject") in order else order[0],
        css_classes=["petzarr-subject-select"],
    )  # fmt: skip
    z_w = pn.widgets.FloatSlider(label="Slice z [mm]", start=0, end=1, step=1, value=0)
    window_w = pn.widgets.Select(label="CT window", options=list(WINDOWS))

    def slices(event: Any = None) -> None:  # the slider spans this subject's CT
        z = volumes.levels(subject_w.value)["ct"][1].grid.coords()["z"]
        z_w.param.update(start=float(z[0]), end=float(z[-1]), step=float(z[1] - z[0]),
                         value=float(z[len(z) // 2]))  # fmt: skip

    slices()
    subject_w.param.watch(slices, "value")

    def mip(subject: str, z: float) -> Figure:
        pet = volumes.pet(subject)
        fig = Figure(figsize=(4.6, 6.4), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        title = f"{subject}: PET coronal MIP"
        image = coronal_mip(ax, pet.mip, pet.grid, vmax=pet.top, title=title)
        ax.axhline(z, color="tab:blue", linewidth=1.2)
        fig.colorbar(image, ax=ax, label=pet.unit, shrink=0.7, location="bottom")
        return fig

    mip_w = figure_pane(None, "petzarr-mip")
    _follow([subject_w, z_w], mip, mip_w)
    axial_w = ClickableFigure(css_classes=["petzarr-axial"])

    def axial(subject: str, z: float, window: str, task: str, organ: str) -> Figure:
        return axial_figure(volumes, subject, float(z or 0), WINDOWS[window], task, organ)

    _follow([subject_w, z_w, window_w, map_w, organ_w], axial, axial_w)

    def pick(event: Any) -> None:  # a click on an organ chooses it
        at = axial_w.data_at(*event.new[:2])
        z = float(z_w.value or 0)
        name = None if at is None else label_at(volumes, subject_w.value, z, map_w.value, *at)
        if name in organ_w.options:
            organ_w.value = name

    axial_w.param.watch(pick, "click")

    def organ_rows(subject: str, task: str, organ: str) -> pd.DataFrame:
        """The organ's statistics, one column per erosion: narrow, beside the figures."""
        rows = stats[(stats["Subject"] == subject) & (stats["Task"] == task)
                     & (stats["Label Name"] == organ)]  # fmt: skip
        shown = rows.set_index("Erosion Iterations")[[c for c in STATS_COLUMNS[4:] if c in rows]]
        return (
            shown.T.rename(columns=lambda e: f"erosion {e}")
            .rename_axis(index=organ, columns=None)
            .round(3)
        )

    def kinetics_figure(subject: str, task: str, organ: str, erosion: int, if_id: str,
                        frames: int) -> Figure:  # fmt: skip
        return curves_figure(kin, subject, task, organ, erosion, if_id, frames)

    curves = []
    if kin.tacs is not None and kin.input_functions is not None:
        curves.append(figure_pane(None, "petzarr-kinetics"))
        _follow([subject_w, map_w, organ_w, erosion_w, if_w, frames_w], kinetics_figure,
                curves[0])  # fmt: skip
    subject_tab = pn.Column(
        pn.Row(subject_w, z_w, window_w),
        pn.Row(mip_w, axial_w,
               pn.pane.DataFrame(pn.bind(organ_rows, subject_w, map_w, organ_w),
                                 css_classes=["petzarr-organ-stats"])),
        *curves,
        name="Subject",
    )  # fmt: skip
    # dynamic: only the shown tab is rendered (a link to a subject skips the cohort figure)
    tabs = pn.Tabs(cohort_tab, subject_tab, dynamic=True, css_classes=["petzarr-tabs"],
                   active=1 if asked.get("tab") in ("1", "subject") else 0)  # fmt: skip
    n = len(volumes.cohort.subjects)
    head = f"## petzarr explore\n`{cohort_url}`: {n} subjects, {len(flagged)} QC flagged"
    return pn.Column(head, pn.Row(map_w, organ_w), tabs, css_classes=["petzarr-explore"])


def _follow(widgets: list[Any], draw: Callable[..., Figure], pane: Any) -> None:
    """Show ``draw(*values of widgets)`` in ``pane`` now and on every change, but never
    twice for the same values: one change moves others (a new subject moves the slider, a
    new map the organ), and each would otherwise draw the figure again."""
    drawn: list[tuple[Any, ...]] = []

    def redraw(event: Any = None) -> None:
        key = tuple(w.value for w in widgets)
        if drawn != [key]:
            drawn[:] = [key]
            fig = draw(*key)
            if isinstance(pane, ClickableFigure):
                pane.draw(fig)
            else:
                pane.object = fig

    redraw()
    for widget in widgets:
        widget.param.watch(redraw, "value")


def _first(options: list[Any], *wanted: Any) -> Any:
    return next((w for w in wanted if w in options), options[0] if options else None)
