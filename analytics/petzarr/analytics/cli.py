"""Analytics subcommands of ``petzarr``: stats, norms, tacs, patlak, explore."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["register", "write_table"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the analytics subcommands to the ``petzarr`` parser."""
    p = sub.add_parser(
        "patlak",
        help="Patlak Ki from a cohort, or from TAC and input-function tables",
        description="Patlak graphical analysis for every region x input function x number of "
        "regression frames at once. COHORT: the TACs and hedyPET's image-derived aorta input "
        "functions are computed from the cohort's dynamic PET (one Dask task per subject), "
        "--ki-map also writes each subject's voxel-wise Ki map into its store. Or from tables: "
        "--tacs: region TACs (petzarr/hedyPET TAC columns, or hedyPET's region_tacs layout); "
        "--input-functions: input-function TACs in the same columns, or a CSV of time [s], "
        "activity (with COHORT they replace the image-derived ones). Default = hedyPET's "
        "definition: time in minutes, cumulative Simpson integral of the input function from "
        "the first frame middle, OLS over the last n frames (n = 2..8).",
    )
    p.add_argument(
        "cohort", nargs="?", metavar="COHORT", help="cohort folder or s3:// prefix (or --tacs)"
    )
    p.add_argument("--tacs", help="region TAC table (.parquet, .csv, .csv.gz), instead of COHORT")
    p.add_argument(
        "--input-functions",
        nargs="+",
        metavar="TABLE",
        help="input-function table(s), or time,activity CSV(s)",
    )
    p.add_argument("-o", "--output", required=True, help="output table (.parquet or .csv)")
    window = p.add_mutually_exclusive_group()
    window.add_argument(
        "--frames", type=_ints, help="numbers of last frames to regress (default 2,3,...,8)"
    )
    window.add_argument("--t-star", type=float, help="regress frames whose middle time >= t* [min]")
    p.add_argument(
        "--from-injection",
        action="store_true",
        help="integrate the input function from injection (t = 0, activity 0)",
    )
    _dynamic_cohort_args(p, optional_cohort=True)
    p.add_argument(
        "--ki-map",
        action="store_true",
        help="with COHORT: write each subject's voxel-wise Ki map as pet_dynamic/patlak_ki",
    )
    p.add_argument(
        "--ki-input-function",
        metavar="ID",
        help="input function of the Ki map (default aortavois_ml-1_width-3_aorta_descending_lower)",
    )
    p.add_argument(
        "--ki-frames", type=int, help="regression frames of the Ki map (default 7, or --t-star)"
    )
    p.set_defaults(run=_patlak)

    _register_norms(sub)
    _register_stats(sub)
    _register_qc(sub)
    _register_tacs(sub)
    _register_input_functions(sub)
    _register_explore(sub)


def _register_norms(sub: argparse._SubParsersAction) -> None:
    from petzarr.analytics.tables.metadata_columns import ColumnMap

    fields = ", ".join(ColumnMap.__dataclass_fields__)
    p = sub.add_parser(
        "norms",
        help="SUV/SUL normalisation constants of every subject of a cohort",
        description="SUV and SUL (James, Janmahasatian, Decazes) denominators [Bq/mL] of "
        "every subject of a converted cohort, one Dask task per subject. Metadata columns "
        "are recognised by their usual names; --column names them explicitly. The activity "
        "is decay-corrected to scan start when injection and acquisition times are given. "
        "Exit 0 when every subject has a row, 1 when some failed (their error in Note).",
    )
    p.add_argument("cohort", metavar="COHORT", help="cohort root (folder or s3://bucket/prefix)")
    p.add_argument("-o", "--output", help="output table (.parquet, .csv); default: print")
    p.add_argument("--subjects", type=_ids, help="comma-separated subject ids (default: all)")
    _add_run_args(p)
    p.add_argument(
        "--column",
        action="append",
        type=_column,
        default=[],
        metavar="FIELD=NAME",
        help=f"name a metadata column (or give a unit), repeatable; FIELD is one of: {fields}",
    )
    p.add_argument("--half-life", type=float, metavar="SECONDS", help="radionuclide half-life")
    p.add_argument(
        "--decazes-top",
        default="fov",
        metavar="fov|LABEL",
        help="top of the Decazes fat range: the field of view (default) or a label's top",
    )
    p.set_defaults(run=_norms)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """Where the per-subject tasks run, and how the cohort is read: shared by every command."""
    from petzarr.cohort.executor import add_run_arguments

    add_run_arguments(p)
    p.add_argument("--anon", action="store_true", help="read the cohort unsigned")


