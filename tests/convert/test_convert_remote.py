"""Conversion through a real S3 API server (moto, loopback) on a real multi-process cluster."""

from __future__ import annotations

import pytest
import s3fs
from roundtrip import check_interactive_groupby, check_subject

from petzarr.cli import main
from petzarr.cohort import open_cohort
from petzarr.cohort.executor import Run
from petzarr.cohort.storage import storage_options
from petzarr.convert.job import convert_cohort

pytestmark = [pytest.mark.s3, pytest.mark.cluster]


def _upload(local, url: str, endpoint: str) -> None:
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    fs.put(str(local) + "/", url.removeprefix("s3://") + "/", recursive=True)


def test_s3_to_s3_on_a_multiprocess_cluster(tiny_cohort, s3_server, s3_bucket, cluster):
    source, _ = tiny_cohort
    src_url, dest_url = f"{s3_bucket}/enhance", f"{s3_bucket}/cohort"
    _upload(source, src_url, s3_server)
    report = convert_cohort(src_url, dest_url, run=Run(scheduler=cluster, progress=False))
    assert report.exit_code == 0 and report.counts["converted"] == 3
    opts = storage_options(dest_url)
    cohort = open_cohort(dest_url, storage_options=opts)
    assert cohort.subjects == ["0001", "0002", "0003"]
    for subject in cohort.subjects:
        check_subject(source, dest_url, subject, opts)
    check_interactive_groupby(dest_url, "0002", opts)
    # sources on S3 carry ETags; a re-run on the cluster skips everything
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    attrs = fs.cat(f"{cohort.store_url('0001').removeprefix('s3://')}/zarr.json")
    assert b'"etag": "' in attrs
    again = convert_cohort(src_url, dest_url, run=Run(scheduler=cluster, progress=False))
    assert again.counts["skipped"] == 3


def test_local_to_local_on_the_cluster_via_cli(tiny_cohort, tmp_path, cluster, capsys):
    source, _ = tiny_cohort
    code = main(
        ["convert", str(source), str(tmp_path / "c"), "--scheduler", cluster, "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    assert "3 converted" in capsys.readouterr().out
    check_subject(source, str(tmp_path / "c"), "0003")


def _make_public(bucket_url: str, endpoint: str) -> None:
    """Public-read ACLs on the bucket and every object, as a public dataset has."""
    import boto3

    bucket = bucket_url.removeprefix("s3://")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            s3.put_object_acl(Bucket=bucket, Key=obj["Key"], ACL="public-read")


def test_anonymous_read_of_a_public_bucket(tiny_cohort, s3_server, s3_bucket, tmp_path):
    source, _ = tiny_cohort
    _upload(source, f"{s3_bucket}/pub", s3_server)
    _make_public(s3_bucket, s3_server)
    report = convert_cohort(
        f"{s3_bucket}/pub",
        str(tmp_path / "c"),
        subjects=["0001"],
        anon=True,
        run=Run(serial=True, progress=False),
    )
    assert report.exit_code == 0, report.failed
