"""Cohort analytics, in layers: ``kernels`` (arrays) -> ``tables`` (pandas) -> ``jobs`` (one
subject's store) -> ``drivers`` (a cohort, on the executor) -> ``cli``.

The drivers and the table functions users call are re-exported here, loaded on first use
(so ``petzarr --help`` does not import numba)::

    from petzarr.analytics import cohort_stats
    run = cohort_stats("s3://bucket/cohort", anon=True)

``import petzarr.analytics.accessor`` registers ``ds.petzarr`` on xarray Datasets (label
masks and statistics by name, :class:`~petzarr.analytics.accessor.PetzarrAccessor`).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CohortRun": "drivers",
    "PatlakRun": "drivers",
    "PetzarrAccessor": "accessor",
    "cohort_input_functions": "drivers",
    "cohort_norms": "drivers",
    "cohort_patlak": "drivers",
    "cohort_stats": "drivers",
    "cohort_tacs": "drivers",
    "patlak_from_files": "tables",
    "patlak_table": "tables",
    "read_input_function": "tables",
    "wide_table": "tables",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"petzarr.analytics.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'petzarr.analytics' has no attribute {name!r}")
