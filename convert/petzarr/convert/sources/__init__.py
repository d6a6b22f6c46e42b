"""Source readers: one per layout, each returning a :class:`~petzarr.convert.plan.CohortSource`."""

from __future__ import annotations

from typing import Any

from petzarr.cohort.errors import InvalidInputError
from petzarr.convert.plan import CohortSource
from petzarr.convert.sources.enhance import is_enhance, read_enhance
from petzarr.convert.sources.manifest import read_manifest

__all__ = ["read_enhance", "read_manifest", "read_source"]


def read_source(
    uri: str, options: dict[str, Any] | None = None, *, layout: str | None = None
) -> CohortSource:
    """Read a cohort source, detecting its layout unless ``layout`` names it.

    A ``.csv`` is a manifest; a folder or prefix with ``imaging-data/images/CT`` is ENHANCE.
    """
    options = dict(options or {})
    if layout == "manifest" or (layout is None and uri.lower().endswith(".csv")):
        return read_manifest(uri, options)
    if layout == "enhance" or (layout is None and is_enhance(uri, options)):
        return read_enhance(uri, options)
    raise InvalidInputError(
        f"{uri}: not a known cohort layout (expected an ENHANCE.PET folder with "
        "imaging-data/images/CT, or a manifest .csv with columns subject, ct, pet, seg_<group>)"
    )
