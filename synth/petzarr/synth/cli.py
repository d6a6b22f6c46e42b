"""The ``petzarr synth`` subcommand: write a synthetic cohort with its truth."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``synth`` to the ``petzarr`` parser."""
    p = sub.add_parser(
        "synth",
        help="write a synthetic cohort (ENHANCE.PET or hedyPET layout)",
        description="Write a synthetic cohort, deterministic per seed. --layout enhance "
        "(default): the ENHANCE.PET 1.6k layout (CT, PET, 7 segmentation groups, labels.json, "
        "PT/CT-details.xlsx). --layout hedypet: hedyPET's static and dynamic BIDS datasets "
        "(CT, static PET, TotalSegmentator total/tissue/body maps, 69-frame dynamic PET from "
        "a two-tissue compartment model per organ with known Ki).",
    )
    p.add_argument("dest", help="folder to write")
    p.add_argument("--subjects", type=int, default=3, help="number of subjects (default 3)")
    p.add_argument(
        "--size",
        default="small",
        help="tiny (tests), small (demos, the default), full (real dimensions); hedypet also "
        "half (a 220x220x320x69 dynamic series)",
    )
    p.add_argument("--layout", choices=("enhance", "hedypet"), default="enhance")
    p.add_argument("--dynamic-root", help="hedypet: write the dynamic dataset here (default: DEST)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--shift-pet",
        action="append",
        default=[],
        metavar="SUBJECT:DZ,DY,DX",
        help="simulate patient motion: displace SUBJECT's PET by DZ,DY,DX mm (RAS+ axes, "
        "e.g. 0002:0,12,0); repeat for more subjects; recorded in the truth",
    )
    p.set_defaults(run=_synth)


def parse_shift(text: str) -> tuple[str, tuple[float, float, float]]:
    """``"0002:0,12,0"`` -> ``("0002", (0.0, 12.0, 0.0))``.

    >>> parse_shift("0002:0,12,-3.5")
    ('0002', (0.0, 12.0, -3.5))
    """
    from petzarr.cohort.errors import InvalidInputError

    subject, _, mm = text.partition(":")
    try:
        dz, dy, dx = (float(v) for v in mm.split(","))
    except ValueError:
        raise InvalidInputError(
            f"--shift-pet {text!r}: expected SUBJECT:DZ,DY,DX in mm, e.g. 0002:0,12,0"
        ) from None
    return subject, (dz, dy, dx)


def _synth(args: argparse.Namespace) -> int:
    from petzarr.synth import write_enhance_cohort, write_hedypet_cohort

    shifts = dict(parse_shift(t) for t in args.shift_pet)
    if args.layout == "hedypet":
        hedy = write_hedypet_cohort(
            args.dest,
            dynamic_root=args.dynamic_root,
            subjects=args.subjects,
            size=args.size,
            seed=args.seed,
            pet_shift_mm=shifts,
        )
        print(f"wrote {len(hedy.subjects)} {args.size} hedyPET subjects to {args.dest}")
        return 0
    truth = write_enhance_cohort(
        args.dest, subjects=args.subjects, size=args.size, seed=args.seed, pet_shift_mm=shifts
    )
    print(f"wrote {len(truth.subjects)} {args.size} subjects to {args.dest}")
    return 0
