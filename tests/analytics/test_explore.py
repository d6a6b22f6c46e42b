"""``petzarr explore``: the app served on loopback, looked at in a real headless Chromium.

Four tiny subjects (0003's PET shifted 15 mm, so QC flags it) converted with a pyramid
(``PETZARR_PYRAMID__MIN_SIZE=16``), their stats and QC tables written by the CLI, the app
served in-process; Selenium drives Debian's Chromium (``tests/browser.py``). The S3 test
serves a cohort converted without a pyramid to a moto server, its statistics computed at
start, and looks at a subject in the browser.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from browser import FIND_IMAGE, chromium, click_tab, crop, rendered, screenshot, scroll_to
from matplotlib.collections import PathCollection
from matplotlib.contour import ContourSet
from selenium import webdriver

from petzarr.analytics.explore import (
    KI,
    Kinetics,
    SubjectVolumes,
    cohort_volumes,
    make_app,
    serve,
    view_level,
)
from petzarr.analytics.jobs.ki_map import DEFAULT_KI_FRAMES, DEFAULT_KI_INPUT_FUNCTION
from petzarr.analytics.tables.patlak import INPUT_FUNCTION_ID
from petzarr.cli import build_parser, main
from petzarr.cohort.config import config
from petzarr.cohort.storage import storage_options
from petzarr.cohort.subject import open_subject
from petzarr.synth import write_enhance_cohort

RUN = ["--serial", "--no-progress"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("explore")
    paths = {k: work / k for k in ("src", "dest", "qc")} | {"stats": work / "stats.parquet"}
    write_enhance_cohort(paths["src"], subjects=4, size="tiny", seed=5,
                         pet_shift_mm={"0003": (0, 15, 0)})  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:  # tiny grids get pyramid levels too
        mp.setenv("PETZARR_PYRAMID__MIN_SIZE", "16")
        config.refresh()
        try:
            assert main(["convert", str(paths["src"]), str(paths["dest"]), *RUN]) == 0
        finally:
            mp.delenv("PETZARR_PYRAMID__MIN_SIZE")
            config.refresh()
    dest = str(paths["dest"])
    assert main(["stats", dest, "-o", str(paths["stats"]), "--erosion", "0,1", *RUN]) == 0
    assert main(["qc", dest, "-o", str(paths["qc"]), *RUN]) == 0
    return paths


@pytest.fixture(scope="module")
def url(cohort: dict[str, Path]) -> Iterator[str]:
    served = serve(str(cohort["dest"]), stats_path=str(cohort["stats"]),
                   qc_path=str(cohort["qc"] / "qc.parquet"))  # fmt: skip
    try:
        yield served.url
    finally:
        served.stop()
        assert not served.thread.is_alive()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def _not_blank(driver: webdriver.Chrome, shot: np.ndarray, page: dict, name: str,
               share: float) -> np.ndarray:  # fmt: skip
    """The named figure's part of a screenshot (RGB): contrast, and at least ``share`` of
    it not white."""
    part = crop(driver, shot, page, name)
    grey = part.mean(axis=2)
    assert grey.size and grey.std() > 20, (name, part.shape, grey.std())
    assert (grey < 245).mean() > share, (name, (grey < 245).mean())
    return part


def test_cohort_view_then_subject_tab(url, browser, tmp_path_factory):
    out = tmp_path_factory.mktemp("screenshots")
    browser.get(url)
    page = rendered(browser, ("petzarr-cohort",))
    assert page["tabs"] == ["Cohort", "Subject"]
    for said in ("petzarr explore", "4 subjects, 1 QC flagged", "Erosion iterations",
                 "PET displaced", "Map", "Organ", "Value"):  # fmt: skip
        assert said in page["text"], said
    # the QC table lists the flagged subject first
    assert page["text"].index("0003") < min(page["text"].index(s) for s in ("0001", "0002"))
    assert {"organs", "liver", "SUV Mean"} <= set(page["selects"])
    shot = screenshot(browser, out / "explore-cohort.png")
    crop = _not_blank(browser, shot, page, "petzarr-cohort", 0.02)
    blue = np.abs(crop - (31, 119, 180)).max(axis=2) < 40  # the bands, matplotlib's tab:blue
    red = np.abs(crop - (214, 39, 40)).max(axis=2) < 40  # the flagged subject
    assert blue.sum() > 500 and red.sum() > 20, (blue.sum(), red.sum())

    assert click_tab(browser, "Subject")
    page = rendered(browser, ("petzarr-mip", "petzarr-axial"))
    cohort_img = page["images"].get("petzarr-cohort", {"visible": False})
    assert not cohort_img["visible"]  # the cohort tab is hidden (dynamic tabs: removed) now
    assert "Slice z [mm]" in page["text"] and "CT window" in page["text"]
    assert "0003 (QC flagged)" in page["selects"]  # flagged first: the first one shown
    assert "SUV Peak" in page["text"]  # the organ's statistics table
    shot = screenshot(browser, out / "explore-subject.png")
    for name in ("petzarr-mip", "petzarr-axial"):
        _not_blank(browser, shot, page, name, 0.3)


def test_a_link_opens_a_subject_and_how_fast(url, browser):
    start = time.monotonic()
    browser.get(f"{url}?tab=1&subject=0002")
    page = rendered(browser, ("petzarr-mip", "petzarr-axial"))
    took = time.monotonic() - start
    print(f"subject view rendered in {took:.2f} s (navigation to both images on screen)")
    assert "0002" in page["selects"] and "0003 (QC flagged)" not in page["selects"]
    assert took < 20


def test_the_view_reads_the_level_that_fits(cohort):
    volumes = SubjectVolumes(str(cohort["dest"]), view_size=16)
    ct_level, ct, base = volumes.levels("0001")["ct"]
    assert ct_level == 2 and ct.image.shape[1:] == (16, 16)  # 64 -> 32 -> 16
    assert volumes.levels("0001")["pet"][0] == 1  # 40 -> 20 (10 is too small)
    k = ct.image.shape[0] // 2
    labels = volumes.label_slice("0001", "organs", k)
    assert labels is not None and labels.shape == (16, 16) and labels.any()
    assert set(np.unique(labels)) <= set(np.unique(base.label_map("organs")[...]))
    assert volumes.slice("ct", "0001", k) is volumes.slice("ct", "0001", k)  # cached
    # a real view (256 voxels) of a tiny store falls back to level 0
    store = open_subject(volumes.cohort.store_url("0001"))
    assert view_level(store.group("ct"))[0] == 0


def test_moving_the_slider_reads_one_slice(cohort):
    dest = str(cohort["dest"])
    app = make_app(dest, stats=pd.read_parquet(cohort["stats"]),
                   qc=pd.read_parquet(cohort["qc"] / "qc.parquet"))  # fmt: skip
    subject_w, z_w, _ = app[2][1][0]  # the subject tab's widgets
    axial = app[2][1][1][1]
    volumes = cohort_volumes(dest)
    before, pet = volumes.slice.cache_info().misses, volumes.pet.cache_info().misses
    shown = axial.src
    z_w.value = z_w.start + 3 * z_w.step  # three slices up
    assert axial.src != shown  # redrawn
    assert volumes.slice.cache_info().misses - before in (1, 2)  # a CT slice (and a PET one)
    assert volumes.pet.cache_info().misses == pet  # the MIP is not read again
    # a new subject moves the slider too, yet each figure is drawn once, for that subject
    sources = {"axial": [], "mip": []}
    axial.param.watch(lambda e: sources["axial"].append(e.new), "src")
    app[2][1][1][0].param.watch(lambda e: sources["mip"].append(e.new), "object")
    subject_w.value = "0001"
    assert z_w.start == volumes.levels("0001")["ct"][1].grid.origin[0]
    assert [len(v) for v in sources.values()] == [1, 1], sources
    assert sources["mip"][0].axes[0].get_title() == "0001: PET coronal MIP"


@pytest.mark.s3
def test_explore_an_s3_cohort_without_pyramid(cohort, s3_bucket, browser, tmp_path, capsys):
    dest = f"{s3_bucket}/cohort"  # one subject: moto takes ~9 s to take a store's objects
    assert main(["convert", str(cohort["src"]), dest, "--subjects", "0003", *RUN]) == 0
    options = storage_options(dest)
    app = make_app(dest, storage_options=options)  # no stats: computed now, said on stderr
    assert "computing the organ statistics" in capsys.readouterr().err
    assert "1 subjects" in app[0].object  # tiny and the default minimum size: no pyramid
    volumes = SubjectVolumes(dest, options)
    level, ct, _ = volumes.levels("0003")["ct"]
    assert level == 0 and volumes.levels("0003")["pet"][0] == 0
    pet = volumes.pet("0003")
    assert pet.unit == "SUV" and pet.mip.std() > 0 and pet.top > 0
    k = ct.image.shape[0] // 2
    assert volumes.slice("ct", "0003", k).std() > 0
    assert volumes.slice("pet", "0003", k * 40 // 48).std() > 0
    labels = volumes.label_slice("0003", "organs", k)
    assert labels is not None and len(np.unique(labels)) > 1
    # and in the browser, from S3 as users serve it: the subject view's images drawn
    served = serve(dest)  # no --stats: computed from the S3 stores at start
    try:
        browser.get(f"{served.url}?tab=1&subject=0003")
        page = rendered(browser, ("petzarr-mip", "petzarr-axial"))
        assert "1 subjects, 0 QC flagged" in page["text"] and "s3://" in page["text"]
        shot = screenshot(browser, tmp_path / "s3-subject.png")
        for name in ("petzarr-mip", "petzarr-axial"):
            _not_blank(browser, shot, page, name, 0.3)
    finally:
        served.stop()


def test_the_command_is_registered_and_refuses_a_wrong_table(cohort, capsys):
    args = build_parser().parse_args(["explore", "c", "--port", "8123", "--no-browser",
                                      "--stats", "s.parquet", "--qc", "q", "--anon"])  # fmt: skip
    assert (args.port, args.no_browser, args.stats, args.qc, args.anon) == (
        8123, True, "s.parquet", "q", True)  # fmt: skip
    qc = str(cohort["qc"] / "qc.parquet")  # not a stats table: refused before serving
    assert main(["explore", str(cohort["dest"]), "--stats", qc, "--no-browser"]) == 2
    assert "the stats table has no" in capsys.readouterr().err


def test_tables_that_cannot_be_shown_are_refused_by_name(cohort, tmp_path, capsys):
    empty = tmp_path / "empty.parquet"
    pd.read_parquet(cohort["stats"]).iloc[:0].to_parquet(empty)  # the columns, no rows
    assert main(["explore", str(cohort["dest"]), "--stats", str(empty), "--no-browser"]) == 2
    assert "the stats table has no values" in capsys.readouterr().err
    image = tmp_path / "stats.png"
    image.write_bytes(b"not a table")
    assert main(["explore", str(cohort["dest"]), "--stats", str(image), "--no-browser"]) == 2
    assert "stats.png: not a .parquet or .csv table" in capsys.readouterr().err


def test_groups_count_subjects_with_a_value_and_keep_sex_without_ages():
    from petzarr.analytics.explore.tables import cohort_groups
    from petzarr.analytics.explore.views import values_figure

    people = cohort_groups(pd.DataFrame({"subject": ["a", "b", "c"], "Sex": ["M", "F", "M"]}))
    assert people.to_dict("list") == {"Subject": ["a", "b", "c"], "Sex": ["M", "F", "M"],
                                      "Age Group": ["?", "?", "?"]}  # fmt: skip
    table = people.assign(**{"SUV Mean": [1.0, np.nan, 2.0]})
    ticks = values_figure(table, "SUV Mean", "liver", set()).axes[0].get_xticklabels()
    assert [t.get_text() for t in ticks] == ["all\nn=2", "M ?\nn=2"]  # b has no value


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny hedyPET-layout cohort with the tables of petzarr stats, tacs,
    input-functions and patlak, all written by the CLI."""
    work = tmp_path_factory.mktemp("explore-dynamic")
    paths = {"src": work / "src", "dest": work / "dest"}
    paths |= {n: work / f"{n}.parquet" for n in ("stats", "tacs", "if", "patlak")}
    assert main(["synth", str(paths["src"]), "--layout", "hedypet", "--subjects", "3",
                 "--size", "tiny"]) == 0  # fmt: skip
    assert main(["convert", str(paths["src"]), str(paths["dest"]), *RUN]) == 0
    dest = str(paths["dest"])
    for command, out in (("stats", "stats"), ("tacs", "tacs"), ("input-functions", "if"),
                         ("patlak", "patlak")):  # fmt: skip
        assert main([command, dest, "-o", str(paths[out]), *RUN]) == 0
    return paths


