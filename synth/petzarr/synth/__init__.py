"""Synthetic PET/CT cohorts with the truth they were made from.

Two layouts: ENHANCE.PET 1.6k (static PET/CT, seven MOOSE label groups) and hedyPET (static
and dynamic BIDS datasets, TotalSegmentator maps, dynamic PET of known kinetics).

>>> import tempfile
>>> truth = write_enhance_cohort(tempfile.mkdtemp(), subjects=2, size="tiny", seed=0)
>>> [s.subject for s in truth.subjects]
['0001', '0002']
"""

from petzarr.synth.anatomy import Anatomy
from petzarr.synth.cohort import (
    SubjectSpec,
    draw_subject,
    subject_paths,
    write_enhance_cohort,
    write_subject,
)
from petzarr.synth.grids import HEDY_SIZES, SIZES, HedySize, Size
from petzarr.synth.hedypet import (
    HedySpec,
    draw_hedy_subject,
    hedy_paths,
    write_hedy_subject,
    write_hedypet_cohort,
)
from petzarr.synth.kinetics import HEDYPET_FRAMING, ExpSum, FengInput, Framing, Kinetics
from petzarr.synth.labels import ENHANCE_LABELS, MOOSE_LABELS, REMOVED_LABELS
from petzarr.synth.totalseg import BODY_LABELS, TISSUE_LABELS, TOTAL_LABELS
from petzarr.synth.truth import CohortTruth, HedySubjectTruth, HedyTruth, SubjectTruth

__all__ = [
    "BODY_LABELS",
    "ENHANCE_LABELS",
    "HEDYPET_FRAMING",
    "HEDY_SIZES",
    "MOOSE_LABELS",
    "REMOVED_LABELS",
    "SIZES",
    "TISSUE_LABELS",
    "TOTAL_LABELS",
    "Anatomy",
    "CohortTruth",
    "ExpSum",
    "FengInput",
    "Framing",
    "HedySize",
    "HedySpec",
    "HedySubjectTruth",
    "HedyTruth",
    "Kinetics",
    "Size",
    "SubjectSpec",
    "SubjectTruth",
    "draw_hedy_subject",
    "draw_subject",
    "hedy_paths",
    "subject_paths",
    "write_enhance_cohort",
    "write_hedy_subject",
    "write_hedypet_cohort",
    "write_subject",
]
