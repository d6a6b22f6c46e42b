"""Getting a Dask client: the one place that decides where work runs.

``Client()`` with no address is the contract: it honours ``DASK_SCHEDULER_ADDRESS`` (and
dask config), so ``dask-submit``, a Kubernetes DaskJob, dask-jobqueue and dask-gateway run
the same code. Without an address petzarr starts a local multi-process cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dask
from distributed import Client, LocalCluster

__all__ = ["connect"]


@contextmanager
def connect(scheduler: str | None = None, *, workers: int | None = None) -> Iterator[Client]:
    """A client for ``scheduler``, the configured scheduler, or a new local cluster.

    Local clusters run ``workers`` single-threaded processes (default: one per core);
    per-subject work threads itself where it pays (Blosc, gunzip).
    """
    address = scheduler or dask.config.get("scheduler-address", None)
    if address:
        with Client(address) as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
