"""Shared fixtures: a real S3 API server on loopback, a real multi-process Dask cluster,
and tiny synthetic cohorts generated in code."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "hedypet"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto in server mode on 127.0.0.1, port 0; reached through s3fs like real S3.

    Sets ``AWS_ENDPOINT_URL`` and dummy credentials for this process and every process it
    starts (the Dask workers of the cluster fixture inherit them).
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    try:
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, empty bucket; returns ``s3://<name>``."""
    import s3fs

    name = f"petzarr-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    fs.mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory):
    """Three tiny ENHANCE-layout subjects (read-only: copy before changing files)."""
    from petzarr.synth import write_enhance_cohort

    root = tmp_path_factory.mktemp("tiny-enhance")
    truth = write_enhance_cohort(root, subjects=3, size="tiny", seed=7)
    return root, truth


@pytest.fixture(scope="session")
def cluster(s3_server: str) -> Iterator[str]:
    """A real multi-process Dask cluster (2 single-threaded worker processes); its address.

    Depends on the S3 server so the workers inherit its endpoint and credentials.
    """
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as lc:
        yield lc.scheduler_address


@pytest.fixture(scope="session")
def cli_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A cluster as users start one: ``dask scheduler`` and two ``dask worker`` processes
    from the command line, with the CLI's defaults (a Nanny each); its address."""
    from cli_cluster import cli_cluster as start

    with start(tmp_path_factory.mktemp("cli-cluster"), workers=2) as address:
        yield address