def _ids(text: str) -> list[str]:
    ids = [v.strip() for v in text.split(",") if v.strip()]
    if not ids:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated subject ids")
    return ids


def _column(text: str) -> tuple[str, str]:
    from petzarr.analytics.tables.metadata_columns import ColumnMap

    field, sep, name = text.partition("=")
    field, name = field.strip(), name.strip().strip("\"'")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected FIELD=NAME, e.g. weight='Body Weight'"
        )
    known = ", ".join(ColumnMap.__dataclass_fields__)
    if field not in ColumnMap.__dataclass_fields__:
        raise argparse.ArgumentTypeError(f"{field!r} is not a column field; use one of {known}")
    return field, name


def _norms(args: argparse.Namespace) -> int:
    import sys

    from petzarr.analytics.drivers.norms import DENOMINATORS, cohort_norms
    from petzarr.analytics.tables.metadata_columns import ColumnMap
    from petzarr.cohort.errors import InvalidInputError
    from petzarr.cohort.executor import run_from_arguments

    named: dict[str, str] = {}
    for field, name in args.column:
        if named.get(field, name) != name:
            raise InvalidInputError(f"--column {field} given twice ({named[field]!r}, {name!r})")
        named[field] = name
    table = cohort_norms(
        args.cohort,
        subjects=args.subjects,
        run=run_from_arguments(args),
        anon=args.anon,
        columns=ColumnMap(**named) if named else None,
        half_life_s=args.half_life,
        decazes_top=args.decazes_top,
    )
    failed = table.loc[table["Failed"], ["Subject", "Note"]]
    if args.output:
        write_table(table, args.output)
        print(f"{len(table)} subject(s), {len(failed)} failed -> {args.output}")
    else:
        print(_norms_text(table, DENOMINATORS))
    for subject, note in failed.itertuples(index=False):
        print(f"petzarr norms: subject {subject}: {note}", file=sys.stderr)
    return 1 if len(failed) else 0


_NORMS_SHOWN = 20  # rows printed in full; longer tables get a summary


def _norms_text(table: pd.DataFrame, denominators: tuple[str, ...]) -> str:
    if len(table) <= _NORMS_SHOWN:
        shown = table[["Subject", *denominators, "Decay Corrected", "Note"]].rename(
            columns=lambda c: c.replace(" Denominator [Bq/mL]", "")
        )
        shown["Note"] = shown["Note"].map(lambda t: t if len(t) <= 90 else t[:89] + "…")
        with pd.option_context("display.width", 200, "display.max_colwidth", 80):
            return "denominators [Bq/mL]\n" + shown.to_string(
                index=False, float_format="{:.2f}".format
            )
    n_failed = int(table["Failed"].sum())
    lines = [f"{len(table)} subjects, {n_failed} failed; denominators [Bq/mL]:"]
    stats = table[list(denominators)].agg(["count", "median", "min", "max"]).T
    lines.append(stats.to_string(float_format="{:.2f}".format))
    notes = table.loc[~table["Failed"], "Note"].str.split("; ").explode()
    common = notes[notes.astype(bool)].value_counts().head(5)
    if len(common):
        lines.append("most common notes:")
        lines += [f"  {n} x {note}" for note, n in common.items()]
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers") from None


def write_table(df: pd.DataFrame, path: str) -> None:
    """Write a result table as Parquet, or CSV when the name says so."""
    if path.endswith((".csv", ".csv.gz")):
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def _patlak(args: argparse.Namespace) -> int:
    from petzarr.analytics.tables.patlak import patlak_from_files
    from petzarr.cohort.errors import InvalidInputError

    if args.cohort is not None:
        if args.tacs:
            raise InvalidInputError("give COHORT or --tacs, not both")
        return _patlak_cohort(args)
    if not args.tacs or not args.input_functions:
        raise InvalidInputError("give COHORT, or --tacs and --input-functions")
    if args.ki_map:
        raise InvalidInputError("--ki-map needs COHORT: the map is computed from its dynamic PET")
    table = patlak_from_files(
        Path(args.tacs),
        [Path(p) for p in args.input_functions],
        n_frames=args.frames,
        t_star=args.t_star,
        from_injection=args.from_injection,
    )
    write_table(table, args.output)
    print(f"{len(table)} Patlak fits -> {args.output}")
    return 0


