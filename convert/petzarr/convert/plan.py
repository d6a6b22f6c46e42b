"""A conversion plan: frozen, picklable data saying what to do for each subject.

A source reader (ENHANCE layout, manifest, ...) produces a :class:`CohortSource`;
:func:`plan_conversion` turns it into one :class:`SubjectTask` per subject. Executors
(serial or Dask) only map :func:`petzarr.convert.writer.convert_subject` over the tasks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from petzarr.cohort.config import get_int
from petzarr.cohort.errors import InvalidInputError
from petzarr.cohort.layout import CHUNK_SLABS, invalid_names

__all__ = ["CohortSource", "ConvertOptions", "SubjectSource", "SubjectTask", "plan_conversion"]


@dataclass(frozen=True)
class ConvertOptions:
    """Knobs of one conversion run (the same for every subject).

    ``write_threads`` defaults to the ``convert.write_threads`` config value when the
    options are made (on the client), so the plan carries it to every worker.
    """

    chunk_slabs: int = CHUNK_SLABS
    allow_oblique: bool = False
    overwrite: bool = False
    write_threads: int = field(default_factory=lambda: get_int("convert.write_threads"))
    extra_images: bool = False  # also write a source's further volumes (MRI, topogram)
    pyramid: bool = True  # lower-resolution levels and OME image-labels (convert/pyramid.py)


@dataclass(frozen=True)
class SubjectSource:
    """One subject's inputs: image URIs by role, segmentation URIs by group, its metadata row.

    ``pet_dynamic`` is a 4D series (optional). ``sidecars`` maps an image role (``pet``,
    ``pet_dynamic``) to its BIDS JSON sidecar: the static PET's fields join the subject's
    metadata, the dynamic one's give the frame times. ``images`` are further volumes
    (MRI, topogram), each written as its own group on its own grid when
    :attr:`ConvertOptions.extra_images` is set.
    """

    subject: str
    ct: str | None
    pet: str | None
    segs: dict[str, str | None] = field(
        default_factory=dict
    )  # group -> uri (CT grid); None: missing
    metadata: dict[str, Any] = field(default_factory=dict)
    pet_dynamic: str | None = None
    sidecars: dict[str, str] = field(default_factory=dict)  # image role -> JSON sidecar uri
    images: dict[str, str] = field(default_factory=dict)  # extra group name -> uri


@dataclass(frozen=True)
class CohortSource:
    """What a source reader found: its subjects, the label tables, where it came from."""

    uri: str
    layout: str
    subjects: tuple[SubjectSource, ...]
    labels: dict[str, dict[int, str]]  # group name -> {id: name}
    options: dict[str, Any] = field(default_factory=dict)  # fsspec options to read it
    warnings: tuple[str, ...] = ()  # what is missing but not fatal (e.g. a spreadsheet row)


@dataclass(frozen=True)
class SubjectTask:
    """Everything a worker needs to convert one subject, and nothing it must look up."""

    source: SubjectSource
    labels: dict[str, dict[int, str]]
    dest: str
    run_id: str
    source_options: dict[str, Any] = field(default_factory=dict)
    dest_options: dict[str, Any] = field(default_factory=dict)
    options: ConvertOptions = field(default_factory=ConvertOptions)
    published: str = ""  # the store the index names for this subject now ("" if none)

    @property
    def subject(self) -> str:
        return self.source.subject


def plan_conversion(
    cohort: CohortSource,
    dest: str,
    *,
    run_id: str,
    dest_options: dict[str, Any] | None = None,
    subjects: list[str] | None = None,
    options: ConvertOptions | None = None,
    published: Mapping[str, str] | None = None,
) -> list[SubjectTask]:
    """One task per selected subject, in the source's order.

    ``published`` maps subjects to the store path the cohort's index names for them now.
    Subject ids, segmentation groups and extra image names become parts of store paths, so
    any that :data:`~petzarr.cohort.layout.NAME_PATTERN` refuses (``../x``, ``a/b``) refuse
    the whole run, before anything is written.
    """
    _check_names(cohort)
    chosen = cohort.subjects
    if subjects:
        known = {s.subject for s in cohort.subjects}
        missing = [s for s in subjects if s not in known]
        if missing:
            raise InvalidInputError(f"{cohort.uri}: no subjects {', '.join(missing)} in the source")
        wanted = set(subjects)
        chosen = tuple(s for s in cohort.subjects if s.subject in wanted)
    return [
        SubjectTask(
            source=s,
            labels=cohort.labels,
            dest=dest,
            run_id=run_id,
            source_options=dict(cohort.options),
            dest_options=dict(dest_options or {}),
            options=options or ConvertOptions(),
            published=(published or {}).get(s.subject, ""),
        )
        for s in chosen
    ]


def _check_names(cohort: CohortSource) -> None:
    ids = [s.subject for s in cohort.subjects]
    groups = {g for s in cohort.subjects for g in s.segs} | set(cohort.labels)
    images = {name for s in cohort.subjects for name in s.images}
    problems = [
        f"{what} {', '.join(map(repr, bad))}"
        for what, names in (
            ("subject ids", ids),
            ("groups", sorted(groups)),
            ("images", sorted(images)),
        )
        if (bad := invalid_names(names))
    ]
    duplicated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicated:
        problems.append(f"duplicate subject ids {', '.join(map(repr, duplicated))}")
    if problems:
        raise InvalidInputError(
            f"{cohort.uri}: {'; '.join(problems)}: ids and names become store paths, so they "
            "must be letters, digits, '.', '_' or '-' (not first), at most 128 characters, "
            "each id once; nothing was written"
        )
