"""Conversion subcommands of ``petzarr``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the conversion subcommands to the ``petzarr`` parser."""
