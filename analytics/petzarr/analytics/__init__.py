"""Cohort analytics, in layers: ``kernels`` (arrays) -> ``tables`` (pandas) -> ``jobs`` (one
subject's store) -> ``drivers`` (a cohort, on the executor) -> ``cli``.

The drivers and the table functions users call are re-exported here, loaded on first use
(so ``petzarr --help`` does not import numba)::

    from petzarr.analytics import cohort_stats
    run = cohort_stats("s3://bucket/cohort", anon=True)
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CohortRun": "drivers",
    "PatlakRun": "drivers",
    "cohort_input_functions": "drivers",
    "cohort_norms": "drivers",
    "cohort_patlak": "drivers",
    "cohort_stats": "drivers",
    "cohort_tacs": "drivers",
    "patlak_from_files": "tables",
    "patlak_table": "tables",
    "read_input_function": "tables",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"petzarr.analytics.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'petzarr.analytics' has no attribute {name!r}")
