"""A faulty network between petzarr and S3: throttling and dropped connections are ridden
out, a dead endpoint fails in bounded time with its address named.

The CLI runs as users run it, in its own process with its own local cluster of worker
processes, against a fault-injecting proxy (tests/s3_proxy.py) in front of the S3 server.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import s3fs
import zarr
from s3_proxy import Faults, recording_proxy

from petzarr.cohort import open_cohort
from petzarr.cohort.storage import storage_options, zarr_store
from petzarr.synth import write_enhance_cohort

pytestmark = [pytest.mark.s3, pytest.mark.cluster]

PETZARR = str(Path(sys.executable).with_name("petzarr"))


def _petzarr(*words: str, endpoint: str, timeout: float = 600, **env: str):
    environ = os.environ | {"AWS_ENDPOINT_URL": endpoint} | env
    start = time.monotonic()
    proc = subprocess.run(
        [PETZARR, *words], env=environ, capture_output=True, text=True, timeout=timeout
    )
    return proc, time.monotonic() - start


def _arrays(url: str, opts: dict) -> dict[str, np.ndarray]:
    root = zarr.open_group(zarr_store(url, opts, read_only=True), mode="r")
    return {path: np.asarray(a[...]) for path, a in root.arrays()} | {
        f"{g}/{path}": np.asarray(a[...])
        for g, group in root.groups()
        for path, a in group.arrays()
    }


def test_conversion_and_stats_ride_out_throttling_and_dropped_connections(
    tmp_path, s3_server, s3_bucket
):
    source = tmp_path / "enhance"
    write_enhance_cohort(source, subjects=8, size="tiny", seed=5)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    src, dest = f"{s3_bucket}/enhance", f"{s3_bucket}/cohort"
    fs.put(f"{source}/", src.removeprefix("s3://") + "/", recursive=True)

    # the fault-free run: local disk, in one process
    reference = tmp_path / "reference"
    proc, _ = _petzarr("convert", str(source), str(reference), "--serial", endpoint=s3_server)
    assert proc.returncode == 0, proc.stderr
    proc, _ = _petzarr("stats", str(reference), "--serial", "-o", f"{tmp_path}/ref.parquet",
                       endpoint=s3_server)  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    faults = Faults(error_rate=0.15, drop_rate=0.05, seed=3)
    with recording_proxy(s3_server, faults) as (endpoint, _):
        run = ("--workers", "2", "--no-progress", "--no-dashboard")
        proc, _ = _petzarr("convert", src, dest, *run, endpoint=endpoint)
        assert proc.returncode == 0, proc.stderr
        assert "8 converted" in proc.stdout and "0 failed" in proc.stdout
        table = f"{tmp_path}/faulty.parquet"
        stats, _ = _petzarr("stats", dest, *run, "-o", table, endpoint=endpoint)
        assert stats.returncode == 0, stats.stderr
        assert re.search(
            r"8 subjects done, 0 failed in [\d.]+ s; [1-9]\d* S3 requests retried", stats.stdout
        )
    assert faults.done["503"] > 20 and faults.done["drop"] > 5, faults.done

    opts = storage_options(dest)
    cohort = open_cohort(dest, storage_options=opts)
    assert cohort.subjects == [f"{i:04d}" for i in range(1, 9)]
    (report_path,) = fs.glob(f"{dest.removeprefix('s3://')}/reports/convert-*.json")
    report = json.loads(fs.cat(report_path))
    assert report["s3_retries"] > 0 and report["seconds"] > 0
    assert f"{report['s3_retries']} S3 requests retried" in proc.stdout
    assert sum(s["s3_retries"] for s in report["subjects"]) <= report["s3_retries"]

    local = open_cohort(str(reference))
    for subject in cohort.subjects:
        want = _arrays(local.store_url(subject), {})
        got = _arrays(cohort.store_url(subject), opts)
        assert sorted(got) == sorted(want)
        for path in want:
            np.testing.assert_array_equal(got[path], want[path], err_msg=f"{subject} {path}")
    pd.testing.assert_frame_equal(
        pd.read_parquet(table).sort_values(["Subject", "Task", "Label Index"], ignore_index=True),
        pd.read_parquet(f"{tmp_path}/ref.parquet").sort_values(
            ["Subject", "Task", "Label Index"], ignore_index=True
        ),
    )


def test_a_dead_endpoint_fails_in_bounded_time_naming_it(s3_bucket):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc, seconds = _petzarr(
        "stats", f"{s3_bucket}/cohort", "--serial", "-o", "/dev/null", endpoint=dead,
        timeout=120, PETZARR_S3__MAX_ATTEMPTS="3",
    )  # fmt: skip
    assert proc.returncode != 0
    assert dead in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert seconds < 60
