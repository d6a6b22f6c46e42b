"""Explorer benchmark: how long `petzarr explore` takes to show a subject, in a real browser.

    python benchmarks/explore.py [--subjects 8] [--size small] [--repeat 3] [--data DIR]
                                 [--screenshots DIR] [--json PATH]

A synthetic cohort (one subject's PET displaced 15 mm, so QC flags it) is converted, its
organ statistics (erosion 0 and 1) and QC written, all with the `petzarr` CLI, once into
``--data``. Then ``petzarr explore COHORT --stats ... --qc ...`` is started as users start
it and headless Chromium (Debian's, through Selenium: ``tests/browser.py``) opens

- the cohort view (``/``) until its figure is on screen;
- each subject's view by its link (``/?tab=1&subject=S``) until the PET MIP and the CT
  slice are both loaded and on screen: the first visit reads the subject from the store
  (cold), later visits (``--repeat``) find it in the server's cache (warm).

Times are from navigation to the images on screen, so they include the server building
the session and the browser drawing it. The goal: a subject view in under 2 s. Peak RSS
is the explorer process's (``VmHWM``). ``--screenshots DIR`` saves both views there
(``explore-cohort.png``, ``explore-subject.png``: the flagged subject), as README.md shows.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "tests"))  # the browser the tests drive

from browser import chromium, rendered, screenshot  # noqa: E402

PETZARR = str(Path(sys.executable).with_name("petzarr"))
SHIFTED = "0003"  # its PET displaced 15 mm towards anterior
VIEWS = ("petzarr-mip", "petzarr-axial")


def petzarr(*words: str) -> None:
    subprocess.run([PETZARR, *words], check=True, stdout=subprocess.DEVNULL)


def prepare(data: Path, subjects: int, size: str) -> dict[str, Path]:
    """The cohort, its stats table and QC folder (made once per ``data``/size/subjects)."""
    root = data / f"explore-{size}-{subjects}"
    paths = {"cohort": root / "cohort", "stats": root / "stats.parquet", "qc": root / "qc"}
    if (paths["qc"] / "qc.parquet").exists():
        return paths
    run = ["--serial", "--no-progress"]
    petzarr("synth", str(root / "src"), "--subjects", str(subjects), "--size", size,
            "--shift-pet", f"{SHIFTED}:0,15,0")  # fmt: skip
    petzarr("convert", str(root / "src"), str(paths["cohort"]), *run)
    petzarr("stats", str(paths["cohort"]), "-o", str(paths["stats"]), "--erosion", "0,1", *run)
    petzarr("qc", str(paths["cohort"]), "-o", str(paths["qc"]), *run)
    return paths


def start_explorer(paths: dict[str, Path]) -> tuple[subprocess.Popen, str]:
    """``petzarr explore`` on a free port; the process and the URL it printed."""
    proc = subprocess.Popen(
        [PETZARR, "explore", str(paths["cohort"]), "--stats", str(paths["stats"]),
         "--qc", str(paths["qc"]), "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"at (http://\S+) ", line)
        if found:
            return proc, found.group(1)
    raise SystemExit(f"petzarr explore exited ({proc.wait()}) before serving")


def peak_rss_gb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1e6  # type: ignore[union-attr]


def visit(driver: Any, url: str, images: tuple[str, ...]) -> float:
    start = time.perf_counter()
    driver.get(url)
    rendered(driver, images)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--size", default="small", choices=["tiny", "small", "full"])
    parser.add_argument("--repeat", type=int, default=3, help="warm visits per subject")
    parser.add_argument("--data", type=Path, help="where the cohort is made (default: a temp dir)")
    parser.add_argument("--screenshots", type=Path, help="save both views' screenshots here")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = prepare(args.data or Path(tmp), args.subjects, args.size)
        subjects = sorted(p.name for p in (paths["cohort"] / "subjects").iterdir())
        proc, url = start_explorer(paths)
        try:
            with chromium() as driver:
                cohort_s = visit(driver, url, ("petzarr-cohort",))
                if args.screenshots:
                    args.screenshots.mkdir(parents=True, exist_ok=True)
                    screenshot(driver, args.screenshots / "explore-cohort.png")
                link = f"{url}?tab=1&subject={{}}"
                cold = [visit(driver, link.format(s), VIEWS) for s in subjects]
                warm = [visit(driver, link.format(s), VIEWS)
                        for _ in range(args.repeat) for s in subjects]  # fmt: skip
                if args.screenshots:
                    visit(driver, link.format(SHIFTED), VIEWS)
                    screenshot(driver, args.screenshots / "explore-subject.png")
            rss = peak_rss_gb(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    figures = {
        "size": args.size,
        "subjects": len(subjects),
        "cohort view s": round(cohort_s, 3),
        "subject view cold s (median)": round(statistics.median(cold), 3),
        "subject view cold s (max)": round(max(cold), 3),
        "subject view warm s (median)": round(statistics.median(warm), 3),
        "explorer peak RSS GB": round(rss, 3),
    }
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    verdict = "meets" if figures["subject view cold s (max)"] < 2 else "misses"
    print(f"a subject view in under 2 s (every cold visit): {verdict} the goal")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