def _kinetics(dynamic: dict[str, Path]) -> Kinetics:
    return Kinetics(*(pd.read_parquet(dynamic[n]) for n in ("tacs", "if", "patlak")))


def test_dynamic_views_show_the_patlak_table(dynamic):
    kin = _kinetics(dynamic)
    app = make_app(str(dynamic["dest"]), stats=pd.read_parquet(dynamic["stats"]), kinetics=kin)
    map_w, organ_w = app[1]
    assert (map_w.value, organ_w.value) == ("ts_total", "liver")
    cohort_tab, subject_tab = app[2]
    value_w, _, if_w, frames_w = cohort_tab[0]
    assert KI in value_w.options and if_w.value == DEFAULT_KI_INPUT_FUNCTION
    assert frames_w.value == DEFAULT_KI_FRAMES
    value_w.value = KI
    # the cohort figure's dots are the table's Ki of exactly this organ, input function,
    # window and erosion: one per subject ("all" group; x < 0.5)
    p = kin.patlak
    rows = p[(p["Task"] == "ts_total") & (p["Label Name"] == "liver")
             & (p[INPUT_FUNCTION_ID] == if_w.value) & (p["Regression Frames"] == frames_w.value)
             & (p["Erosion Iterations"] == 0)]  # fmt: skip
    ax = cohort_tab[1].object.axes[0]
    scatter = [c for c in ax.collections if isinstance(c, PathCollection)]  # not the bands
    dots = np.concatenate([c.get_offsets() for c in scatter])
    shown = np.sort(dots[dots[:, 0] < 0.5, 1])
    np.testing.assert_allclose(shown, np.sort(rows["Patlak Ki"]))
    assert ax.get_ylabel() == "Patlak Ki [mL/cm³/min]"
    # every subject's input function, early and whole
    early, late = cohort_tab[2].object.axes
    assert len(early.lines) == len(late.lines) == 3 and early.get_xlim() == (0, 3)
    # the subject's TAC and Patlak plot: the fitted frames and the table's line
    subject = subject_tab[0][0].value
    tac, patlak = subject_tab[-1].object.axes
    # hedyPET's task ts_total finds its label map "total": the slice has contours
    axial_ax = subject_tab[1][1]._figure.axes[0]
    assert any(isinstance(c, ContourSet) for c in axial_ax.collections)
    assert [line.get_label() for line in tac.lines][1] == "liver"
    fit = rows[rows["Subject"] == subject].iloc[0]
    fitted, line = patlak.lines[1], patlak.lines[2]
    assert len(fitted.get_xdata()) == frames_w.value
    (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
    assert (y1 - y0) / (x1 - x0) == pytest.approx(fit["Patlak Ki"])
    assert y0 == pytest.approx(fit["Patlak Intercept"])
    frames_w.value = 4  # another window: another fit
    assert len(subject_tab[-1].object.axes[1].lines[1].get_xdata()) == 4
    # TACs computed at erosion 0 only: an erosion-1 view says so, and how to get it
    from petzarr.analytics.explore.views import curves_figure

    empty = curves_figure(kin, subject, "ts_total", "liver", 1, if_w.value, 4)
    assert "erosion 0 only: run its command with --erosion 0,1" in empty.get_suptitle()


def test_dynamic_cohort_in_the_browser(dynamic, browser):
    served = serve(str(dynamic["dest"]), stats_path=str(dynamic["stats"]),
                   tacs_path=str(dynamic["tacs"]), input_functions_path=str(dynamic["if"]),
                   patlak_path=str(dynamic["patlak"]))  # fmt: skip
    try:
        browser.get(served.url)
        page = rendered(browser, ("petzarr-cohort", "petzarr-input-functions"))
        assert "Input function" in page["text"] and "Patlak frames" in page["text"]
        page = scroll_to(browser, "petzarr-input-functions")
        shot = screenshot(browser, dynamic["dest"].parent / "cohort.png")
        _not_blank(browser, shot, page, "petzarr-input-functions", 0.02)
        browser.get(f"{served.url}?tab=1&subject=sub-002")
        rendered(browser, ("petzarr-mip", "petzarr-axial", "petzarr-kinetics"))
        page = scroll_to(browser, "petzarr-kinetics")  # below the images
        shot = screenshot(browser, dynamic["dest"].parent / "subject.png")
        _not_blank(browser, shot, page, "petzarr-kinetics", 0.02)
    finally:
        served.stop()


def _organ_target(app: Any, cohort_url: str) -> tuple[str, float, float]:
    """An organ on the subject view's slice other than the chosen one: its name and where
    its largest-labelled voxel is drawn, as fractions of the axial image from top left."""
    map_w, organ_w = app[1]
    subject_w, z_w, _ = app[2][1][0]
    axial = app[2][1][1][1]
    volumes = cohort_volumes(cohort_url)
    ct = volumes.levels(subject_w.value)["ct"][1]
    c = ct.grid.coords()
    k = int(np.argmin(np.abs(c["z"] - z_w.value)))
    seg = volumes.label_slice(subject_w.value, map_w.value, k)
    names = {v: n for n, v in volumes.label_ids(subject_w.value, map_w.value).items()}
    counts = {v: int((seg == v).sum()) for v in np.unique(seg[seg > 0])}
    value = max((v for v in counts if names[v] != organ_w.value), key=counts.get)
    iy, ix = np.argwhere(seg == value)[len(np.argwhere(seg == value)) // 2]
    fig = axial._figure
    px, py = fig.axes[0].transData.transform((c["x"][ix], c["y"][iy]))
    return names[value], px / fig.bbox.width, 1 - py / fig.bbox.height


def test_clicking_an_organ_chooses_it(cohort):
    app = make_app(str(cohort["dest"]), stats=pd.read_parquet(cohort["stats"]))
    _, organ_w = app[1]
    axial, organ_stats = app[2][1][1][1], app[2][1][1][2]
    name, fx, fy = _organ_target(app, str(cohort["dest"]))
    before = axial.src
    axial.click = [fx, fy]
    assert organ_w.value == name  # its contour turns yellow, its statistics shown
    assert axial.src != before and organ_stats.object.index.name == name
    axial.click = [0.01, 0.01]  # outside the axes: nothing changes
    assert organ_w.value == name


def test_clicking_an_organ_in_the_browser(cohort, url, browser):
    from selenium.webdriver import ActionChains

    browser.get(f"{url}?tab=1&subject=0002")
    page = rendered(browser, ("petzarr-axial",))
    app = make_app(
        str(cohort["dest"]),
        stats=pd.read_parquet(cohort["stats"]),
        query={"tab": "1", "subject": "0002"},
    )  # the same view here: where to click
    name, fx, fy = _organ_target(app, str(cohort["dest"]))
    assert name not in page["selects"]
    img = browser.execute_script(FIND_IMAGE, "petzarr-axial")
    _, _, width, height = page["images"]["petzarr-axial"]["box"]
    ActionChains(browser).move_to_element_with_offset(
        img, (fx - 0.5) * width, (fy - 0.5) * height
    ).click().perform()
    end = time.monotonic() + 20
    while name not in rendered(browser, ("petzarr-axial",))["selects"]:
        assert time.monotonic() < end, f"clicking {name} did not choose it"
        time.sleep(0.1)
