"""The one executor on real processes: its local cluster, the dashboard, a caller's Client."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from cli_cluster import cli_cluster
from distributed import Client

from petzarr.cohort.executor import Run, dashboard_link

pytestmark = pytest.mark.cluster


TRIM = "MALLOC_TRIM_THRESHOLD_"  # asked of each worker with os.getenv, which pickles anywhere


def test_local_cluster_workers_run_without_the_trim_setting(capsys):
    # the Nanny would set MALLOC_TRIM_THRESHOLD_, halving a conversion task's speed
    with Run(workers=1, progress=False).connect() as client:
        assert list(client.run(os.getenv, TRIM).values()) == [None]
        assert client.run(os.getpid) != {"": os.getpid()}  # a worker process of its own


def test_local_cluster_serves_the_dashboard_and_prints_its_link(capsys):
    with Run(workers=1).connect() as client:
        link = dashboard_link(client)
        err = capsys.readouterr().err
        assert link and f"Dask dashboard: {link}" in err
        with urllib.request.urlopen(link, timeout=30) as page:  # bokeh is installed: not a 404
            assert page.status == 200
    with Run(workers=1, dashboard=None).connect():
        assert "Dask dashboard" not in capsys.readouterr().err


def test_a_client_the_caller_made_is_used(cli_cluster):
    with Client(cli_cluster) as mine:
        with Run(progress=False).connect() as client:
            assert client is mine
        outcomes = list(Run(progress=False).map(os.getenv, [TRIM, TRIM], desc="env"))
    assert all(o.failure is None for o in outcomes), outcomes
    # dask worker from the CLI keeps the Nanny's default: petzarr's tasks must not rely on it
    assert [o.value for o in outcomes] == ["65536", "65536"]


def test_deploy_readme_recipe_starts_dask_workers_without_the_trim_setting(tmp_path):
    # the dask config file deploy/README.md gives for `dask worker` started by hand
    (tmp_path / "dask").mkdir()
    (tmp_path / "dask" / "petzarr.yaml").write_text(
        "distributed:\n  nanny:\n    pre-spawn-environ:\n      MALLOC_TRIM_THRESHOLD_: null\n"
    )
    env = {"DASK_CONFIG": str(tmp_path / "dask")}
    with cli_cluster(tmp_path, workers=1, env=env) as address, Client(address) as client:
        assert list(client.run(os.getenv, TRIM).values()) == [None]


def test_a_taken_dashboard_port_is_no_fault(capsys):
    import socket
    import warnings

    with socket.socket() as taken:  # the port distributed would otherwise try first
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 8787))
        except OSError:
            pass  # somebody holds it already: the same situation
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Run(workers=1).connect():
                pass
    assert not [w for w in caught if "already in use" in str(w.message)]
    assert "Dask dashboard: http://" in capsys.readouterr().err


def test_cli_workers_start_with_the_trim_setting_petzarr_tasks_work_around(cli_cluster):
    # the premise of petzarr.cohort.allocator: `dask worker` (its Nanny) sets it
    with Client(cli_cluster) as client:
        assert set(client.run(os.getenv, TRIM).values()) == {"65536"}


def test_the_deploy_image_s_dask_config_starts_workers_without_the_trim_setting(tmp_path):
    config = Path(__file__).resolve().parents[2] / "deploy" / "dask.yaml"
    with cli_cluster(tmp_path, workers=1, env={"DASK_CONFIG": str(config)}) as address:
        with Client(address) as client:
            assert list(client.run(os.getenv, TRIM).values()) == [None]


def test_a_task_threads_itself_to_its_share_of_its_host_s_cores(tmp_path, cli_cluster):
    import cli_cluster as cc

    from petzarr.cohort.executor import task_threads

    cores = os.cpu_count() or 1

    def shares(run: Run) -> list[int]:
        return [o.value for o in run.map(task_threads, [7, 7, 7], desc="threads")]

    assert shares(Run(serial=True, progress=False)) == [7, 7, 7]  # in one process: as asked
    with Client(cli_cluster) as client:  # two single-threaded workers on this host
        assert shares(Run(client=client, progress=False)) == [max(1, cores // 2)] * 3
    with cc.cli_cluster(tmp_path, workers=1) as address, Client(address) as client:
        assert shares(Run(client=client, progress=False)) == [cores] * 3  # a lone worker