def _patlak_cohort(args: argparse.Namespace) -> int:
    from petzarr.analytics.drivers.patlak import cohort_patlak
    from petzarr.analytics.jobs.ki_map import DEFAULT_KI_INPUT_FUNCTION
    from petzarr.analytics.tables.patlak import read_input_function

    users = [read_input_function(Path(p)) for p in args.input_functions or ()] or None
    run = cohort_patlak(
        args.cohort,
        n_frames=args.frames,
        t_star=args.t_star,
        from_injection=args.from_injection,
        input_functions=users,
        groups=args.groups,
        erosion=args.erosion,
        ki_map=args.ki_map,
        ki_input_function=args.ki_input_function or DEFAULT_KI_INPUT_FUNCTION,
        ki_frames=args.ki_frames,
        **_cohort_kwargs(args),
    )
    _print_failed(run.failed)
    write_table(run.table, args.output)
    n = run.table["Subject"].nunique() if len(run.table) else 0
    maps = f", {len(run.ki_maps)} Ki maps written" if args.ki_map else ""
    print(f"{len(run.table)} Patlak fits for {n} subjects -> {args.output}{maps}")
    print(f"{n} subjects done, {len(run.failed)} failed")
    return run.exit_code


def _dynamic_cohort_args(
    p: argparse.ArgumentParser, *, optional_cohort: bool = False, regions: bool = True
) -> None:
    """Options of the dynamic-PET cohort commands (tacs, input-functions, patlak COHORT)."""
    if not optional_cohort:
        p.add_argument("cohort", metavar="COHORT", help="cohort folder or s3:// prefix")
        p.add_argument("--subjects", type=_ids, help="comma-separated subject ids (default all)")
    else:
        p.add_argument("--subjects", type=_ids, help="with COHORT: subject ids (default all)")
    _add_run_args(p)
    if regions:
        p.add_argument("--groups", type=_ids, help="label maps, e.g. total,tissue (default: all)")
        p.add_argument(
            "--erosion", type=_ints, default=[0], help="erosion iterations, e.g. 0,1 (default 0)"
        )


def _cohort_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from petzarr.cohort.executor import run_from_arguments
    from petzarr.cohort.storage import storage_options

    return {
        "subjects": args.subjects,
        "run": run_from_arguments(args),
        "storage_options": storage_options(args.cohort, anon=args.anon),
    }


def _print_failed(failed: dict[str, str]) -> None:
    import sys

    for subject, error in failed.items():
        print(f"FAILED {subject}: {error}", file=sys.stderr)


def _register_tacs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tacs",
        help="time-activity curves of every label of every subject's dynamic PET",
        description="Per-frame mean, STD (ddof 0) and voxel count of every label of every "
        "label map (and its erosions) of every subject's dynamic PET, in one streamed pass "
        "over the 4D data per subject; one long table with hedyPET's columns, one Dask task "
        "per subject. Exit 0 when every subject succeeded, 1 when some failed, 2 on bad usage "
        "or an unusable cohort.",
    )
    _dynamic_cohort_args(p)
    p.add_argument(
        "-o", "--output", default="tacs.parquet", help="output table (default tacs.parquet)"
    )
    p.set_defaults(run=_tacs)


def _tacs(args: argparse.Namespace) -> int:
    from petzarr.analytics.drivers.tacs import cohort_tacs

    run = cohort_tacs(args.cohort, groups=args.groups, erosion=args.erosion, **_cohort_kwargs(args))
    return _write_run(run.table, run.failed, run.exit_code, args.output, "TAC rows")


def _register_input_functions(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "input-functions",
        help="hedyPET's image-derived aorta input functions of every subject",
        description="The aorta of seg_total, split into hedyPET's four segments on the mean "
        "of the frames starting before 40 s, with three cylindrical VOI versions "
        "(aortavois_ml-1_width-3, aortavois_ml-2_width-5, aortavois_ml-full_width-3); their "
        "TACs in the TAC table's columns (hedyPET's input_function_tacs layout).",
    )
    _dynamic_cohort_args(p, regions=False)
    p.add_argument(
        "-o",
        "--output",
        default="input_functions.parquet",
        help="output table (default input_functions.parquet)",
    )
    p.set_defaults(run=_input_functions)


def _input_functions(args: argparse.Namespace) -> int:
    from petzarr.analytics.drivers.input_functions import cohort_input_functions

    run = cohort_input_functions(args.cohort, **_cohort_kwargs(args))
    return _write_run(run.table, run.failed, run.exit_code, args.output, "input-function rows")


