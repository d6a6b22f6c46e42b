"""Start a Dask cluster the way users do: ``dask scheduler`` and ``dask worker`` processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from distributed import Client


@contextmanager
def cli_cluster(
    folder: Path,
    *,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    worker_args: Sequence[str] = (),
) -> Iterator[str]:
    """A scheduler and ``workers`` single-threaded workers (CLI defaults, a Nanny each) with
    their logs in ``folder``; yields the scheduler's address, stops every process after."""
    info = folder / "scheduler.json"
    dask_cli = str(Path(sys.executable).with_name("dask"))
    assert shutil.which(dask_cli), "the dask command is missing from the venv"
    # as from a user's shell: without what a Nanny of this process may have set in it
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    environ.update(env or {})
    logs = [open(folder / f"{name}.log", "w") for name in ["scheduler", *map(str, range(workers))]]
    procs = [
        subprocess.Popen(
            [dask_cli, "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
            stdout=logs[0],
            stderr=subprocess.STDOUT,
            cwd=folder,
            env=environ,
            start_new_session=True,  # its own process group, to stop whatever it started
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not info.exists():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.2)
        for log in logs[1:]:
            procs.append(
                subprocess.Popen(
                    [
                        dask_cli,
                        "worker",
                        "--scheduler-file",
                        str(info),
                        "--nthreads",
                        "1",
                        *worker_args,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                    env=environ,
                    start_new_session=True,
                )
            )
        with Client(scheduler_file=str(info)) as client:
            client.wait_for_workers(workers, timeout=60)
            address = client.scheduler.address
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # e.g. a Nanny caught restarting its worker
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            else:  # a worker process its Nanny left behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for log in logs:
            log.close()
