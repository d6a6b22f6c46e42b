"""Faults on real processes: a killed worker, a killed driver, a subject that kills workers.

Each runs ``petzarr convert`` as users do, against ``dask scheduler`` + ``dask worker``
processes started from the command line (a Nanny restarts a worker that dies).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_cluster import cli_cluster
from distributed import Client

from petzarr.cohort.index import read_index
from petzarr.synth import write_enhance_cohort

pytestmark = pytest.mark.cluster

PETZARR = str(Path(sys.executable).with_name("petzarr"))
N = 6


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-source")
    write_enhance_cohort(root, subjects=N, size="small", seed=3)
    return root


def _convert(source, dest, address, **env):
    return subprocess.Popen(
        [PETZARR, "convert", str(source), str(dest), "--scheduler", address, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **env),
    )


def _busy_worker(client: Client, prefix: str = "convert-", timeout: float = 120) -> str:
    """A worker running one of the job's tasks (keys ``<desc>-<subject>-<token>``) now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any(str(k).startswith(prefix) for k in keys):
                return worker
        time.sleep(0.01)
    raise AssertionError(f"no {prefix}* task started")


def _settled(dest: Path, quiet_s: float = 3.0) -> list[str]:
    """The subjects with a store written, once nothing has changed for ``quiet_s`` seconds."""
    seen: list = []
    while True:
        now = sorted(str(p.relative_to(dest)) for p in dest.glob("subjects/*/*.zarr/**/*"))
        if now == seen:
            return sorted({p.split("/")[1] for p in now})
        seen = now
        time.sleep(quiet_s)


def _communicate(proc: subprocess.Popen, logs: Path, address: str, timeout: float) -> str:
    """``proc``'s stderr once it ends. If it hangs, fail with what the cluster was doing
    (the tasks on each worker and their stacks, the logs' warnings), then the driver's
    threads' stacks (it runs with ``PYTHONFAULTHANDLER``)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        with Client(address, timeout=30) as client:
            state = [f"processing: {client.processing()}", f"stacks: {client.call_stack()}"]
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, err = proc.communicate()
        for log in sorted(logs.glob("*.log")):
            lines = log.read_text().splitlines()
            state += [f"--- {log.name}", *[x for x in lines if " - INFO - " not in x][-30:]]
        driver = err.split("Extension modules:")[0]
        raise AssertionError("\n".join([f"hung after {timeout} s", *state, driver])) from None


def _report(dest: Path) -> dict:
    (newest,) = sorted((dest / "reports").glob("convert-*.json"))[-1:]
    return json.loads(newest.read_text())


def _published_once(dest: Path, subjects: list[str]) -> None:
    index = read_index(str(dest))
    assert sorted(index["subject"]) == subjects and index["subject"].is_unique
    stores = sorted(p.relative_to(dest).as_posix() for p in dest.glob("subjects/*/*.zarr"))
    assert stores == sorted(index["store"])  # one version each: nothing half-written or stale


def test_a_worker_killed_mid_subject_loses_nothing(source, tmp_path):
    dest = tmp_path / "cohort"
    with cli_cluster(tmp_path, workers=2) as address, Client(address) as client:
        proc = _convert(source, dest, address)
        worker = _busy_worker(client)
        pid = client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"{N} subjects: {N} converted" in out
    _published_once(dest, [f"{i:04d}" for i in range(1, N + 1)])


def test_a_killed_driver_then_a_rerun_converts_only_what_is_missing(source, tmp_path):
    dest = tmp_path / "cohort"
    subjects = [f"{i:04d}" for i in range(1, N + 1)]
    with cli_cluster(tmp_path, workers=2) as address:
        proc = _convert(source, dest, address, PETZARR_INDEX__FLUSH_S="0")
        deadline = time.monotonic() + 120
        while not (dest / "index.parquet").exists() or len(read_index(str(dest))) < 1:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the scheduler forgets the driver's tasks, but a task already running on a worker
        # thread finishes (and publishes) on its own: wait until the stores stop changing
        published = _settled(dest)
        assert 1 <= len(published) < N  # killed mid-run
        assert len(read_index(str(dest))) <= len(published)  # some may not be indexed yet
        again = _convert(source, dest, address)
        _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    status = {s["subject"]: s["status"] for s in _report(dest)["subjects"]}
    assert {s for s, v in status.items() if v == "skipped"} == set(published)
    assert {s for s, v in status.items() if v == "converted"} == set(subjects) - set(published)
    _published_once(dest, subjects)


def test_a_subject_that_kills_every_worker_fails_alone(source, tmp_path):
    # every worker that starts the subject "poison" dies (as one over its memory limit
    # does); the Nanny restarts it, and the scheduler gives up on the subject after
    # `allowed-failures` workers lost: it fails alone, the others are converted
    good = sorted((source / "imaging-data/images/CT").glob("*.nii.gz"))[:2]
    rows = [
        {"subject": name, "ct": str(ct), "pet": str(ct.parent.parent / "PT" / ct.name)}
        for name, ct in zip(["good0", "poison", "good1"], [good[0], good[0], good[1]])
    ]
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    dest = tmp_path / "cohort"
    preload = ["--preload", str(Path(__file__).with_name("kill_poison.py"))]
    with cli_cluster(tmp_path, workers=2, worker_args=preload) as address:
        proc = _convert(manifest, dest, address, PYTHONFAULTHANDLER="1")
        err = _communicate(proc, tmp_path, address, timeout=300)
    assert proc.returncode == 1, err
    assert "FAILED poison: worker lost" in err
    scheduler_log = (tmp_path / "scheduler.log").read_text()
    assert scheduler_log.count("Remove worker") >= 2  # it did kill workers, more than once
    # the good subjects' results were let go once fetched: no worker loss made them run again
    assert "lose already computed task" not in scheduler_log
    assert sorted(read_index(str(dest))["subject"]) == ["good0", "good1"]
    (failed,) = [s for s in _report(dest)["subjects"] if s["status"] == "failed"]
    assert failed["subject"] == "poison" and "worker lost" in failed["error"]


@pytest.mark.parametrize("command", ["stats", "tacs"])
def test_analytics_survive_a_worker_killed_mid_subject(command, source, tmp_path):
    cohort = tmp_path / "cohort"
    if command == "stats":
        from petzarr.cohort.executor import Run
        from petzarr.convert.job import convert_cohort

        run = Run(serial=True, progress=False)
        assert convert_cohort(str(source), str(cohort), run=run).exit_code == 0
        subjects = [f"{i:04d}" for i in range(1, N + 1)]
    else:
        from dynamic_cohort import write_dynamic_cohort

        subjects = [f"sub-00{i}" for i in range(1, 5)]
        write_dynamic_cohort(cohort, tuple(subjects), noise=0.05)
    out = tmp_path / "table.parquet"
    args = [str(cohort), "-o", str(out), "--no-progress"]
    with cli_cluster(tmp_path, workers=2) as address, Client(address) as client:
        proc = subprocess.Popen(
            [PETZARR, command, *args, "--scheduler", address],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        worker = _busy_worker(client, prefix=f"{command}-")
        os.kill(client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    table = pd.read_parquet(out)
    assert sorted(table["Subject"].unique()) == subjects
    # the same numbers as in one process
    serial = tmp_path / "serial.parquet"
    assert (
        subprocess.run(
            [PETZARR, command, *args[:1], "-o", str(serial), "--serial", "--no-progress"],
            capture_output=True,
        ).returncode
        == 0
    )
    pd.testing.assert_frame_equal(table, pd.read_parquet(serial))
