"""Source readers: one per layout, each returning a :class:`~petzarr.convert.plan.CohortSource`."""

from __future__ import annotations

from typing import Any

from petzarr.cohort.errors import InvalidInputError, MissingSourceError
from petzarr.cohort.storage import filesystem
from petzarr.convert.plan import CohortSource
from petzarr.convert.sources.enhance import is_enhance, read_enhance
from petzarr.convert.sources.hedypet import is_hedypet, read_hedypet
from petzarr.convert.sources.manifest import read_manifest

__all__ = ["LAYOUTS", "read_enhance", "read_hedypet", "read_manifest", "read_source"]

LAYOUTS = ("enhance", "hedypet", "manifest")


def read_source(
    uri: str,
    options: dict[str, Any] | None = None,
    *,
    layout: str | None = None,
    dynamic_root: str | None = None,
) -> CohortSource:
    """Read a cohort source, detecting its layout unless ``layout`` names it.

    A ``.csv`` is a manifest; a folder or prefix with ``imaging-data/images/CT`` is ENHANCE;
    a BIDS root (``participants.tsv`` or ``dataset_description.json`` beside ``sub-*``
    folders) is hedyPET, whose dynamic series may live under a second ``dynamic_root``.
    """
    options = dict(options or {})
    fs, path = filesystem(uri, options)
    if not fs.exists(path):
        raise MissingSourceError(f"{uri}: does not exist")
    if layout == "manifest" or (layout is None and uri.lower().endswith(".csv")):
        found = "manifest"
    elif layout == "enhance" or (layout is None and is_enhance(uri, options)):
        found = "enhance"
    elif layout == "hedypet" or (layout is None and is_hedypet(uri, options)):
        return read_hedypet(uri, options, dynamic_root=dynamic_root)
    else:
        raise InvalidInputError(
            f"{uri}: not a known cohort layout (expected an ENHANCE.PET folder with "
            "imaging-data/images/CT, a hedyPET/BIDS root with participants.tsv and sub-* "
            "folders, or a manifest .csv with columns subject, ct, pet, seg_<group>)"
        )
    if dynamic_root is not None:
        raise InvalidInputError(
            f"{uri}: a dynamic root (--dynamic-root) belongs to hedyPET/BIDS sources, "
            f"not to the {found} layout"
        )
    return read_manifest(uri, options) if found == "manifest" else read_enhance(uri, options)
