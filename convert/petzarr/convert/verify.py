"""The dataset's own integrity checks on an ENHANCE-layout source, before converting it.

Checks: the metadata files exist; CT, PT and every segmentation group hold one file per
case and their ids pair up; every header reads and matches its file's size; segmentation
grids equal their CT's; PET and CT fields of view overlap; label values lie inside
``labels.json``. Files are checked concurrently in threads (the work is I/O and gunzip,
which release the GIL).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from petzarr.cohort.config import get_float, get_int
from petzarr.cohort.errors import PetZarrError
from petzarr.cohort.layout import ENHANCE_GROUPS
from petzarr.cohort.storage import filesystem
from petzarr.convert.label_values import label_values, unnamed_labels
from petzarr.convert.nifti import Grid, canonical_grid, open_nifti, read_nifti
from petzarr.convert.sources.enhance import DETAILS, case_files, read_enhance

__all__ = ["Problem", "verify_source"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the source: where, which check, what."""

    where: str
    check: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def verify_source(
    uri: str,
    options: dict[str, Any] | None = None,
    *,
    labels: bool = True,
    threads: int | None = None,
    progress: bool = True,
) -> list[Problem]:
    """Check an ENHANCE-layout cohort; return the problems found (empty when none).

    ``labels=False`` skips reading segmentation voxels (headers only). ``threads`` files
    are checked at once (default: the ``verify.threads`` config value).
    """
    options = dict(options or {})
    problems: list[Problem] = []
    try:
        cohort = read_enhance(uri, options)
    except PetZarrError as exc:
        return [Problem(uri, "layout", str(exc))]
    fs, root = filesystem(uri, options)
    for name in DETAILS:
        if not fs.exists(f"{root.rstrip('/')}/{name}"):
            problems.append(Problem(uri, "metadata", f"{name} is missing"))

    for s in cohort.subjects:
        roles = {"PT": s.pet} | {g.folder: s.segs.get(g.name) for g in ENHANCE_GROUPS}
        for role, path in roles.items():
            if not path:
                problems.append(Problem(s.subject, "pairing", f"CT present but no {role} file"))
        if s.subject not in _spreadsheet_ids(cohort):
            problems.append(Problem(s.subject, "metadata", "no row in PT-details.xlsx"))

    with_ct = {s.subject for s in cohort.subjects}
    for folder, cases in case_files(uri, options).items():
        for orphan in sorted(set(cases) - with_ct):
            problems.append(Problem(cases[orphan], "pairing", f"{folder} file has no CT"))

    def check(s: Any) -> list[Problem]:
        return _check_subject(s, cohort.labels, options, labels)

    with ThreadPoolExecutor(threads or get_int("verify.threads")) as pool:
        bar = tqdm(total=len(cohort.subjects), desc="verify", unit="subject", disable=not progress)
        for found in pool.map(check, cohort.subjects):
            problems.extend(found)
            bar.update()
        bar.close()
    return problems


def _spreadsheet_ids(cohort: Any) -> set[str]:
    return {s.subject for s in cohort.subjects if s.metadata}


def _header_grid(uri: str, options: dict[str, Any]) -> Grid:
    with open_nifti(uri, options) as stream:
        _, canonical = stream.orientation()
        return canonical_grid(canonical, stream.shape_zyx[-3:])


def _check_subject(
    s: Any, tables: dict[str, dict[int, str]], options: dict[str, Any], labels: bool
) -> list[Problem]:
    problems: list[Problem] = []

    def grid_of(uri: str | None) -> Grid | None:
        if not uri:
            return None
        try:
            return _header_grid(uri, options)
        except (PetZarrError, OSError, ValueError) as exc:
            problems.append(Problem(uri, "header", str(exc)))
            return None

    ct, pet = grid_of(s.ct), grid_of(s.pet)
    if ct and pet and not _overlap(ct, pet):
        problems.append(
            Problem(s.subject, "field-of-view", "PET and CT fields of view do not overlap")
        )
    for group, uri in s.segs.items():
        seg = grid_of(uri)
        if seg is None or ct is None:
            continue
        atol = get_float("convert.grid_atol_mm")
        if seg.shape != ct.shape or not np.allclose(
            seg.spacing + seg.origin, ct.spacing + ct.origin, atol=atol
        ):
            problems.append(
                Problem(uri, "grid", f"grid {seg.shape} differs from its CT's {ct.shape}")
            )
        elif labels and uri:
            problems.extend(_check_labels(uri, group, tables.get(group, {}), options))
    return problems


def _check_labels(
    uri: str, group: str, table: dict[int, str], options: dict[str, Any]
) -> list[Problem]:
    try:
        data = read_nifti(uri, options, dtype=np.uint16, volume=True).data
    except (PetZarrError, OSError, ValueError) as exc:
        return [Problem(uri, "voxels", str(exc))]
    unknown = unnamed_labels(label_values(data), table)
    if unknown:
        return [Problem(uri, "labels", f"values {unknown[:10]} not in labels.json group {group!r}")]
    return []


def _overlap(a: Grid, b: Grid) -> bool:
    for n1, s1, o1, n2, s2, o2 in zip(
        a.shape, a.spacing, a.origin, b.shape, b.spacing, b.origin, strict=True
    ):
        lo1, hi1 = o1 - s1 / 2, o1 + s1 * (n1 - 0.5)
        lo2, hi2 = o2 - s2 / 2, o2 + s2 * (n2 - 0.5)
        if hi1 <= lo2 or hi2 <= lo1:
            return False
    return True
