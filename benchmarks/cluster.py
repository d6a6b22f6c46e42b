"""Cluster benchmark: the `petzarr` CLI on a cluster started as users start one.

    python benchmarks/cluster.py [--scaling] [--per-subject] [--data DIR] [--repeat 3]
                                 [--json PATH]

The cluster is ``dask scheduler --port 0 --scheduler-file F --no-dashboard`` and N
``dask worker --scheduler-file F --nthreads 1`` processes (a Nanny each, the worker CLI's
defaults and environment), a fresh one per repeat and N; its start-up is not timed. Each
petzarr command is timed from outside as a whole process (interpreter start-up, imports
and index reading included); medians over ``--repeat``. Peak RSS: of the CLI process
(``os.wait4``) and of the largest worker process over the cluster's life (``getrusage``).

- ``--scaling``: 8 `small` synthetic subjects (``--subjects``, ``--size``);
  ``petzarr convert`` then ``petzarr stats`` with ``--serial`` and with ``--scheduler`` on
  1 and 2 workers: wall seconds, subjects per minute and the 2/1-worker throughput
  speed-up of each command, from the CLI's wall time and from the cluster's busy span
  (first task start to last task end, from the scheduler's task stream), which leaves out
  the CLI's fixed start-up.
- ``--per-subject``: one `full` subject; the subject's task time on a 1-worker cluster
  against ``--serial``. Conversion: ``seconds`` of the run report, both ways. Stats: on
  the cluster the task's ``compute`` time from the scheduler's task stream; serially the
  same task (the stats driver's ``SubjectTask`` with the CLI's default options, through
  ``Run(serial=True).map``) timed in a fresh process, cohort opening excluded.
  The goal is a cluster/serial ratio of at most 1.15.

Both parts run when neither flag is given. Inputs are generated once into ``--data``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent


def run_cli(*words: str) -> tuple[float, float]:
    """Run ``petzarr WORDS``: wall seconds and the process's peak RSS (GB)."""
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN / "petzarr"), *words], stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"petzarr {' '.join(words)} failed:\n{err.read()}")
    return wall, usage.ru_maxrss / 2**20


def synth(folder: Path, subjects: int, size: str) -> Path:
    """The synthetic cohort in ``folder``, generated once (renamed into place when whole)."""
    if not folder.exists():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        print(f"generating {subjects} {size} subject(s) in {folder} ...", flush=True)
        run_cli("synth", str(partial), "--subjects", str(subjects), "--size", size)
        partial.rename(folder)
    return folder


@contextmanager
def cli_cluster(folder: Path, workers: int) -> Iterator[tuple[str, object]]:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes, logs in ``folder``;
    yields the scheduler's address and a client of it, kills every process group after."""
    from distributed import Client

    info = folder / "scheduler.json"
    scheduler = ["scheduler", "--port", "0", "--scheduler-file", str(info), "--no-dashboard"]
    worker = ["worker", "--scheduler-file", str(info), "--nthreads", "1"]
    procs: list[subprocess.Popen] = []

    def start(words: list[str], log: str) -> None:
        with open(folder / f"{log}.log", "w") as out:  # the child keeps its own descriptor
            procs.append(
                subprocess.Popen(
                    [str(BIN / "dask"), *words],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=folder,
                    start_new_session=True,  # its own group: the Nanny's worker dies with it
                )
            )

    try:
        start(scheduler, "scheduler")
        deadline = time.monotonic() + 60
        while not info.exists():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.2)
        for i in range(workers):
            start(worker, f"worker-{i}")
        with Client(scheduler_file=str(info)) as client:
            client.wait_for_workers(workers, timeout=120)
            # the scheduler records the task stream only once asked for it (no dashboard)
            client.get_task_stream(start=time.time())
            yield client.scheduler.address, client
    finally:
        for proc in reversed(procs):  # workers first
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):  # and whatever it left behind
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker_peak_gb(client) -> float:
    """The largest peak RSS of the worker processes (not their Nannies), in GB."""
    peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return max(peaks.values()) / 2**20


def convert_task_seconds(cohort: Path) -> list[float]:
    """Per-subject seconds of the (only) conversion report of ``cohort``."""
    (report,) = (cohort / "reports").glob("convert-*.json")
    return [s["seconds"] for s in json.loads(report.read_text())["subjects"]]


def task_compute(client, since: float, prefix: str) -> list[tuple[float, float]]:
    """``(start, stop)`` on the worker of each ``prefix`` task finished after ``since``."""
    # petzarr's task keys are f"{desc}-{subject}-{token}"; desc is "convert" or "stats"
    tasks = [t for t in client.get_task_stream(start=since) if str(t["key"]).startswith(prefix)]
    spans = [[s for s in t["startstops"] if s["action"] == "compute"] for t in tasks]
    return [(min(s["start"] for s in c), max(s["stop"] for s in c)) for c in spans if c]


