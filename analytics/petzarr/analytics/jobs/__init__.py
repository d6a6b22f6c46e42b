"""Per-subject jobs: plain functions from a subject store's URL to a table (one Dask task).

Each opens its store with :func:`petzarr.cohort.subject.open_subject`; none reads the
cohort's index.
"""

from petzarr.analytics.jobs.input_functions import subject_input_functions
from petzarr.analytics.jobs.ki_map import write_ki_map
from petzarr.analytics.jobs.norms import subject_norms
from petzarr.analytics.jobs.patlak import subject_kinetics
from petzarr.analytics.jobs.stats import subject_stats
from petzarr.analytics.jobs.tacs import subject_tacs

__all__ = [
    "subject_input_functions",
    "subject_kinetics",
    "subject_norms",
    "subject_stats",
    "subject_tacs",
    "write_ki_map",
]
