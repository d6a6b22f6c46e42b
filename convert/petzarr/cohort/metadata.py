"""Metadata records of the format: frozen dataclasses with ``to_dict``/``from_dict``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Self

import numpy as np

__all__ = ["SourceFile", "plain_value"]


@dataclass(frozen=True)
class SourceFile:
    """Where one input file came from, enough to tell later whether it changed.

    ``etag`` is the object store's ETag (S3) or empty; ``mtime`` the modification time as
    the store reports it (ISO string or POSIX seconds as a string); ``sha256`` the hash of
    the bytes as stored (compressed), computed while converting.
    """

    uri: str
    size: int
    etag: str = ""
    mtime: str = ""
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def same_source(self, other: SourceFile) -> bool:
        """Whether ``other`` describes the same bytes, judged by what a listing reports.

        The ETag decides when both have one; otherwise size and mtime must both agree.
        """
        if self.uri != other.uri or self.size != other.size:
            return False
        if self.etag and other.etag:
            return self.etag == other.etag
        return self.mtime == other.mtime


def plain_value(value: Any) -> Any:
    """A value JSON and Parquet store as-is: numbers, strings, bools and None pass; numpy
    scalars become Python scalars; anything else (dates, times) becomes its ``str``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