def _write_run(
    table: pd.DataFrame, failed: dict[str, str], code: int, output: str, what: str
) -> int:
    _print_failed(failed)
    write_table(table, output)
    n = table["Subject"].nunique() if len(table) else 0
    print(f"{len(table)} {what} for {n} subjects -> {output}")
    print(f"{n} subjects done, {len(failed)} failed")
    return code


def _register_qc(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qc",
        help="per-subject QC figures and PET/CT misalignment flags",
        description="For every subject (one Dask task each): how far the PET is displaced from "
        "where its CT-derived labels put the hot organs (bladder, kidneys, liver, heart, "
        "brain: the shift that best lines their masks up with the uptake), and a PNG of PET "
        "coronal and sagittal MIPs (SUV) and a CT slice through the liver with organ contours "
        "and the PET fused. Writes DIR/<subject>.png, DIR/qc.parquet, DIR/qc.csv and "
        "DIR/index.html (flagged subjects first). Exit 0 when every subject has a row, 1 when "
        "some failed.",
    )
    p.add_argument("cohort", help="cohort folder or s3:// prefix")
    p.add_argument("-o", "--output", required=True, help="folder (or s3:// prefix) to write")
    p.add_argument(
        "--flag-mm", type=float, default=10.0, help="flag offsets above this, mm (default 10)"
    )
    p.add_argument("--subjects", type=_ids, help="comma-separated subject ids (default all)")
    _add_run_args(p)
    p.set_defaults(run=_qc)


def _qc(args: argparse.Namespace) -> int:
    from petzarr.analytics.drivers.qc import cohort_qc

    run = cohort_qc(args.cohort, args.output, **_cohort_kwargs(args), flag_mm=args.flag_mm)
    _print_failed(run.failed)
    table = run.table
    for r in table[table["Flagged"]].to_dict("records"):
        print(f"FLAGGED {r['Subject']}: {r['Reason']}")
    out = args.output.rstrip("/")
    print(f"{len(table)} subjects, {int(table['Flagged'].sum())} flagged -> {out}/qc.parquet")
    print(f"open {out}/index.html to look at every subject, flagged first")
    return run.exit_code


def _register_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="organ statistics of every subject: SUV mean/max/peak, volumes, SUL",
        description="For every label of the chosen segmentation maps of every subject: voxel "
        "count, volume, mean, STD (ddof 0), min, max, exact median and PERCIST peak (1 mL "
        "sphere) in Bq/mL (HU with --group ct), SUV mean/max/peak, TLG and SUL means — one "
        "long table with hedyPET's column names, one Dask task per subject, eroded masks "
        "with --erosion. Exit 0 when every subject succeeded, 1 when some failed, 2 on bad "
        "usage or an unusable cohort.",
    )
    p.add_argument("cohort", help="cohort folder or s3:// prefix")
    p.add_argument(
        "-o", "--output", help="output table (.parquet or .csv); default: print a summary"
    )
    p.add_argument("--group", default="pet", help="image group: pet (default) or ct")
    p.add_argument("--groups", type=_ids, help="segmentation maps, e.g. organs,ribs (default: all)")
    p.add_argument(
        "--erosion", type=_ints, default=[0], help="erosion iterations, e.g. 0,1 (default 0)"
    )
    p.add_argument("--no-median", action="store_true", help="skip the exact median")
    p.add_argument("--no-peak", action="store_true", help="skip the SUVpeak sphere search")
    p.add_argument("--subjects", type=_ids, help="comma-separated subject ids (default all)")
    p.add_argument(
        "--wide",
        action="store_true",
        help="one row per subject, a column per map/label/statistic (organs/liver/SUV Mean; "
        "eroded: organs/liver/e1/SUV Mean), as TotalSegmentator's statistics are read",
    )
    _add_run_args(p)
    p.set_defaults(run=_stats)


# the statistics a printed summary shows: in the group's unit (PET ... [Bq/mL], CT ... [HU])
# and, for PET, as SUV
_SUMMARY_STATISTICS = ("Mean", "Max", "Peak")


def _stats_summary_columns(table: pd.DataFrame) -> list[str]:
    """Value columns of the printed summary: the volume, the unit columns, the SUVs (those
    not all NaN: no Peak column after --no-peak)."""
    unit = [
        c
        for s in _SUMMARY_STATISTICS
        for c in table.columns
        if c.startswith(("PET ", "CT ")) and c.endswith("]") and c.split(" ")[1] == s
    ]
    suv = [f"SUV {s}" for s in _SUMMARY_STATISTICS if f"SUV {s}" in table]
    return [c for c in ("Volume [mL]", *unit, *suv) if c in table and table[c].notna().any()]


