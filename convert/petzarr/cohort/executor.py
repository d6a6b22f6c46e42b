"""The one executor: where per-subject work runs, and how each subject's outcome comes back.

Every cohort job — conversion and every analytics driver — maps a plain per-subject
function over plain items with :meth:`Run.map`. :class:`Run` says where: in this process
(``serial``), on a given ``client``, on a ``scheduler`` address, on the client the caller
already made (``Client()`` in a notebook or a submitted script), on the configured
scheduler (``DASK_SCHEDULER_ADDRESS``: the contract a Kubernetes DaskJob, dask-jobqueue and
dask-gateway rely on), or else on a new local multi-process cluster of ``workers``. This is
the only module that creates a Dask client or cluster.

A subject's exception never stops the cohort: it comes back as a :class:`Failure` with the
full traceback, for the run report. A lost worker (killed by memory or a signal) fails only
the subject it was running.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import dask
from tqdm.auto import tqdm

from petzarr.cohort.allocator import large_buffers
from petzarr.cohort.retries import retries_seen

__all__ = [
    "Failure",
    "Outcome",
    "Run",
    "add_run_arguments",
    "dashboard_link",
    "run_from_arguments",
    "task_threads",
    "threaded",
]


@dataclass(frozen=True)
class Failure:
    """Why one subject failed: a one-line ``error`` and, for exceptions, the traceback."""

    error: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        error = f"{type(exc).__name__}: {exc}"
        return cls(error, "".join(traceback.format_exception(exc)))


@dataclass(frozen=True)
class Outcome:
    """One item's result (``value``) or its ``failure``, at ``position`` in the input."""

    position: int
    value: Any = None
    failure: Failure | None = None
    retries: int = 0  # S3 requests the task's process retried while it ran

    @property
    def ok(self) -> bool:
        return self.failure is None


def _guarded(fn: Callable[[Any], Any], item: Any) -> tuple[Any, Failure | None, int]:
    before = retries_seen()
    try:
        with large_buffers():  # a Nanny's malloc settings would halve a subject's speed
            value, failure = fn(item), None
    except Exception as exc:
        value, failure = None, Failure.from_exception(exc)
    return value, failure, retries_seen() - before


_SHARE: ContextVar[int | None] = ContextVar("petzarr_task_share", default=None)


def task_threads(in_process: int | None = None) -> int:
    """Threads a task's own pools may use (encoding, read-back, a subject's Dask graph).

    On a cluster: the task's share of its host's cores, ``cores // worker threads on the
    host`` (at least 1). A worker's threads are the cluster's parallelism; a task that
    threads itself beyond its share oversubscribes the cores (Dask's Nanny sets
    ``OMP_NUM_THREADS=1`` for the same reason), while a lone worker on a big host still
    gets its cores. In one process (``--serial``, a plain call): ``in_process``, else the
    machine's cores.

    >>> task_threads(2)
    2
    """
    share = _SHARE.get()
    if share is not None:
        return share
    return in_process or os.cpu_count() or 1


def threaded(**settings: Any) -> Any:
    """``dask.config.set`` for a subject's own graph, run on :func:`task_threads` threads
    of the calling process (inside a cluster task it must not go back to the cluster)."""
    return dask.config.set(scheduler="threads", num_workers=task_threads(), **settings)


