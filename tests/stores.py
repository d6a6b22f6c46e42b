"""The store URL of a subject in a cohort, as a driver resolves it: through the index."""

from __future__ import annotations

from os import PathLike

from petzarr.cohort.index import read_index
from petzarr.cohort.storage import join


def store_url(cohort: str | PathLike[str], subject: str, options: dict | None = None) -> str:
    index = read_index(str(cohort), options)
    (store,) = index.loc[index["subject"] == subject, "store"]
    return join(str(cohort), store)
