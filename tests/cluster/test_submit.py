"""``dask-submit`` / ``petzarr submit`` against ``dask scheduler`` + ``dask worker`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from petzarr.cohort import open_cohort

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_convert_py_runs_on_the_cluster(cli_cluster, tiny_cohort, tmp_path):
    source, truth = tiny_cohort
    dest = tmp_path / "cohort"
    done = _run(
        BIN / "dask-submit", cli_cluster, ROOT / "deploy/convert.py", source, dest, "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    assert "3 subjects: 3 converted" in done.stdout  # the script's stdout, streamed back
    assert open_cohort(str(dest)).subjects == sorted(s.subject for s in truth.subjects)


def test_the_script_finds_the_cluster_and_its_exit_status_is_kept(cli_cluster, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, sys\n"
        "from distributed import Client\n"
        "with Client() as c:\n"
        "    print(os.environ['DASK_SCHEDULER_ADDRESS'], len(c.scheduler_info()['workers']))\n"
        "    print(c.submit(sum, [1, 2]).result(), sys.argv[1:])\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    env = dict(os.environ, DASK_SCHEDULER_ADDRESS=cli_cluster)
    done = _run(BIN / "petzarr", "submit", script, "--flag", "x", env=env)  # address from env
    assert done.returncode == 3, done.stderr
    # its Client() reached the same 2-worker cluster, and a task of its own ran there while
    # it held no worker thread (it seceded)
    assert done.stdout.splitlines() == [f"{cli_cluster} 2", "3 ['--flag', 'x']"]
    assert "to stderr" in done.stderr


def test_detach_returns_at_once_and_the_log_shows_the_run(cli_cluster, tiny_cohort, tmp_path):
    source, _ = tiny_cohort
    dest, log = tmp_path / "cohort", tmp_path / "submit.log"
    t0 = time.monotonic()
    done = _run(
        BIN / "dask-submit",
        "--detach",
        "--log",
        log,
        cli_cluster,
        ROOT / "deploy/convert.py",
        source,
        dest,
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert str(log) in done.stdout
    returned = time.monotonic() - t0
    deadline = time.monotonic() + 120
    while "3 converted" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.5)
    assert len(open_cohort(str(dest)).subjects) == 3
    assert returned < time.monotonic() - t0  # it returned before the conversion finished


def test_without_an_address_it_says_what_to_do(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('never')\n")
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    done = _run(BIN / "dask-submit", script, env=env)
    assert done.returncode == 2
    assert "DASK_SCHEDULER_ADDRESS" in done.stderr and "never" not in done.stdout
    done = _run(BIN / "dask-submit", "tcp://127.0.0.1:1", tmp_path / "missing.py", env=env)
    assert done.returncode == 2 and "no script" in done.stderr
