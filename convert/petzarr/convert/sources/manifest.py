"""A manifest CSV describing any cohort: ``subject, ct, pet, seg_<group>...`` plus metadata.

Paths may be absolute, URLs, or relative to the manifest's folder. Other columns are the
subject's metadata (age, sex, weight, ...). Label tables come from ``labels.json`` beside
the manifest when there is one.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.labels import load_labels
from petzarr.cohort.layout import SEG_PREFIX, group_name
from petzarr.cohort.storage import filesystem, is_remote, join
from petzarr.convert.plan import CohortSource, SubjectSource

__all__ = ["read_manifest"]

REQUIRED = ("subject", "ct", "pet")


def read_manifest(uri: str, options: dict[str, Any] | None = None) -> CohortSource:
    """Read a manifest CSV into a :class:`CohortSource`."""
    options = dict(options or {})
    fs, path = filesystem(uri, options)
    with fs.open(path, "rb") as f:
        df = pd.read_csv(io.BytesIO(f.read()), dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InvalidInputError(f"{uri}: manifest lacks column(s) {', '.join(missing)}")
    if df["subject"].duplicated().any():
        dup = sorted(set(df.loc[df["subject"].duplicated(), "subject"]))
        raise InvalidInputError(f"{uri}: subject(s) listed twice: {', '.join(dup[:5])}")
    base = uri.rsplit("/", 1)[0] if "/" in uri else "."
    seg_cols = [c for c in df.columns if c.startswith(SEG_PREFIX)]
    meta_cols = [c for c in df.columns if c not in (*REQUIRED, *seg_cols)]

    def resolve(value: str) -> str | None:
        value = value.strip()
        if not value:
            return None
        if is_remote(value) or value.startswith("/"):
            return value
        return join(base, value)

    subjects = tuple(
        SubjectSource(
            subject=rec["subject"].strip(),
            ct=resolve(rec["ct"]),
            pet=resolve(rec["pet"]),
            segs={group_name(c): resolve(rec[c]) for c in seg_cols},
            metadata={c: _number(rec[c]) for c in meta_cols if rec[c] != ""},
        )
        for rec in df.to_dict("records")
    )
    labels: dict[str, dict[int, str]] = {}
    labels_path = f"{path.rsplit('/', 1)[0]}/labels.json" if "/" in path else "labels.json"
    if fs.exists(labels_path):
        with fs.open(labels_path, "rb") as f:
            labels = load_labels(f, where=join(base, "labels.json"))
    return CohortSource(
        uri=uri, layout="manifest", subjects=subjects, labels=labels, options=options
    )


def _number(text: str) -> Any:
    try:
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    except ValueError:
        return text
