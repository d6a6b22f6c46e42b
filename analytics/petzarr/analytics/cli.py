"""Analytics subcommands of ``petzarr``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the analytics subcommands to the ``petzarr`` parser."""
