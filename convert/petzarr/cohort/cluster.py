"""Getting a Dask client: the one place that decides where work runs.

``Client()`` with no address is the contract: it honours ``DASK_SCHEDULER_ADDRESS`` (and
dask config), so ``dask-submit``, a Kubernetes DaskJob, dask-jobqueue and dask-gateway run
the same code. Without an address petzarr starts a local multi-process cluster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import dask
from distributed import Client, LocalCluster, as_completed
from tqdm.auto import tqdm

__all__ = ["connect", "map_as_completed"]

T = TypeVar("T")
R = TypeVar("R")


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


def map_as_completed[T, R](
    client: Client,
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    keys: Sequence[str],
    desc: str,
    progress: bool = True,
) -> Iterator[tuple[int, R | None, BaseException | None]]:
    """Run ``fn`` on each item as one task; yield ``(position, result, error)`` as they finish.

    ``error`` is set when the task itself was lost (a worker killed by memory or a signal);
    ordinary failures are ``fn``'s business. A progress bar counts finished items.
    """
    futures = client.map(fn, items, key=list(keys), pure=False, retries=0)
    position = {f.key: i for i, f in enumerate(futures)}
    bar = tqdm(total=len(items), desc=desc, unit="subject", disable=not progress)
    try:
        for future in as_completed(futures):
            try:
                yield position[future.key], future.result(), None
            except Exception as exc:
                yield position[future.key], None, exc
            bar.update()
    finally:
        bar.close()
        client.cancel(futures)