def _stats_summary(table: pd.DataFrame, wide: bool) -> str:
    """The long table's key and summary columns, or the wide table's, one row per column."""
    shown = _stats_summary_columns(table)
    if not wide:
        keys = ["Subject", "Task", "Label Name", "Erosion Iterations"]
        return table[[c for c in (*keys, *shown) if c in table]].to_string(max_rows=40)
    from petzarr.analytics.tables.wide import wide_table

    spread = wide_table(table).set_index("Subject")
    # match the ends: statistic names hold a "/" of their own (PET Mean [Bq/mL])
    picked = [c for c in spread.columns if c.endswith(tuple(f"/{s}" for s in shown))]
    head = (
        f"wide table: {len(spread)} subjects x {spread.shape[1]} columns; shown: "
        f"{', '.join(shown)} (-o writes every column)"
    )
    return head + "\n" + spread[picked].T.to_string(max_rows=40)


def _stats(args: argparse.Namespace) -> int:
    import sys

    from petzarr.analytics.drivers.stats import cohort_stats

    start = time.monotonic()
    run = cohort_stats(
        args.cohort,
        **_cohort_kwargs(args),
        group=args.group,
        groups=args.groups,
        erosion=args.erosion,
        median=not args.no_median,
        peak=not args.no_peak,
    )
    for subject, error in run.failed.items():
        print(f"FAILED {subject}: {error}", file=sys.stderr)
    table = run.table
    n_subjects = table["Subject"].nunique() if len(table) else 0
    if args.output:
        if args.wide:
            from petzarr.analytics.tables.wide import wide_table

            table = wide_table(table)
        write_table(table, args.output)
        shape = f" x {table.shape[1]} columns" if args.wide else ""
        print(f"{len(table)} rows{shape} for {n_subjects} subjects -> {args.output}")
    elif len(table):
        print(_stats_summary(table, args.wide))
    print(
        f"{n_subjects} subjects done, {len(run.failed)} failed in {time.monotonic() - start:.1f} s;"
        f" {run.retries} S3 requests retried"
    )
    return run.exit_code


def _register_explore(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explore",
        help="a local web app: cohort organ values by sex and age, QC, subject images",
        description="Serve a web app on this machine (127.0.0.1) over a converted cohort: "
        "an organ's SUV mean/peak or SUL per subject by sex and age group with the groups' "
        "mean, 95 % CI and prediction interval, the QC table (flagged subjects first), and "
        "each subject's PET coronal MIP and axial CT slice with organ contours and the PET "
        "fused (click an organ to choose it), read at the pyramid level that fits the view. "
        "For dynamic PET, with the "
        "tables of petzarr tacs, input-functions and patlak: Ki per organ by group, every "
        "subject's input function, and a subject's TAC and Patlak plot. Without --stats the "
        "organ statistics (erosion 0 and 1) are computed at start. Serves until Ctrl-C.",
    )
    p.add_argument("cohort", metavar="COHORT", help="cohort folder or s3:// prefix")
    p.add_argument("--stats", metavar="FILE", help="long table of petzarr stats (.parquet/.csv)")
    p.add_argument("--qc", metavar="FILE", help="qc.parquet of petzarr qc (or its folder)")
    p.add_argument("--tacs", metavar="FILE", help="dynamic PET: the table of petzarr tacs")
    p.add_argument(
        "--input-functions", metavar="FILE", help="dynamic PET: petzarr input-functions' table"
    )
    p.add_argument("--patlak", metavar="FILE", help="dynamic PET: the table of petzarr patlak")
    p.add_argument("--port", type=int, default=0, help="port to serve on (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.add_argument("--anon", action="store_true", help="read the cohort unsigned")
    p.set_defaults(run=_explore)


def _explore(args: argparse.Namespace) -> int:
    from petzarr.analytics.explore import serve

    served = serve(
        args.cohort,
        port=args.port,
        anon=args.anon,
        stats_path=args.stats,
        qc_path=args.qc,
        tacs_path=args.tacs,
        input_functions_path=args.input_functions,
        patlak_path=args.patlak,
        show=not args.no_browser,
    )
    print(f"petzarr explore: serving {args.cohort} at {served.url} (Ctrl-C stops)", flush=True)
    try:
        while served.thread.is_alive():
            served.thread.join(0.5)
    except KeyboardInterrupt:
        served.stop()
    return 0
