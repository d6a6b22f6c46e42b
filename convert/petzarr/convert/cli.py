"""Conversion subcommands of ``petzarr``: convert, verify, info, gc."""

from __future__ import annotations

import argparse
import json
import sys

from petzarr.cohort.executor import add_run_arguments, run_from_arguments

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the conversion subcommands to the ``petzarr`` parser."""
    p = sub.add_parser(
        "convert",
        help="convert a NIfTI cohort to a petzarr Zarr cohort",
        description="Convert SOURCE (an ENHANCE-layout folder or s3:// prefix, a hedyPET/BIDS "
        "root, or a manifest CSV with columns subject, ct, pet, seg_<group>...) into a "
        "petzarr cohort at DEST "
        "(folder or s3:// prefix): one Zarr store per subject, written once, verified, then "
        "published by its index row. Re-running skips subjects whose sources are unchanged. "
        "Exit 0: every subject published; 1: some failed (the rest published); 2: bad usage.",
    )
    p.add_argument(
        "source", help="ENHANCE-layout folder/prefix, hedyPET/BIDS static root, or manifest .csv"
    )
    p.add_argument("dest", help="cohort folder or s3:// prefix")
    p.add_argument("--subjects", type=_ids, help="comma-separated subject ids (default all)")
    add_run_arguments(p)
    p.add_argument("--anon", action="store_true", help="read the source unsigned (public buckets)")
    p.add_argument(
        "--overwrite", action="store_true", help="reconvert subjects even when unchanged"
    )
    p.add_argument(
        "--allow-oblique",
        action="store_true",
        help="store oblique volumes on their closest canonical grid instead of failing",
    )
    p.add_argument(
        "--layout",
        choices=("enhance", "hedypet", "manifest"),
        help="source layout (default: detect)",
    )
    p.add_argument(
        "--dynamic-root",
        metavar="DYNAMIC_ROOT",
        help="hedyPET: the dynamic BIDS dataset, when kept apart from SOURCE (the static one)",
    )
    p.add_argument(
        "--extra-images",
        action="store_true",
        help="hedyPET/BIDS: also store each subject's further volumes (MRI, topogram) as "
        "groups of their own",
    )
    p.add_argument(
        "--no-pyramid",
        action="store_true",
        help="write level 0 only: no lower-resolution levels and no OME image-labels "
        "(petzarr pyramid adds them later)",
    )
    p.set_defaults(run=_convert)

    p = sub.add_parser(
        "pyramid",
        help="add pyramid levels and OME image-labels to a cohort converted without them",
        description="Give every subject of COHORT (folder or s3:// prefix) what a conversion "
        "writes by default and `--no-pyramid` leaves out: lower-resolution levels of the CT "
        "and PET (OME-Zarr 0.5 multiscales) and each label map as an OME image-label. One "
        "task per subject; level 0 is not touched, and a group gains its levels only once "
        "they are written and read back. Exit 0: done; 1: some subjects failed.",
    )
    p.add_argument("cohort", help="cohort folder or s3:// prefix")
    p.add_argument("--subjects", type=_ids, help="comma-separated subject ids (default all)")
    add_run_arguments(p)
    p.set_defaults(run=_pyramid)

    p = sub.add_parser(
        "verify",
        help="check a source cohort's integrity before converting",
        description="The dataset's own checks on an ENHANCE-layout SOURCE: expected files and "
        "counts, ids that pair across CT/PT and every group, readable headers, segmentation "
        "grids equal to their CT's, PET/CT fields of view overlapping, label values inside "
        "labels.json. Prints a table of problems; exit 1 if there are any.",
    )
    p.add_argument("source", help="ENHANCE-layout folder or s3:// prefix")
    p.add_argument("--anon", action="store_true", help="read the source unsigned")
    p.add_argument("--json", action="store_true", help="print the problems as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_verify)

    p = sub.add_parser(
        "info",
        help="summarise a petzarr cohort",
        description="Print a summary of a converted cohort: subjects, groups, grids, last run.",
    )
    p.add_argument("cohort", help="cohort folder or s3:// prefix")
    p.add_argument("--anon", action="store_true", help="read unsigned")
    p.set_defaults(run=_info)

    p = sub.add_parser(
        "gc",
        help="delete subject stores the index no longer names",
        description="Delete every subject store under COHORT that its index does not name: "
        "versions a re-conversion replaced, and ones a killed run wrote but never published "
        "(each run already deletes those of the subjects it converts). Not while a conversion "
        "into COHORT runs: its new versions are not in the index yet.",
    )
    p.add_argument("cohort", help="cohort folder or s3:// prefix")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted, only")
    p.set_defaults(run=_gc)


def _ids(text: str) -> list[str]:
    ids = [s.strip() for s in text.split(",") if s.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give at least one subject id")
    return ids


def _convert(args: argparse.Namespace) -> int:
    from petzarr.convert.job import convert_cohort
    from petzarr.convert.plan import ConvertOptions

    report = convert_cohort(
        args.source,
        args.dest,
        subjects=args.subjects,
        run=run_from_arguments(args),
        anon=args.anon,
        layout_name=args.layout,
        dynamic_root=args.dynamic_root,
        options=ConvertOptions(
            overwrite=args.overwrite,
            allow_oblique=args.allow_oblique,
            extra_images=args.extra_images,
            pyramid=not args.no_pyramid,
        ),
    )
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    for r in report.results:
        for warning in r.warnings:
            print(f"WARNING {r.subject}: {warning}", file=sys.stderr)
    for r in report.failed:
        print(f"FAILED {r.subject}: {r.error}", file=sys.stderr)
    print(report.summary())
    return report.exit_code


def _pyramid(args: argparse.Namespace) -> int:
    from petzarr.convert.add_pyramid import add_pyramids

    done, failed = add_pyramids(args.cohort, subjects=args.subjects, run=run_from_arguments(args))
    for subject, error in failed.items():
        print(f"FAILED {subject}: {error}", file=sys.stderr)
    gained = sum(bool(groups) for groups in done.values())
    print(
        f"{len(done) + len(failed)} subjects: {gained} gained a pyramid, "
        f"{len(done) - gained} had one, {len(failed)} failed"
    )
    return 1 if failed else 0


def _verify(args: argparse.Namespace) -> int:
    from petzarr.cohort.storage import storage_options
    from petzarr.convert.verify import verify_source

    problems = verify_source(
        args.source, storage_options(args.source, anon=args.anon), progress=not args.no_progress
    )
    if args.json:
        print(json.dumps([p.to_dict() for p in problems], indent=2))
    elif problems:
        width = max(len(p.where) for p in problems)
        print(f"{'WHERE':<{width}}  CHECK            PROBLEM")
        for p in problems:
            print(f"{p.where:<{width}}  {p.check:<15}  {p.message}")
        print(f"{len(problems)} problem(s) in {args.source}")
    else:
        print(f"{args.source}: no problems found")
    return 1 if problems else 0


def _info(args: argparse.Namespace) -> int:
    from petzarr.cohort import open_cohort
    from petzarr.cohort.storage import storage_options

    cohort = open_cohort(args.cohort, storage_options=storage_options(args.cohort, anon=args.anon))
    print(cohort.describe())
    return 0


def _gc(args: argparse.Namespace) -> int:
    from petzarr.cohort import open_cohort
    from petzarr.cohort.storage import storage_options
    from petzarr.convert.publish import collect_garbage

    options = storage_options(args.cohort)
    open_cohort(args.cohort, storage_options=options)  # refuses what is not a cohort
    stale = collect_garbage(args.cohort, options, dry_run=args.dry_run)
    for path in stale:
        print(path)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{args.cohort}: {verb} {len(stale)} store(s) the index does not name")
    return 0
