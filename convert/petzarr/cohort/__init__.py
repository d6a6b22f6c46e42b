"""The cohort format: layout names, metadata, storage, config, errors and ``open_cohort``."""

from petzarr.cohort.config import config
from petzarr.cohort.errors import (
    CorruptFileError,
    GridMismatchError,
    InvalidInputError,
    MissingSourceError,
    ObliqueAffineError,
    PetZarrError,
    VerificationError,
)
from petzarr.cohort.open import Cohort, open_cohort

__all__ = [
    "Cohort",
    "CorruptFileError",
    "GridMismatchError",
    "InvalidInputError",
    "MissingSourceError",
    "ObliqueAffineError",
    "PetZarrError",
    "VerificationError",
    "config",
    "open_cohort",
]
