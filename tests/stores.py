"""The store URL of a subject in a cohort, as a driver resolves it for its per-subject job."""

from __future__ import annotations

from os import PathLike

from petzarr.cohort import layout
from petzarr.cohort.storage import join


def store_url(cohort: str | PathLike[str], subject: str) -> str:
    return join(str(cohort), layout.subject_store(subject))
