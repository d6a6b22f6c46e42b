"""hedyPET (or any BIDS PET/CT dataset laid out like it), under one root or two.

hedyPET ships as two BIDS datasets, "static" and "dynamic"; a user may keep them under one
root or two. Static root::

    participants.tsv                                   participant_id, age, sex, weight, height
    sub-XXX/ses-quadra/pet/*rec-acstatPSF_pet.nii.gz   static PET (+ .json sidecar)
    sub-XXX/ses-quadra/ct/*br38f_ct.nii.gz             CT (other ct/ files: extra images)
    sub-XXX/ses-vida/anat/*.nii.gz                     MRI (extra images)
    derivatives/totalsegmentator/sub-XXX/**/*br38f*seg-{total,tissue,body}*_dseg.nii.gz
                                                       on the CT grid, with .tsv tables
                                                       (index, name)

Dynamic root (the same root, or a second one)::

    sub-XXX/ses-quadra/pet/*acdyn*_pet.nii.gz          4D series (+ .json sidecar with
                                                       FrameTimesStart, FrameDuration)

Where several files fit a role, one in ``ses-quadra`` wins, then a PSF reconstruction (PET)
or the ``br38f`` kernel (CT, maps), then the first by name. Only listings and
``participants.tsv`` are read here; sidecars and voxels are read by the worker, so a bad
file fails its subject alone.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from petzarr.cohort.config import get_int
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.labels import parse_labels
from petzarr.cohort.layout import SEG_PREFIX, group_name
from petzarr.cohort.storage import filesystem, is_remote, join
from petzarr.convert.bids import sidecar_of
from petzarr.convert.plan import CohortSource, SubjectSource

__all__ = ["HEDYPET_GROUPS", "is_hedypet", "read_hedypet"]

HEDYPET_GROUPS = ("total", "tissue", "body")  # TotalSegmentator tasks -> seg_<group>
PARTICIPANTS = "participants.tsv"
SEGMENTATIONS = "derivatives/totalsegmentator"
SESSION = "ses-quadra"
_NII = r"\.nii(\.gz)?$"
_SUBJECT = re.compile(r"^sub-[A-Za-z0-9]+$")
_MISSING = {"", "n/a", "na", "nan"}


def is_hedypet(uri: str, options: dict[str, Any]) -> bool:
    """A BIDS root: ``participants.tsv`` or ``dataset_description.json`` beside ``sub-*``."""
    fs, root = filesystem(uri, options)
    root = root.rstrip("/")
    if not any(fs.exists(f"{root}/{n}") for n in (PARTICIPANTS, "dataset_description.json")):
        return False
    return bool(_subject_dirs(fs, root))


def read_hedypet(
    uri: str, options: dict[str, Any] | None = None, *, dynamic_root: str | None = None
) -> CohortSource:
    """Find every subject of a hedyPET-layout dataset (static root, optional dynamic root).

    Subjects are the ``sub-*`` folders of either root and the rows of ``participants.tsv``.
    A subject without a dynamic series converts its static groups only; one missing its CT,
    static PET or a segmentation map still gets a task and fails alone, saying what is
    missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "sub-001/ses-quadra/ct").mkdir(parents=True)
    >>> _ = (root / "participants.tsv").write_text("participant_id\\tage\\nsub-001\\t42\\n")
    >>> source = read_hedypet(str(root))
    >>> [(s.subject, s.metadata) for s in source.subjects]
    [('sub-001', {'age': 42})]
    """
    options = dict(options or {})
    fs, root = filesystem(uri, options)
    root = root.rstrip("/")
    roots = [(uri, fs, root)]
    if dynamic_root is not None:
        if is_remote(dynamic_root) != is_remote(uri):
            raise InvalidInputError(
                f"{dynamic_root}: keep the dynamic root on the same storage as {uri} "
                "(both local, or both object storage)"
            )
        dfs, droot = filesystem(dynamic_root, options)
        if not dfs.isdir(droot):
            raise InvalidInputError(f"{dynamic_root}: no such folder (--dynamic-root)")
        roots.append((dynamic_root, dfs, droot.rstrip("/")))

    rows: dict[str, dict[str, Any]] = {}
    for _, f, r in reversed(roots):  # the static root's participants.tsv wins
        for sid, row in _participants(f, r).items():
            rows[sid] = row | rows.get(sid, {})

    static = _list_subjects(fs, root, _proto(uri))
    dynamic = static
    if len(roots) > 1:
        dynamic = _list_subjects(roots[1][1], roots[1][2], _proto(roots[1][0]))
    seg_files = _list_subjects(fs, f"{root}/{SEGMENTATIONS}", _proto(uri))
    maps = {
        sid: {g: m for g in HEDYPET_GROUPS if (m := _pick(files, _seg_pattern(g, _NII)))}
        for sid, files in seg_files.items()
    }
    labels = _label_tables(fs, f"{root}/{SEGMENTATIONS}", maps, seg_files, uri=uri)
    groups = [g for g in HEDYPET_GROUPS if g in labels or any(g in m for m in maps.values())]

    subjects = []
    for sid in sorted(set(static) | set(dynamic) | set(rows)):
        files = static.get(sid, [])
        pet = _pick(files, rf"/pet/[^/]*_rec-acstatPSF_pet{_NII}") or _pick(
            files, rf"/pet/[^/]*acstat[^/]*_pet{_NII}"
        )
        ct = _pick(files, rf"/ct/[^/]*br38f[^/]*_ct{_NII}") or _pick(files, rf"/ct/[^/]*_ct{_NII}")
        pet_dynamic = _pick(dynamic.get(sid, []), rf"/pet/[^/]*acdyn[^/]*_pet{_NII}")
        sidecars = {}
        if pet and sidecar_of(pet) in files:  # optional: dose, units, times
            sidecars["pet"] = sidecar_of(pet)
        if pet_dynamic:  # required (frame times): the worker says so when it is missing
            sidecars["pet_dynamic"] = sidecar_of(pet_dynamic)
        subjects.append(
            SubjectSource(
                subject=sid,
                ct=ct,
                pet=pet,
                segs={g: maps.get(sid, {}).get(g) for g in groups},
                metadata=rows.get(sid, {}),
                pet_dynamic=pet_dynamic,
                sidecars=sidecars,
                images=_extra_images(files, taken={ct, pet}),
            )
        )
    return CohortSource(
        uri=uri,
        layout="hedypet",
        subjects=tuple(subjects),
        labels={g: labels.get(g, {}) for g in groups},
        options=options,
    )


def _proto(uri: str) -> str:
    return uri.split("://", 1)[0] + "://" if "://" in uri else ""


def _subject_dirs(fs: Any, root: str) -> list[str]:
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        return []
    return sorted(
        e["name"].rstrip("/")
        for e in entries
        if e.get("type") == "directory" and _SUBJECT.match(e["name"].rstrip("/").rsplit("/")[-1])
    )


def _list_subjects(fs: Any, root: str, proto: str) -> dict[str, list[str]]:
    """``{subject: [every file url under sub-XXX/]}``, listed in threads (one call each)."""
    dirs = _subject_dirs(fs, root)
    with ThreadPoolExecutor(get_int("sources.list_threads")) as pool:
        found = list(pool.map(lambda d: fs.find(d), dirs))
    return {
        d.rsplit("/", 1)[-1]: sorted(proto + p for p in paths)
        for d, paths in zip(dirs, found, strict=True)
    }


def _rank(path: str) -> tuple[bool, bool, str]:
    name = path.rsplit("/", 1)[-1]
    preferred = "PSF" in name or "br38f" in name
    return (f"/{SESSION}/" not in path, not preferred, path)


def _pick(paths: Iterable[str], pattern: str) -> str | None:
    regex = re.compile(pattern)
    found = [p for p in paths if regex.search(p)]
    return min(found, key=_rank) if found else None


def _participants(fs: Any, root: str) -> dict[str, dict[str, Any]]:
    path = f"{root}/{PARTICIPANTS}"
    if not fs.exists(path):
        return {}
    with fs.open(path, "rb") as f:
        df = pd.read_csv(io.BytesIO(f.read()), sep="\t", dtype=str, keep_default_na=False)
    if "participant_id" not in df.columns:
        raise InvalidInputError(f"{path}: no participant_id column (found {list(df.columns)})")
    rows: dict[str, dict[str, Any]] = {}
    for rec in df.to_dict("records"):
        sid = str(rec.pop("participant_id")).strip()
        if not sid.startswith("sub-"):
            sid = f"sub-{sid}"
        rows[sid] = {k: _value(v) for k, v in rec.items() if v.strip().lower() not in _MISSING}
    return rows


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    except ValueError:
        return text


def _seg_pattern(group: str, ext: str) -> str:
    return rf"(^|[/_])seg-{group}_[^/]*dseg{ext}"


def _label_tables(
    fs: Any,
    folder: str,
    maps: dict[str, dict[str, str]],
    listing: dict[str, list[str]],
    *,
    uri: str,
) -> dict[str, dict[int, str]]:
    """Each group's ``index``/``name`` table: the dataset-level ``.tsv``, else a map's own."""
    try:
        shared = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".tsv"))
    except FileNotFoundError:
        shared = []
    listed = {p for files in listing.values() for p in files}
    own = {g: sorted(_tsv_of(m[g]) for m in maps.values() if g in m) for g in HEDYPET_GROUPS}
    tables: dict[str, dict[int, str]] = {}
    for g in HEDYPET_GROUPS:
        regex = re.compile(_seg_pattern(g, r"\.tsv$"))
        found = [p for p in shared if regex.search(p)] + [p for p in own[g] if p in listed]
        if found:
            tables[g] = _read_table(fs, found[0], group=g, where=join(uri, SEGMENTATIONS))
    return tables


def _tsv_of(image: str) -> str:
    return re.sub(_NII, ".tsv", image)


def _read_table(fs: Any, path: str, *, group: str, where: str) -> dict[int, str]:
    with fs.open(path, "rb") as f:
        df = pd.read_csv(io.BytesIO(f.read()), sep="\t", dtype=str, keep_default_na=False)
    if not {"index", "name"} <= set(df.columns):
        raise InvalidInputError(f"{path}: a label table needs columns index and name")
    table = {
        i: n for i, n in zip(df["index"].str.strip(), df["name"].str.strip(), strict=True) if i
    }
    table = {i: n for i, n in table.items() if i.lstrip("-").isdigit() and int(i) != 0}
    return parse_labels({group: table}, where=f"{where} ({path})")[group]


def _extra_images(files: list[str], *, taken: set[str | None]) -> dict[str, str]:
    """Further volumes as ``{group: url}``: MRI under ``anat/``, other ``ct/`` files.

    The group is the BIDS suffix then the other entity values (``sub``/``ses`` dropped):
    ``sub-001_ses-vida_acq-DIXONbodyIN_T1w.nii.gz`` -> ``t1w_dixonbodyin``.
    """
    out: dict[str, str] = {}
    regex = re.compile(rf"/(anat|ct)/[^/]+{_NII}")
    for path in files:
        if path in taken or not regex.search(path):
            continue
        stem = re.sub(_NII, "", path.rsplit("/", 1)[-1])
        parts = stem.split("_")
        suffix, entities = parts[-1], parts[:-1]
        values = [e.split("-", 1)[-1] for e in entities if not e.startswith(("sub-", "ses-"))]
        name = group_name("_".join([suffix, *values]))
        if not name or name in ("ct", "pet", "pet_dynamic") or name.startswith(SEG_PREFIX):
            name = f"image_{name}"
        base, n = name, 2
        while name in out:
            name, n = f"{base}_{n}", n + 1
        out[name] = path
    return out
