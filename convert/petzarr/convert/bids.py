"""BIDS JSON sidecars: reading one, its fields as subject metadata, its frame times.

A sidecar is small: it is read whole, validated here at the boundary, and what the store
needs (metadata fields, frame times) leaves as plain values.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from petzarr.cohort.errors import InvalidInputError, MissingSourceError
from petzarr.cohort.metadata import SourceFile
from petzarr.cohort.storage import filesystem
from petzarr.convert.nifti import source_file

__all__ = [
    "FrameTimes",
    "Sidecar",
    "frame_times",
    "metadata_fields",
    "read_sidecar",
    "sidecar_of",
]


def sidecar_of(image_uri: str) -> str:
    """The JSON sidecar path of a ``.nii``/``.nii.gz`` image.

    >>> sidecar_of("s3://b/sub-001/pet/sub-001_rec-acdyn_pet.nii.gz")
    's3://b/sub-001/pet/sub-001_rec-acdyn_pet.json'
    """
    for ext in (".nii.gz", ".nii"):
        if image_uri.endswith(ext):
            return image_uri[: -len(ext)] + ".json"
    return image_uri + ".json"


@dataclass(frozen=True)
class Sidecar:
    """A sidecar's fields and where they came from (with the sha256 of its bytes)."""

    fields: dict[str, Any]
    source: SourceFile


def read_sidecar(uri: str, options: Mapping[str, Any] | None = None, *, subject: str) -> Sidecar:
    """The JSON object in ``uri``; errors name the subject and the file."""
    fs, path = filesystem(uri, options)
    try:
        with fs.open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise MissingSourceError(f"subject {subject}: sidecar {uri} does not exist") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"subject {subject}: sidecar {uri} is not valid JSON ({exc}); fix or re-download it"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"subject {subject}: sidecar {uri} is not a JSON object")
    source = replace(source_file(uri, options), sha256=hashlib.sha256(raw).hexdigest())
    return Sidecar(fields=data, source=source)


def metadata_fields(sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """Sidecar fields as index-row values, under their BIDS names.

    Scalars pass; a one-element list becomes its element (a static scan's
    ``FrameDuration: [600]``); longer lists and objects become JSON text; nulls are dropped.

    >>> metadata_fields({"InjectedRadioactivity": 27.9, "FrameDuration": [600], "X": [1, 2]})
    {'InjectedRadioactivity': 27.9, 'FrameDuration': 600, 'X': '[1, 2]'}
    """
    out: dict[str, Any] = {}
    for key, value in sidecar.items():
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value is None:
            continue
        if isinstance(value, list | dict):
            value = json.dumps(value)
        out[str(key)] = value
    return out


@dataclass(frozen=True)
class FrameTimes:
    """The frames of a dynamic series: start and duration of each, in seconds."""

    start: tuple[float, ...]
    duration: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.start)

    @property
    def middle(self) -> np.ndarray:
        """Frame mid times [s] (float64)."""
        return np.asarray(self.start) + np.asarray(self.duration) / 2


def frame_times(sidecar: Mapping[str, Any], *, where: str) -> FrameTimes:
    """``FrameTimesStart`` and ``FrameDuration`` of a sidecar, checked.

    ``where`` names the subject and the sidecar in error messages.

    >>> frame_times({"FrameTimesStart": [0, 2, 4], "FrameDuration": [2, 2, 5]}, where="x")
    FrameTimes(start=(0.0, 2.0, 4.0), duration=(2.0, 2.0, 5.0))
    """
    missing = [k for k in ("FrameTimesStart", "FrameDuration") if k not in sidecar]
    if missing:
        raise InvalidInputError(
            f"{where}: no {' or '.join(missing)}; a dynamic series needs its frame times "
            "in its sidecar"
        )
    parsed = []
    for key in ("FrameTimesStart", "FrameDuration"):
        value = sidecar[key]
        if not isinstance(value, list) or not value:
            raise InvalidInputError(f"{where}: {key} is not a non-empty list of seconds")
        try:
            numbers = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{where}: {key} holds non-numbers") from None
        if not all(math.isfinite(v) for v in numbers):
            raise InvalidInputError(f"{where}: {key} holds non-finite values")
        parsed.append(numbers)
    start, duration = parsed
    if len(start) != len(duration):
        raise InvalidInputError(
            f"{where}: FrameTimesStart lists {len(start)} frames, FrameDuration {len(duration)}"
        )
    if min(duration) <= 0:
        raise InvalidInputError(f"{where}: FrameDuration has a frame of length <= 0")
    if any(b < a for a, b in itertools.pairwise(start)):
        raise InvalidInputError(f"{where}: FrameTimesStart is not in increasing order")
    return FrameTimes(start=start, duration=duration)
