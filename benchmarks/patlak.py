"""Benchmark: vectorised Patlak tables vs a per-case Python loop.

Runs Patlak for 80 subjects x all regions x 12 input functions x 7 window lengths (2..8)
from hedyPET's published tables (``../shared/reference/hedypet``), or from synthetic tables
of the same size when those are absent. Target: under 30 s. Prints seconds, rows/s and peak
RSS, then times the naive loop (hedyPET's recipe: per case a Simpson integral and one
``np.polyfit``) on a few subjects and projects it to the whole cohort.

    python benchmarks/patlak.py [--reference DIR] [--naive-subjects 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.integrate import cumulative_simpson

from petzarr.analytics.tables.patlak import patlak_table

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "hedypet"
DURATIONS = np.repeat([2.0, 5.0, 10.0, 60.0, 120.0, 300.0], [20, 10, 15, 6, 10, 8])
MIDS_S = np.cumsum(DURATIONS) - DURATIONS / 2
WINDOWS = (2, 3, 4, 5, 6, 7, 8)


def load_tables(reference: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    if (reference / "region_tacs_80.csv.gz").is_file():
        tacs = pd.read_csv(reference / "region_tacs_80.csv.gz")
        ifs = pd.read_csv(reference / "input_function_tacs_80.csv.gz")
        return tacs, ifs, f"hedyPET reference tables ({reference})"
    return *synthetic_tables(), "synthetic tables (reference not found)"


def synthetic_tables(
    subjects: int = 80, regions: int = 32, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """hedyPET-sized tables: 2 erosions x ``regions`` TACs and 12 input functions a subject."""
    rng = np.random.default_rng(seed)
    t = MIDS_S / 60
    n = len(t)
    bolus = np.clip(t - 0.3, 0, None)
    shape = 3e5 * bolus * np.exp(-4 * bolus) + 2e4 * np.exp(-0.01 * t) + 1e4 * np.exp(-0.1 * t)
    names = [f"region_{r:02d}" for r in range(regions)]
    tac_frames, if_frames = [], []
    for s in range(subjects):
        sub = f"sub-{s:03d}"
        for erosion in (0, 1):
            level = rng.uniform(0.05, 2.0, (regions, 1))
            curves = level * 1e4 * (1 - np.exp(-t / 8)) * (1 + 0.02 * rng.normal(size=(regions, n)))
            tac_frames.append(
                pd.DataFrame(
                    {
                        "Subject": sub,
                        "Erosion Iterations": erosion,
                        "mu": curves.ravel(),
                        "region": np.repeat(names, n),
                        "Volume [mL]": np.repeat(rng.uniform(5, 2000, regions), n),
                        "Frame Index": np.tile(np.arange(n), regions),
                        "t": np.tile(MIDS_S, regions),
                    }
                )
            )
        for task in (
            "aortavois_ml-full_width-3",
            "aortavois_ml-1_width-3",
            "aortavois_ml-2_width-5",
        ):
            for label in ("ascending", "top", "descending_upper", "descending_lower"):
                cp = shape * rng.uniform(0.8, 1.2) * (1 + 0.01 * rng.normal(size=n))
                if_frames.append(
                    pd.DataFrame(
                        {
                            "Subject": sub,
                            "Task": task,
                            "Label Index": 1,
                            "Label Name": f"aorta_{label}",
                            "Erosion Iterations": 0,
                            "Frame Index": np.arange(n),
                            "Frame Time Middle [s]": MIDS_S,
                            "PET Mean [Bq/mL]": cp,
                        }
                    )
                )
    return pd.concat(tac_frames, ignore_index=True), pd.concat(if_frames, ignore_index=True)


def curves_by_subject(tacs: pd.DataFrame, ifs: pd.DataFrame) -> dict:
    """Plain arrays per subject, so the timed naive loop is arithmetic, not pandas."""
    tacs = tacs.drop_duplicates()
    out: dict = {}
    for (subject, task, label), curve in ifs.groupby(["Subject", "Task", "Label Name"]):
        curve = curve.sort_values("Frame Time Middle [s]")
        out.setdefault(subject, ([], []))[1].append(
            (
                f"{task}_{label}",
                curve["Frame Time Middle [s]"].to_numpy() / 60,
                curve["PET Mean [Bq/mL]"].to_numpy(),
            )
        )
    for (subject, erosion, region), tac in tacs.groupby(
        ["Subject", "Erosion Iterations", "region"]
    ):
        out[subject][0].append((erosion, region, tac.sort_values("t").mu.to_numpy()))
    return out


def naive_patlak(curves: dict) -> pd.DataFrame:
    """hedyPET's recipe per case: a Simpson integral and one ``np.polyfit``."""
    rows = []
    for subject, (regions, inputs) in curves.items():
        for identifier, t, cp in inputs:
            for erosion, region, ct in regions:
                for n in WINDOWS:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        x = cumulative_simpson(cp, x=t, initial=0) / cp
                    ki, _ = np.polyfit(x[-n:], ct[-n:] / cp[-n:], 1)
                    rows.append((subject, erosion, region, identifier, n, ki))
    columns = ["Subject", "Erosion Iterations", "Region", "Input Function Identifier"]
    return pd.DataFrame(rows, columns=[*columns, "Regression Frames", "naive Ki"])


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--naive-subjects", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="vectorised runs; best is reported")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    tacs, ifs, source = load_tables(args.reference)
    load_s = time.perf_counter() - start
    print(f"input: {source}; {len(tacs):,} TAC rows, {len(ifs):,} input-function rows")
    print(f"load: {load_s:.2f} s")

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        out = patlak_table(tacs, ifs, n_frames=WINDOWS)
        times.append(time.perf_counter() - start)
    best = min(times)
    subjects = out.Subject.nunique()
    inputs = out["Input Function Identifier"].nunique()
    print(
        f"vectorised: {len(out):,} rows ({subjects} subjects, {inputs} input functions, "
        f"{len(WINDOWS)} windows) in {best:.3f} s (best of {args.repeat}; "
        f"runs {', '.join(f'{t:.3f}' for t in times)}) = {len(out) / best:,.0f} rows/s"
    )
    print(f"target < 30 s: {'met' if best < 30 else 'MISSED'}")

    chosen = sorted(out.Subject.unique())[: args.naive_subjects]
    curves = curves_by_subject(tacs[tacs.Subject.isin(chosen)], ifs[ifs.Subject.isin(chosen)])
    start = time.perf_counter()
    naive = naive_patlak(curves)
    naive_s = time.perf_counter() - start
    per_case = naive_s / len(naive)
    projected = per_case * len(out)
    keys = ["Subject", "Erosion Iterations", "Region", "Input Function Identifier"]
    both = naive.merge(out, on=[*keys, "Regression Frames"])
    agree = np.abs(both["naive Ki"] / both["Patlak Ki"] - 1).max()
    print(
        f"naive loop: {len(naive):,} cases ({len(chosen)} subjects) in {naive_s:.2f} s = "
        f"{len(naive) / naive_s:,.0f} rows/s; projected for {len(out):,} rows: {projected:.0f} s "
        f"-> vectorised is {projected / best:,.0f}x faster (max relative difference "
        f"{agree:.1e} over {len(both):,} shared rows)"
    )
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    return 0 if best < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