def stats_task_seconds(client, since: float) -> list[float]:
    """Compute seconds, on the worker, of each stats task finished after ``since``."""
    return [stop - start for start, stop in task_compute(client, since, "stats-")]


def busy_span(client, since: float, prefix: str) -> float:
    """Seconds from the first task's start to the last one's end: the cluster's own time,
    without the CLI's start-up, imports and source listing."""
    times = task_compute(client, since, prefix)
    return max(stop for _, stop in times) - min(start for start, _ in times)


def serial_stats_task(cohort: str) -> float:
    """One subject's stats task as ``petzarr stats --serial`` runs it, seconds (child)."""
    from petzarr.analytics.drivers.subjects import SubjectTask
    from petzarr.analytics.jobs.stats import subject_stats
    from petzarr.cohort import open_cohort
    from petzarr.cohort.executor import Run
    from petzarr.cohort.storage import join, storage_options

    # what the CLI and cohort_stats -> run_subjects build, with the CLI's defaults
    opened = open_cohort(cohort, storage_options=storage_options(cohort, anon=False), anon=False)
    (row,) = opened.index.to_dict("records")
    kwargs = {"group": "pet", "groups": None, "erosion": [0], "median": True, "peak": True}
    task = SubjectTask(
        subject_stats,
        join(opened.url, str(row["store"])),
        opened.storage_options,
        kwargs | {"index_row": row},
    )
    start = time.perf_counter()
    (out,) = Run(serial=True, progress=False).map(
        SubjectTask.__call__, [task], desc="stats", names=[str(row["subject"])]
    )
    elapsed = time.perf_counter() - start
    assert out.ok, out.failure
    return elapsed


