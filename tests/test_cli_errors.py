"""First contact: every common mistake ends in one line naming the file, and the right exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from petzarr.cli import main

PETZARR = str(Path(sys.executable).with_name("petzarr"))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def converted(tiny_cohort, tmp_path_factory):
    source, _ = tiny_cohort
    dest = tmp_path_factory.mktemp("cli-errors") / "cohort"
    assert main(["convert", str(source), str(dest), "--serial", "--no-progress"]) == 0
    return source, dest


def test_dest_that_is_a_file(tiny_cohort, tmp_path, capsys):
    source, _ = tiny_cohort
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["convert", str(source), str(afile), "--serial", "--no-progress"]) == 2
    assert _one_line(capsys) == (
        f"petzarr convert: {afile}: is a file; DEST must be a folder or an s3:// prefix"
    )


def test_source_that_does_not_exist(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nothere"), str(tmp_path / "d"), "--serial"]) == 2
    assert _one_line(capsys).endswith("nothere: does not exist")
    assert not (tmp_path / "d").exists()  # nothing written


@pytest.mark.parametrize("command", ["stats", "norms", "tacs", "input-functions", "info"])
def test_commands_refuse_what_is_not_a_cohort(command, tiny_cohort, tmp_path, capsys):
    source, _ = tiny_cohort
    run = [] if command == "info" else ["--serial", "--no-progress"]
    assert main([command, str(tmp_path / "nothere"), *run]) == 2
    assert _one_line(capsys).endswith("nothere: does not exist")
    assert main([command, str(source), *run]) == 2  # a source folder, not a converted cohort
    assert "not a petzarr cohort (no index.parquet)" in _one_line(capsys)


def test_malformed_labels_json_names_the_file(converted, tmp_path, capsys):
    source, dest = converted
    broken = tmp_path / "cohort"
    shutil.copytree(dest, broken)
    (broken / "labels.json").write_text("{not json")
    assert main(["info", str(broken)]) == 2
    line = _one_line(capsys)
    assert f"{broken}/labels.json: not valid JSON" in line
    src = tmp_path / "src"
    shutil.copytree(source, src)
    (src / "labels.json").write_text("[1, 2")
    assert main(["convert", str(src), str(tmp_path / "out"), "--serial", "--no-progress"]) == 2
    assert f"{src}/labels.json: not valid JSON" in _one_line(capsys)


def test_debug_shows_the_traceback(tmp_path):
    env = dict(os.environ, PETZARR_DEBUG="1")
    done = subprocess.run(
        [PETZARR, "info", str(tmp_path / "nothere")], capture_output=True, text=True, env=env
    )
    assert done.returncode != 0 and "Traceback" in done.stderr
    done = subprocess.run(
        [PETZARR, "--debug", "info", str(tmp_path / "nothere")], capture_output=True, text=True
    )
    assert "Traceback" in done.stderr


def _without_aws(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # no credentials anywhere, and no instance-metadata lookups to wait for
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


@pytest.mark.s3
def test_s3_without_credentials_suggests_anon(s3_server, tmp_path):
    env = _without_aws(AWS_ENDPOINT_URL=s3_server)
    done = subprocess.run(
        [PETZARR, "convert", "s3://some-bucket/src", str(tmp_path / "d"), "--serial"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "petzarr convert: no AWS credentials found; for a public bucket add --anon"
    )


def test_unreachable_endpoint_says_so(tmp_path):
    env = _without_aws(
        AWS_ENDPOINT_URL="http://127.0.0.1:1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_MAX_ATTEMPTS="1",
    )
    done = subprocess.run(
        [PETZARR, "stats", "s3://some-bucket/cohort", "--serial"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot reach the object store http://127.0.0.1:1" in done.stderr
    assert "AWS_ENDPOINT_URL" in done.stderr


def test_info_says_what_its_help_promises(converted, capsys):
    _, dest = converted
    assert main(["info", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "3 published subject(s)" in out
    assert "last run: " in out and "3 converted" in out
    assert "ct: (" in out and "pet: (" in out and "label maps: body_composition" in out
