"""One exception tree for petzarr.

Every class also subclasses the builtin a caller would naturally catch, so
``except ValueError`` keeps working for code that does not know petzarr.
Messages name the subject or file and say what to do.
"""

from __future__ import annotations

__all__ = [
    "CorruptFileError",
    "GridMismatchError",
    "InvalidInputError",
    "MissingSourceError",
    "ObliqueAffineError",
    "PetZarrError",
    "PetZarrWarning",
    "VerificationError",
]


class PetZarrError(Exception):
    """Base of every error petzarr raises on purpose."""


class InvalidInputError(PetZarrError, ValueError):
    """An argument, a table or a file's content is not what petzarr accepts."""


class MissingSourceError(PetZarrError, FileNotFoundError):
    """A source file a subject needs does not exist."""


class CorruptFileError(InvalidInputError):
    """A file exists but cannot be read: truncated gzip, bad header, wrong size."""


class GridMismatchError(InvalidInputError):
    """Two volumes that must share a grid (a segmentation and its CT) do not."""


class ObliqueAffineError(InvalidInputError):
    """The affine is oblique; petzarr stores axis-aligned grids unless told otherwise."""


class VerificationError(PetZarrError, RuntimeError):
    """A new store did not read back as written; it was not published."""


class PetZarrWarning(UserWarning):
    """Something the user should know; the result is still valid."""