def run_serial_stats_task(cohort: Path) -> tuple[float, float]:
    """:func:`serial_stats_task` in a fresh process: its seconds and peak RSS (GB)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "r.json"
        cmd = [sys.executable, str(HERE), "--child", str(cohort), "--result", str(result)]
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("the serial stats task failed")
        return json.loads(result.read_text()), usage.ru_maxrss / 2**20


def scaling_run(src: str, workers: int) -> dict:
    """Convert then stats of the cohort at ``src``, serially (``workers=0``) or on a cluster."""
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        dest, table = f"{tmp}/cohort", f"{tmp}/stats.parquet"
        with contextlib.ExitStack() as stack:
            client, where = None, ["--serial"]
            if workers:
                address, client = stack.enter_context(cli_cluster(Path(tmp), workers))
                where = ["--scheduler", address]
            t0 = time.time()
            cw, crss = run_cli("convert", src, dest, *where, "--no-progress")
            t1 = time.time()
            sw, srss = run_cli("stats", dest, *where, "--no-progress", "-o", table)
            extra = {}
            if client:
                extra = {
                    "worker_rss_gb": worker_peak_gb(client),
                    "convert_busy_s": busy_span(client, t0, "convert-"),
                    "stats_busy_s": busy_span(client, t1, "stats-"),
                }
    return {"convert_s": cw, "stats_s": sw, "cli_rss_gb": max(crss, srss)} | extra


def scaling(data: Path, repeat: int, subjects: int = 8, size: str = "small") -> dict:
    src = str(synth(data / f"{size}-{subjects}", subjects, size))
    runs: dict[str, list[dict]] = {}
    for _ in range(repeat):  # interleaved, so drift hits every variant alike
        for n in (0, 1, 2):
            runs.setdefault(f"{n} workers" if n else "serial", []).append(scaling_run(src, n))
    out = {name: _medians(rs) for name, rs in runs.items()}
    for m in out.values():
        for cmd in ("convert", "stats"):
            m[f"{cmd}_subjects_per_min"] = subjects * 60 / m[f"{cmd}_s"]
    one, two = out["1 workers"], out["2 workers"]
    speedup = {c: one[f"{c}_s"] / two[f"{c}_s"] for c in ("convert", "stats")}
    speedup |= {
        f"{c} (busy)": one[f"{c}_busy_s"] / two[f"{c}_busy_s"] for c in ("convert", "stats")
    }
    return {
        "subjects": subjects,
        "size": size,
        "variants": out,
        "speedup_2_over_1": speedup,
        "runs": runs,
    }


def per_subject(data: Path, repeat: int) -> dict:
    src = str(synth(data / "full", 1, "full"))
    runs: list[dict] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
            serial, clustered = Path(tmp) / "serial", Path(tmp) / "cluster"
            cw, _ = run_cli("convert", src, str(serial), "--serial", "--no-progress")
            (convert_serial,) = convert_task_seconds(serial)
            stats_serial, stats_rss = run_serial_stats_task(serial)
            with cli_cluster(Path(tmp), 1) as (address, client):
                where = ["--scheduler", address, "--no-progress"]
                ccw, _ = run_cli("convert", src, str(clustered), *where)
                (convert_cluster,) = convert_task_seconds(clustered)
                since = time.time()
                csw, _ = run_cli("stats", str(clustered), *where, "-o", f"{tmp}/s.parquet")
                (stats_cluster,) = stats_task_seconds(client, since)
                worker = worker_peak_gb(client)
        runs.append(
            {
                "convert_serial_s": convert_serial,
                "convert_cluster_s": convert_cluster,
                "stats_serial_s": stats_serial,
                "stats_cluster_s": stats_cluster,
                "convert_serial_cli_s": cw,
                "convert_cluster_cli_s": ccw,
                "stats_cluster_cli_s": csw,
                "serial_stats_rss_gb": stats_rss,
                "worker_rss_gb": worker,
            }
        )
    out = _medians(runs)
    for cmd in ("convert", "stats"):
        out[f"{cmd}_ratio"] = out[f"{cmd}_cluster_s"] / out[f"{cmd}_serial_s"]
    return out | {"runs": runs}


def _medians(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def print_scaling(res: dict) -> None:
    n = res["subjects"]
    print(f"\nscaling: {n} {res['size']} subjects, CLI wall seconds")
    print(
        f"{'variant':<10} {'convert s':>10} {'subj/min':>9} {'stats s':>8} {'subj/min':>9} "
        f"{'CLI RSS GB':>11} {'worker RSS GB':>14}"
    )
    for name, m in res["variants"].items():
        worker = f"{m['worker_rss_gb']:.2f}" if "worker_rss_gb" in m else "-"
        print(
            f"{name:<10} {m['convert_s']:10.2f} {m['convert_subjects_per_min']:9.1f} "
            f"{m['stats_s']:8.2f} {m['stats_subjects_per_min']:9.1f} {m['cli_rss_gb']:11.2f} "
            f"{worker:>14}"
        )
    for name, m in res["variants"].items():
        if "convert_busy_s" in m:
            print(
                f"{name}: cluster busy (first task start to last task end) convert "
                f"{m['convert_busy_s']:.2f} s, stats {m['stats_busy_s']:.2f} s"
            )
    s = res["speedup_2_over_1"]
    print(
        f"2/1-worker throughput speed-up, CLI wall: convert {s['convert']:.2f}x, stats "
        f"{s['stats']:.2f}x; cluster busy: convert {s['convert (busy)']:.2f}x, stats "
        f"{s['stats (busy)']:.2f}x"
    )


def print_per_subject(res: dict) -> None:
    print("\nper-subject task seconds, one full subject (goal: cluster/serial <= 1.15)")
    head = f"{'command':<8} {'serial s':>9} {'1-worker s':>11} {'ratio':>6}"
    print(f"{head} {'1-worker CLI wall s':>20}")
    for cmd in ("convert", "stats"):
        print(
            f"{cmd:<8} {res[f'{cmd}_serial_s']:9.2f} {res[f'{cmd}_cluster_s']:11.2f} "
            f"{res[f'{cmd}_ratio']:6.2f} {res[f'{cmd}_cluster_cli_s']:20.2f}"
        )
    print(
        f"peak RSS GB: serial stats task {res['serial_stats_rss_gb']:.2f}, "
        f"worker {res['worker_rss_gb']:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scaling", action="store_true", help="1 vs 2 workers")
    ap.add_argument("--subjects", type=int, default=8, help="--scaling cohort size (8)")
    ap.add_argument("--size", default="small", help="--scaling subject size (small; or full)")
    ap.add_argument("--per-subject", action="store_true", help="task time, cluster vs serial")
    ap.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "petzarr-bench-cluster"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.result.write_text(json.dumps(serial_stats_task(args.child)))
        return
    both = not (args.scaling or args.per_subject)
    args.data.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; median of {args.repeat}", flush=True)
    results: dict = {"cores": os.cpu_count(), "repeat": args.repeat}
    if args.scaling or both:
        results["scaling"] = scaling(args.data, args.repeat, args.subjects, args.size)
    if args.per_subject or both:
        results["per_subject"] = per_subject(args.data, args.repeat)
    if "scaling" in results:
        print_scaling(results["scaling"])
    if "per_subject" in results:
        print_per_subject(results["per_subject"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