def _shares(client: Any) -> dict[str, int]:
    """Each worker's task share of its host's cores (see :func:`task_threads`)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(os.cpu_count)
    on_host: dict[str, int] = {}
    for w in workers.values():
        on_host[w["host"]] = on_host.get(w["host"], 0) + w["nthreads"]
    return {
        addr: max(1, (cores.get(addr) or 1) // on_host[w["host"]]) for addr, w in workers.items()
    }


@dataclass(frozen=True)
class _Task:  # a module-level callable: pickles by reference to the workers
    fn: Callable[[Any], Any]
    shares: dict[str, int]  # worker address -> threads of its task (a worker that joined
    # after the map started was not counted: 1)

    def __call__(self, item: Any) -> tuple[Any, Failure | None, int]:
        from distributed import get_worker

        token = _SHARE.set(self.shares.get(get_worker().address, 1))
        try:
            return _guarded(self.fn, item)
        finally:
            _SHARE.reset(token)


@dataclass(frozen=True)
class Run:
    """Where a cohort job runs, and whether it shows progress.

    Examples
    --------
    >>> outcomes = list(Run(serial=True, progress=False).map(abs, [-1, "x"], desc="abs"))
    >>> outcomes[0].value, outcomes[1].failure.error
    (1, "TypeError: bad operand type for abs(): 'str'")
    """

    serial: bool = False
    client: Any = None
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    #: where a local cluster serves its dashboard (``":0"``: a free port; None: no dashboard)
    dashboard: str | None = ":0"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """The Dask client this run uses (``None`` when serial); one it started is closed.

        With ``progress`` the dashboard's link is printed (to stderr) once connected.
        """
        if self.serial:
            yield None
            return
        with self._client() as client:
            if self.progress and (self.dashboard is not None or not self._starts_cluster):
                link = dashboard_link(client)
                if link:
                    print(f"Dask dashboard: {link}", file=sys.stderr, flush=True)
            yield client

    @property
    def _starts_cluster(self) -> bool:
        return self.client is None and self.scheduler is None

    @contextmanager
    def _client(self) -> Iterator[Any]:
        if self.client is not None:
            yield self.client
            return
        from distributed import Client, LocalCluster, default_client

        if self.scheduler is None and self.workers is None:
            try:  # a Client() the caller already made (a notebook's, dask-submit's) is used
                yield default_client()
                return
            except ValueError:
                pass
        address = self.scheduler or dask.config.get("scheduler-address", None)
        if address:
            with Client(address) as client:
                yield client
            return
        # Single-threaded worker processes: per-subject work threads itself where it pays.
        # Without the Nanny's MALLOC_TRIM_THRESHOLD_: setting it turns off glibc's dynamic
        # mmap threshold, so every large temporary buffer is mapped and unmapped afresh
        # (measured: a conversion task at half its in-process speed). deploy/README.md says
        # how to do the same for `dask worker`.
        n = self.workers or os.cpu_count() or 1
        with (
            dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
            _unset_env(_TRIM),  # a Nanny of an earlier cluster may have set it in this process
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                # the scheduler's HTTP server always listens; ":0" keeps it off taken ports
                dashboard_address=self.dashboard or ":0",
                scheduler_kwargs={"dashboard": self.dashboard is not None},
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        desc: str,
        names: Sequence[str] | None = None,
    ) -> Iterator[Outcome]:
        """Run ``fn(item)`` for every item, one task each; yield outcomes as they finish.

        ``fn`` must pickle (a module-level function or a frozen dataclass of plain data).
        ``names`` (e.g. subject ids) make the Dask task keys readable on the dashboard.
        """
        if not items:  # nothing to do: no cluster started
            return
        bar = tqdm(total=len(items), desc=desc, unit="subject", disable=not self.progress)
        try:
            with self.connect() as client:
                if client is None:
                    for i, item in enumerate(items):
                        yield Outcome(i, *_guarded(fn, item))
                        bar.update()
                else:
                    yield from self._distributed(client, fn, items, desc, names, bar)
        finally:
            bar.close()

    @staticmethod
    def _distributed(
        client: Any,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        desc: str,
        names: Sequence[str] | None,
        bar: Any,
    ) -> Iterator[Outcome]:
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]  # several runs may share one cluster
        labels = names if names is not None else [str(i) for i in range(len(items))]
        keys = [f"{desc}-{name}-{token}" for name in labels]
        futures = client.map(_Task(fn, _shares(client)), items, key=keys, pure=False, retries=0)
        position = {f.key: i for i, f in enumerate(futures)}
        # Only unfinished tasks stay referenced: a finished one's result is let go at once,
        # or a worker lost later would make the scheduler run that subject again.
        pending = {f.key: f for f in futures}
        del futures
        try:
            for future in as_completed(list(pending.values())):
                del pending[future.key]
                yield _outcome(future, position[future.key])
                bar.update()
        finally:
            client.cancel(list(pending.values()))


def _outcome(future: Any, position: int) -> Outcome:
    """A finished task's outcome; the future is released before it is yielded."""
    from distributed.scheduler import KilledWorker

    try:
        value, failure, retries = future.result()
    except KilledWorker as exc:  # the task itself was lost, not fn's exception
        value, failure, retries = None, Failure(f"worker lost: {exc}"), 0
    except Exception as exc:  # e.g. the task could not be unpickled on the worker
        value, failure, retries = None, Failure.from_exception(exc), 0
    future.release()
    return Outcome(position, value, failure, retries)


_TRIM = "MALLOC_TRIM_THRESHOLD_"


@contextmanager
def _unset_env(name: str) -> Iterator[None]:
    """Leave ``name`` out of the environment new worker processes inherit, for a while."""
    old = os.environ.pop(name, None)
    try:
        yield
    finally:
        if old is not None:
            os.environ[name] = old


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say where a command's per-subject tasks run: shared by every command."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=int, help="local cluster worker processes (default: one per core)"
    )
    where.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler "
        "(default: $DASK_SCHEDULER_ADDRESS, else a local cluster)",
    )
    where.add_argument("--serial", action="store_true", help="no cluster: run in this process")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    board = parser.add_mutually_exclusive_group()
    board.add_argument(
        "--dashboard-address",
        default=":0",
        metavar="ADDR",
        help="where a local cluster serves the Dask dashboard (default: a free port)",
    )
    board.add_argument(
        "--no-dashboard", action="store_true", help="start a local cluster without dashboard"
    )


def run_from_arguments(args: argparse.Namespace) -> Run:
    """The :class:`Run` the flags of :func:`add_run_arguments` ask for."""
    return Run(
        serial=args.serial,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=not args.no_progress,
        dashboard=None if args.no_dashboard else args.dashboard_address,
    )


def dashboard_link(client: Any) -> str | None:
    """The link to the dashboard of ``client``'s scheduler, or None when it serves none."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # a closed or unreachable scheduler: no link to give
        return None
    if "dashboard" not in services:
        return None
    return str(client.dashboard_link)
