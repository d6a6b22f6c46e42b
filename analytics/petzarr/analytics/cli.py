"""Analytics subcommands of ``petzarr``: stats, norms, tacs, patlak."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

__all__ = ["register", "write_table"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the analytics subcommands to the ``petzarr`` parser."""
    p = sub.add_parser(
        "patlak",
        help="Patlak Ki from TAC and input-function tables",
        description="Patlak graphical analysis for every region x input function x number of "
        "regression frames at once. TACS: region TACs (petzarr/hedyPET TAC columns, or "
        "hedyPET's region_tacs layout); INPUT_FUNCTIONS: input-function TACs in the same "
        "columns, or a CSV of time [s], activity. Default = hedyPET's definition: time in "
        "minutes, cumulative Simpson integral of the input function from the first frame "
        "middle, OLS over the last n frames (n = 2..8).",
    )
    p.add_argument("--tacs", required=True, help="region TAC table (.parquet, .csv, .csv.gz)")
    p.add_argument(
        "--input-functions",
        required=True,
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
    p.set_defaults(run=_patlak)


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
    from petzarr.analytics.patlak import patlak_from_files

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
