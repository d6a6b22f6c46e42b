"""Synthetic PET/CT cohorts in the ENHANCE.PET 1.6k layout, with the truth they were made from.

>>> import tempfile
>>> truth = write_enhance_cohort(tempfile.mkdtemp(), subjects=2, size="tiny", seed=0)
>>> [s.subject for s in truth.subjects]
['0001', '0002']
"""

from petzarr.convert.synth.anatomy import Anatomy
from petzarr.convert.synth.cohort import (
    SubjectSpec,
    draw_subject,
    subject_paths,
    write_enhance_cohort,
    write_subject,
)
from petzarr.convert.synth.grids import SIZES, Size
from petzarr.convert.synth.labels import ENHANCE_LABELS, MOOSE_LABELS, REMOVED_LABELS
from petzarr.convert.synth.truth import CohortTruth, SubjectTruth

__all__ = [
    "ENHANCE_LABELS",
    "MOOSE_LABELS",
    "REMOVED_LABELS",
    "SIZES",
    "Anatomy",
    "CohortTruth",
    "Size",
    "SubjectSpec",
    "SubjectTruth",
    "draw_subject",
    "subject_paths",
    "write_enhance_cohort",
    "write_subject",
]
