"""The store URL of a subject in a cohort, as a driver resolves it: through the index."""

from __future__ import annotations

from os import PathLike

from petzarr.cohort import open_cohort


def store_url(cohort: str | PathLike[str], subject: str, options: dict | None = None) -> str:
    return open_cohort(str(cohort), storage_options=options).store_url(subject)
