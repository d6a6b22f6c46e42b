"""Publication by index row (format 2): written once, never copied; old versions go after.

On local disk and through a recording proxy in front of the S3 server (moto), which
counts what conversion asks of S3 on the wire.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import s3fs
from s3_proxy import recording_proxy
from stores import store_url

from petzarr.analytics import cohort_stats
from petzarr.cli import main
from petzarr.cohort import open_cohort
from petzarr.cohort.executor import Run
from petzarr.cohort.index import read_index, update_index
from petzarr.convert.job import convert_cohort
from petzarr.convert.plan import ConvertOptions

SERIAL = Run(serial=True, progress=False)


def _stores(dest: Path) -> list[str]:
    return sorted(p.relative_to(dest).as_posix() for p in dest.glob("subjects/**/*.zarr"))


@pytest.fixture
def converted(tiny_cohort, tmp_path):
    source, _ = tiny_cohort
    dest = tmp_path / "cohort"
    report = convert_cohort(str(source), str(dest), run=SERIAL)
    assert report.exit_code == 0
    return source, dest


def test_reconversion_publishes_a_new_version_then_deletes_the_old(converted):
    source, dest = converted
    old = read_index(str(dest)).set_index("subject")["store"]
    report = convert_cohort(
        str(source), str(dest), run=SERIAL, options=ConvertOptions(overwrite=True)
    )
    new = read_index(str(dest)).set_index("subject")["store"]
    assert report.counts["converted"] == 3
    assert all(new[s] != old[s] for s in new.index)
    assert _stores(dest) == sorted(new)  # the old versions are gone, one store each
    body = json.loads(Path(report.report_url).read_text())
    assert sorted(body["deleted"]) == sorted(old)
    assert open_cohort(str(dest)).open("0002", "pet").pet.shape  # the new one reads


def test_a_sealed_version_the_index_never_named_is_adopted_by_the_next_run(converted):
    # as a driver killed between a subject's sealing and the index write leaves it
    source, dest = converted
    index = read_index(str(dest))
    kept = index[index["subject"] != "0002"]
    (dest / "index.parquet").unlink()
    update_index(str(dest), kept.to_dict("records"))
    report = convert_cohort(str(source), str(dest), run=SERIAL)
    assert {r.subject: r.status for r in report.results}["0002"] == "skipped"
    assert read_index(str(dest)).equals(index)


def test_an_unsealed_version_is_not_adopted_and_is_deleted_once_the_subject_commits(converted):
    source, dest = converted
    index = read_index(str(dest))
    (dest / "index.parquet").unlink()
    update_index(str(dest), index[index["subject"] != "0003"].to_dict("records"))
    half = Path(store_url(dest, "0001")).parent.parent / "0003" / "20000101T000000000000Z.zarr"
    shutil.copytree(Path(store_url(dest, "0001")) / "ct", half / "ct")  # no root: not sealed
    shutil.rmtree(dest / index.set_index("subject")["store"]["0003"])  # and no sealed one
    report = convert_cohort(str(source), str(dest), run=SERIAL)
    assert {r.subject: r.status for r in report.results}["0003"] == "converted"
    assert (
        "subjects/0003/20000101T000000000000Z.zarr"
        in json.loads(Path(report.report_url).read_text())["deleted"]
    )
    assert _stores(dest) == sorted(read_index(str(dest))["store"])


def _as_format_1(dest: Path) -> None:
    """Rewrite a cohort as format 1 wrote it: subjects/<id>.zarr, a staging leftover."""
    index = read_index(str(dest))
    for row in index.itertuples():
        store = dest / f"subjects/{row.subject}.zarr"
        (dest / row.store).rename(store)
        (dest / row.store).parent.rmdir()
        meta = json.loads((store / "zarr.json").read_text())
        attrs = meta["attributes"]["petzarr"]
        attrs["format_version"] = attrs["index_row"]["format_version"] = 1
        attrs["index_row"]["store"] = f"subjects/{row.subject}.zarr"
        (store / "zarr.json").write_text(json.dumps(meta))
    index["store"] = [f"subjects/{s}.zarr" for s in index["subject"]]
    index["format_version"] = 1
    index.to_parquet(dest / "index.parquet", index=False)
    (dest / "staging/0002.20200101T000000000000Z.zarr").mkdir(parents=True)


def test_format_1_cohorts_still_read_skip_and_upgrade_on_reconversion(converted):
    source, dest = converted
    _as_format_1(dest)
    stats = cohort_stats(str(dest), groups=["organs"], run=SERIAL).table
    assert set(stats["Subject"]) == {"0001", "0002", "0003"}
    again = convert_cohort(str(source), str(dest), run=SERIAL)
    assert again.counts["skipped"] == 3 and not (dest / "staging").exists()
    assert json.loads(Path(again.report_url).read_text())["swept"] == [
        "0002.20200101T000000000000Z.zarr"
    ]
    upgraded = convert_cohort(
        str(source),
        str(dest),
        subjects=["0002"],
        run=SERIAL,
        options=ConvertOptions(overwrite=True),
    )
    index = read_index(str(dest)).set_index("subject")
    assert upgraded.counts["converted"] == 1
    assert re.fullmatch(r"subjects/0002/\d{8}T\d{12}Z\.zarr", index["store"]["0002"])
    assert index["format_version"]["0002"] == 2 and index["format_version"]["0001"] == 1
    assert not (dest / "subjects/0002.zarr").exists()
    assert (dest / "subjects/0001.zarr").exists()


def test_gc_deletes_only_what_the_index_does_not_name(converted, capsys):
    _, dest = converted
    indexed = _stores(dest)
    orphan = dest / "subjects/0001/20000101T000000000000Z.zarr"
    shutil.copytree(dest / indexed[0], orphan)
    shutil.copytree(dest / indexed[1], dest / "subjects/0009.zarr")  # format 1, unindexed
    assert main(["gc", str(dest), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "subjects/0001/20000101T000000000000Z.zarr" in out and "would delete 2" in out
    assert orphan.exists()
    assert main(["gc", str(dest)]) == 0
    assert "deleted 2 store(s)" in capsys.readouterr().out
    assert _stores(dest) == indexed
    assert main(["gc", str(dest.parent / "nothing")]) == 2  # not a cohort: refused


@pytest.mark.s3
def test_s3_publication_writes_each_chunk_once_and_copies_nothing(
    tiny_cohort, s3_server, s3_bucket
):
    source, _ = tiny_cohort
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True)
    fs.put(f"{source}/", f"{s3_bucket.removeprefix('s3://')}/enhance/", recursive=True)
    dest = f"{s3_bucket}/cohort"
    with recording_proxy(s3_server) as (endpoint, log):
        opts = {"endpoint_url": endpoint}
        first = convert_cohort(
            f"{s3_bucket}/enhance",
            dest,
            run=SERIAL,
            source_storage_options=opts,
            dest_storage_options=opts,
        )
        writes = list(log)
        again = convert_cohort(
            f"{s3_bucket}/enhance",
            dest,
            subjects=["0001"],
            run=SERIAL,
            source_storage_options=opts,
            dest_storage_options=opts,
            options=ConvertOptions(overwrite=True),
        )
        rewrite = log[len(writes) :]
    assert first.exit_code == 0 and again.exit_code == 0
    bucket = s3_bucket.removeprefix("s3://")
    assert not [r for r in log if r.is_copy]  # no CopyObject, ever
    assert not [r for r in log if "/staging/" in r.path]
    chunk_puts = pd.Series([r.path for r in writes if r.method == "PUT" and "/c/" in r.path])
    assert len(chunk_puts) > 30 and chunk_puts.is_unique  # each chunk written once
    stored = {
        "/" + k for k in fs.find(f"{bucket}/cohort/subjects") if "/c/" in k
    }  # after the re-run: 0002 and 0003 as first written, 0001 anew
    first_0001 = {p for p in chunk_puts if "/subjects/0001/" in p}
    assert stored == set(chunk_puts) - first_0001 | {
        r.path for r in rewrite if r.method == "PUT" and "/c/" in r.path
    }
    # the old version of 0001 is deleted only after the index stops naming it
    index_put = max(i for i, r in enumerate(rewrite) if r.path.endswith("/index.parquet"))
    old_prefix = next(iter(first_0001)).split(".zarr/")[0].removeprefix(f"/{bucket}/")
    deletes = [
        i for i, r in enumerate(rewrite) if r.method == "POST" and old_prefix.encode() in r.body
    ]
    deletes += [i for i, r in enumerate(rewrite) if r.method == "DELETE" and old_prefix in r.path]
    assert deletes and min(deletes) > index_put
