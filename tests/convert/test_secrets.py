"""Secrets stay secret: S3 credentials never reach an output petzarr writes or prints.

Fake credentials (moto accepts any) go in two ways users give them: the environment of
the CLI and of ``dask worker`` processes, and storage options passed to the Python API.
A conversion with one broken subject (so the error path runs too) and ``stats`` run on
a cluster started from the command line; then stdout, stderr, the cluster's logs, every
object under the bucket (index, reports, store attributes, tables) and the names of the
Dask tasks are searched for the credentials.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import s3fs
from cli_cluster import cli_cluster
from distributed import Client

from petzarr.analytics import cohort_stats
from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort

pytestmark = [pytest.mark.s3, pytest.mark.cluster]

KEY = "AKIAPETZARRFAKEKEY42"
SECRET = "petzarr/Fake+Secret/8c1f2e9d0b7a"
TOKEN = "petzarrFakeSessionToken5d3b"


def _leaks(text: str) -> list[str]:
    return [s for s in (KEY, SECRET, TOKEN) if s in text]


def test_credentials_appear_in_no_output(tmp_path, s3_server, s3_bucket, tiny_cohort, capfd):
    source, _ = tiny_cohort
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    src, dest, api_dest = f"{s3_bucket}/src", f"{s3_bucket}/cohort", f"{s3_bucket}/api"
    fs.put(f"{source}/", src.removeprefix("s3://") + "/", recursive=True)
    ct = f"{src.removeprefix('s3://')}/imaging-data/images/CT/0002.nii.gz"
    fs.pipe(ct, fs.cat(ct)[:1000])  # a truncated file: its subject fails with a message

    creds = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}
    env = os.environ | creds | {"AWS_ENDPOINT_URL": s3_server}
    petzarr = str(Path(sys.executable).with_name("petzarr"))
    with cli_cluster(tmp_path, workers=2, env=creds) as address, Client(address) as client:
        client.get_task_stream(start=time.time())  # the scheduler records tasks from now
        since = time.time()
        outputs = []
        for words in (
            ["convert", src, dest, "--scheduler", address, "--no-progress"],
            ["--debug", "convert", src, dest, "--scheduler", address],
            ["stats", dest, "--scheduler", address, "-o", f"{tmp_path}/stats.parquet"],
        ):
            proc = subprocess.run([petzarr, *words], env=env, capture_output=True, text=True)
            assert proc.returncode in (0, 1), proc.stderr
            outputs += [proc.stdout, proc.stderr]
        assert "0002" in outputs[1] and "truncated" in outputs[1]  # the error path ran

        # the Python API with credentials in its storage options
        opts = {"key": KEY, "secret": SECRET, "token": TOKEN, "endpoint_url": s3_server}
        run = Run(scheduler=address, progress=False)
        report = convert_cohort(
            src, api_dest, run=run, source_storage_options=opts, dest_storage_options=opts
        )
        assert report.counts["failed"] == 1
        cohort_run = cohort_stats(api_dest, run=run, storage_options=opts)
        outputs += [repr(report), repr(cohort_run.failed), cohort_run.table.to_csv()]
        tasks = client.get_task_stream(start=since)
        outputs += [str(t["key"]) for t in tasks]
        assert len(tasks) >= 12  # every subject's tasks of four runs were seen
        outputs += [repr(client.run_on_scheduler(lambda dask_scheduler: sorted(
            dask_scheduler.task_prefixes)))]  # fmt: skip
    captured = capfd.readouterr()
    outputs += [captured.out, captured.err]
    outputs += [p.read_text(errors="replace") for p in tmp_path.glob("*.log")]
    objects = fs.find(s3_bucket.removeprefix("s3://"))
    outputs += [fs.cat(o).decode("latin-1") for o in objects if "/src/" not in o]
    assert any(o.endswith("index.parquet") for o in objects)
    assert any("/reports/" in o for o in objects)
    leaks = [(i, _leaks(text)) for i, text in enumerate(outputs) if _leaks(text)]
    assert not leaks, leaks
