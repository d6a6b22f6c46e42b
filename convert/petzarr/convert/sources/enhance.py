"""The ENHANCE.PET 1.6k layout, local or in ``s3://enhance-pet-1-6k``.

::

    labels.json  CT-details.xlsx  PT-details.xlsx
    imaging-data/images/{CT,PT}/NNNN.nii.gz
    imaging-data/ground-truth/<Group>/NNNN.nii.gz      7 groups, on the CT grid
"""

from __future__ import annotations

import io
import re
from typing import Any

import pandas as pd

from petzarr.cohort.errors import InvalidInputError, MissingSourceError
from petzarr.cohort.labels import load_labels
from petzarr.cohort.layout import ENHANCE_GROUPS
from petzarr.cohort.storage import filesystem, join
from petzarr.convert.plan import CohortSource, SubjectSource

__all__ = ["LICENCES", "is_enhance", "read_enhance"]

IMAGES = "imaging-data/images"
GROUND_TRUTH = "imaging-data/ground-truth"
DETAILS = ("PT-details.xlsx", "CT-details.xlsx")
LICENCES = {"autopet": "CC BY-NC 4.0", "leipzig": "CC BY 4.0", "careggi": "CC BY 4.0"}
_CASE = re.compile(r"^(\d+)\.nii(\.gz)?$")


def is_enhance(uri: str, options: dict[str, Any]) -> bool:
    fs, path = filesystem(uri, options)
    return fs.isdir(f"{path.rstrip('/')}/{IMAGES}/CT")


def _cases(fs: Any, folder: str) -> dict[str, str]:
    """``{case id: path}`` of the NIfTI files in ``folder`` (empty when it is absent)."""
    try:
        names = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return {}
    found = {}
    for p in names:
        m = _CASE.match(p.rsplit("/", 1)[-1])
        if m:
            found[m.group(1)] = p
    return found


def case_files(uri: str, options: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``{folder: {case id: url}}`` for CT, PT and the seven ground-truth groups."""
    fs, root = filesystem(uri, options)
    root = root.rstrip("/")
    proto = uri.split("://", 1)[0] + "://" if "://" in uri else ""
    folders = {"CT": f"{IMAGES}/CT", "PT": f"{IMAGES}/PT"} | {
        g.folder: f"{GROUND_TRUTH}/{g.folder}" for g in ENHANCE_GROUPS
    }
    return {
        name: {sid: proto + p for sid, p in _cases(fs, f"{root}/{sub}").items()}
        for name, sub in folders.items()
    }


def _read_details(fs: Any, path: str) -> pd.DataFrame | None:
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as f:
        df = pd.read_excel(io.BytesIO(f.read()), dtype={"Patient": str})
    if "Patient" not in df.columns:
        raise InvalidInputError(f"{path}: no 'Patient' column (found {list(df.columns)})")
    return df


def _subject_id(value: Any) -> str:
    text = str(value).strip()
    return text.zfill(4) if text.isdigit() else text


def read_enhance(uri: str, options: dict[str, Any] | None = None) -> CohortSource:
    """Find every case of an ENHANCE-layout cohort and its spreadsheet rows.

    A case is any id with a CT image; a case missing its PET or one of the seven
    segmentations still gets a task, and fails alone with a message saying what is missing.
    """
    options = dict(options or {})
    fs, root = filesystem(uri, options)
    root = root.rstrip("/")

    labels_path = f"{root}/labels.json"
    if not fs.exists(labels_path):
        raise MissingSourceError(f"{join(uri, 'labels.json')}: missing; ENHANCE cohorts ship one")
    with fs.open(labels_path, "rb") as f:
        labels = load_labels(f, where=join(uri, "labels.json"))

    files = case_files(uri, options)
    ct, pt = files.pop("CT"), files.pop("PT")
    segs = {g.name: files[g.folder] for g in ENHANCE_GROUPS}
    rows: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for name in DETAILS:
        df = _read_details(fs, f"{root}/{name}")
        if df is None:
            warnings.append(f"{join(uri, name)}: missing; {_DETAILS_HOLD[name]}")
            continue
        prefix = "" if name.startswith("PT") else "CT "
        listed = set()
        for rec in df.to_dict("records"):
            sid = _subject_id(rec.pop("Patient"))
            listed.add(sid)
            target = rows.setdefault(sid, {})
            for k, v in rec.items():
                if not (isinstance(v, float) and v != v):  # drop NaN cells
                    target.setdefault(prefix + str(k) if prefix and k in target else str(k), v)
        for sid in sorted(set(ct) - listed):
            warnings.append(f"subject {sid}: no row in {join(uri, name)}; {_DETAILS_HOLD[name]}")

    subjects = []
    for sid in sorted(ct):
        meta = dict(rows.get(sid, {}))
        source = str(meta.get("Data-Source", "")).strip().lower()
        if source in LICENCES:
            meta["Licence"] = LICENCES[source]
        subjects.append(
            SubjectSource(
                subject=sid,
                ct=ct[sid],
                pet=pt.get(sid),
                segs={g: cases.get(sid) for g, cases in segs.items()},
                metadata=meta,
            )
        )
    return CohortSource(
        uri=uri,
        layout="enhance",
        subjects=tuple(subjects),
        labels=labels,
        options=options,
        warnings=tuple(warnings),
    )


# what a user loses without each spreadsheet (row)
_DETAILS_HOLD = {
    "PT-details.xlsx": "without weight, height and injected activity, SUV and SUL are NaN",
    "CT-details.xlsx": "the CT acquisition details (kVp, exposure) are not recorded",
}
