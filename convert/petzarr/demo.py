"""``petzarr demo``: the whole path on an embedded default, on one local Dask cluster.

A small synthetic ENHANCE-layout cohort (one subject moved between its CT and its PET, as
patients do) is converted, described, its organ statistics computed and its QC drawn; every
output's path is printed with what to open next. It spans conversion and analytics, so it
lives above both.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from petzarr.cohort.errors import InvalidInputError

__all__ = ["register"]

MOVED_MM = (0.0, 15.0, 0.0)  # (z, y, x): the moved subject's PET, 15 mm anterior


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the ``petzarr`` parser."""
    p = sub.add_parser(
        "demo",
        help="synthesise a small cohort, convert it on a local cluster, compute its organ "
        "statistics and QC",
        description="Write a small synthetic ENHANCE-layout cohort into DIR/source (the last "
        "subject's PET moved 15 mm, as a patient who moved between CT and PET), convert it on "
        "a local multi-process Dask cluster into DIR/cohort, compute its organ statistics "
        "(DIR/stats.parquet) and QC (DIR/qc/: a figure per subject, qc.parquet, index.html), "
        "and print what was made and what to open next.",
    )
    p.add_argument(
        "dir", nargs="?", default="petzarr-demo", help="working folder (default ./petzarr-demo)"
    )
    p.add_argument("--subjects", type=int, default=4, help="number of subjects (default 4)")
    p.add_argument(
        "--workers", type=int, default=2, help="local cluster worker processes (default 2)"
    )
    p.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from petzarr.analytics import cohort_stats
    from petzarr.analytics.drivers.qc import cohort_qc
    from petzarr.cohort import open_cohort
    from petzarr.cohort.executor import Run
    from petzarr.convert.job import convert_cohort
    from petzarr.synth import write_enhance_cohort

    if args.subjects < 1:
        raise InvalidInputError("--subjects must be at least 1")
    base = Path(args.dir or tempfile.mkdtemp(prefix="petzarr-demo-")).absolute()
    source, dest, qc_dir = base / "source", base / "cohort", base / "qc"
    moved = f"{args.subjects:04d}" if args.subjects > 1 else None
    said = f"; subject {moved}'s PET moved 15 mm anterior" if moved else ""
    print(f"1/5 synthesising {args.subjects} subjects (ENHANCE.PET layout) in {source}{said}")
    write_enhance_cohort(
        source, subjects=args.subjects, size="small", seed=0,
        pet_shift_mm={moved: MOVED_MM} if moved else None,
    )  # fmt: skip
    print(f"2/5 converting on a local Dask cluster of {args.workers} processes into {dest}")
    with Run(workers=args.workers).connect() as client:
        run = Run(client=client)
        report = convert_cohort(str(source), str(dest), run=run)
        print(report.summary())
        print("3/5 the cohort:")
        cohort = open_cohort(str(dest))
        print(cohort.describe())
        subject = cohort.subjects[0]
        print(f"\nxarray.open_zarr('{cohort.store_url(subject)}', group='pet'):")
        print(cohort.open(subject, "pet"))

        stats_path = base / "stats.parquet"
        print(f"\n4/5 organ statistics of every label of every map -> {stats_path}")
        stats = cohort_stats(str(dest), run=run)
        stats.table.to_parquet(stats_path, index=False)
        organs = stats.table[
            (stats.table["Task"] == "organs") & (stats.table["Erosion Iterations"] == 0)
        ]
        summary = (
            organs.groupby("Label Name")[["SUV Mean", "SUV Peak", "Volume [mL]"]]
            .median()
            .sort_values("SUV Mean", ascending=False)
        )
        print(f"SUV per organ, median over {organs['Subject'].nunique()} subjects (erosion 0):")
        with pd.option_context("display.width", 100):
            print(summary.head(10).round(2).to_string())

        print(f"\n5/5 quality control: PET/CT alignment and a figure per subject -> {qc_dir}")
        qc = cohort_qc(str(dest), str(qc_dir), run=run)
    table = qc.table
    for row in table[table["Flagged"]].itertuples():
        print(f"flagged {row.Subject}: {row.Reason}")
    figure = qc_dir / table["Figure"].iloc[0] if len(table) else None
    print("\nnext:")
    print(f"  open {qc_dir / 'index.html'}    every subject's QC figure, flagged first")
    if figure is not None:
        print(f"  open {figure}    {table['Subject'].iloc[0]}: PET MIPs, CT with organ contours")
    print(f"  petzarr info {dest}    what was made")
    print(f"  pandas.read_parquet('{stats_path}')    every statistic of every label")
    print("  notebooks/    the cohort in xarray, statistics and dynamic PET on a Dask cluster")
    failed = report.exit_code or stats.exit_code or qc.exit_code
    return 1 if failed else 0
