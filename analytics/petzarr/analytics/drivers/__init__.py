"""Cohort drivers: map a per-subject job over a cohort with one ``run=`` (the executor)."""

from petzarr.analytics.drivers.input_functions import cohort_input_functions
from petzarr.analytics.drivers.norms import cohort_norms
from petzarr.analytics.drivers.patlak import PatlakRun, cohort_patlak
from petzarr.analytics.drivers.stats import cohort_stats
from petzarr.analytics.drivers.subjects import CohortRun
from petzarr.analytics.drivers.tacs import cohort_tacs

__all__ = [
    "CohortRun",
    "PatlakRun",
    "cohort_input_functions",
    "cohort_norms",
    "cohort_patlak",
    "cohort_stats",
    "cohort_tacs",
]
