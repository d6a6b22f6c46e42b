"""``raise_if_dask_computes``: prove that building a Dask graph computes nothing.

The pattern of xarray-contrib/flox's ``flox/tests/__init__.py``: a scheduler that counts the
computes it is asked for and raises once there are more than allowed. Inside the block,
every compute that goes through the configured scheduler — ``.compute()``,
``dask.compute``, ``np.asarray`` of a Dask array — is counted; a compute that names its own
scheduler (``.compute(scheduler="threads")``) bypasses it.

>>> import dask.array as da
>>> x = da.ones(4, chunks=2)
>>> with raise_if_dask_computes():
...     y = (x + 1).sum()  # a graph, nothing computed
>>> int(y.compute())
8
>>> with raise_if_dask_computes():
...     int(y)
Traceback (most recent call last):
...
RuntimeError: Too many Dask computes: 1 > 0 allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask

__all__ = ["CountingScheduler", "raise_if_dask_computes"]


class CountingScheduler:
    """A synchronous Dask scheduler that counts computes and allows ``max_computes``."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Mapping[Any, Any], keys: Sequence[Any], **kwargs: Any) -> Any:
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many Dask computes: {self.total_computes} > {self.max_computes} allowed."
            )
        return dask.get(dsk, keys, **kwargs)


def raise_if_dask_computes(max_computes: int = 0) -> Any:
    """A context manager in which more than ``max_computes`` Dask computes raise."""
    return dask.config.set(scheduler=CountingScheduler(max_computes))
