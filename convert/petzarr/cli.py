"""The ``petzarr`` command: one parser, subcommands contributed by each side.

``petzarr.synth.cli`` adds synth; ``petzarr.convert.cli`` adds convert/verify/info/gc;
``petzarr.analytics.cli`` adds the analytics commands; ``petzarr.demo`` the demo of them all.
Exit codes: 0 all done, 1 some subjects failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from petzarr.cli_errors import explain


def build_parser() -> argparse.ArgumentParser:
    from petzarr import demo
    from petzarr.analytics import cli as analytics_cli
    from petzarr.convert import cli as convert_cli
    from petzarr.synth import cli as synth_cli

    parser = argparse.ArgumentParser(
        prog="petzarr",
        description="Whole-body PET/CT cohorts as cloud-native Zarr, and cohort analytics on Dask.",
        epilog="petzarr --debug COMMAND ... (or PETZARR_DEBUG=1) shows the traceback of an error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    synth_cli.register(sub)
    convert_cli.register(sub)
    analytics_cli.register(sub)
    demo.register(sub)
    sub.add_parser(
        "submit",
        help="run a driver script on a Dask cluster (the same as dask-submit)",
        description="petzarr submit [--detach] [--log PATH] [SCHEDULER_ADDRESS] SCRIPT [ARGS...]"
        ": see dask-submit --help.",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words[:1] or os.environ.get("PETZARR_DEBUG", "") not in ("", "0")
    words = [w for w in words[:1] if w != "--debug"] + words[1:]
    if words[:1] == ["submit"]:  # every word after it is dask-submit's (and the script's)
        from petzarr.submit import main as submit

        return submit(words[1:], prog="petzarr submit")
    parser = build_parser()
    args = parser.parse_args(words)
    try:
        return int(args.run(args))
    except Exception as exc:
        said = None if debug else explain(exc)
        if said is None:
            raise
        message, code = said
        print(f"petzarr {args.command}: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
