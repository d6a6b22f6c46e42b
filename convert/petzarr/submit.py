"""``dask-submit [SCHEDULER_ADDRESS] SCRIPT [ARGS...]``: run a driver script on a Dask cluster.

distributed once shipped this command and dropped it; petzarr brings it back with its old
contract, built from Dask's own machinery only (no server or queue of our own):

- the script runs on a worker, as one task that *secedes* (it holds no worker thread, so
  the cohort's tasks it submits can run there too), in a fresh Python process with
  ``DASK_SCHEDULER_ADDRESS`` set, so its own ``Client()`` finds the same cluster;
- its stdout and stderr stream back as it writes them (worker events on a topic the
  submitting client subscribes to), and are kept in a log file on that worker (``--log``);
- its exit status becomes this command's. ``--detach`` leaves it running with no client
  attached (``fire_and_forget``) and prints where its log is.

The address defaults to ``DASK_SCHEDULER_ADDRESS`` (dask config ``scheduler-address``).
``petzarr submit`` is the same command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask

__all__ = ["main", "run_script"]

#: How long the submitting terminal waits, after the script ended, for its last output.
_DRAIN_S = 10.0


def build_parser(prog: str = "dask-submit") -> argparse.ArgumentParser:
    """The options; ``[SCHEDULER_ADDRESS] SCRIPT [ARGS...]`` follow them and are split by hand,
    so that every word after SCRIPT, options included, is the script's."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=f"{prog} [--detach] [--log PATH] [SCHEDULER_ADDRESS] SCRIPT [ARGS...]",
        description="Run a Python driver script on a Dask cluster as a task; its output "
        "streams back and its exit status is this command's. SCHEDULER_ADDRESS defaults to "
        "$DASK_SCHEDULER_ADDRESS.",
    )
    parser.add_argument(
        "--detach", action="store_true", help="leave the script running and return at once"
    )
    parser.add_argument(
        "--log",
        metavar="PATH",
        help="the script's log on the worker that runs it (default: in its temp folder); "
        "e.g. DEST/reports/submit.log to keep it beside the run reports",
    )
    return parser


def parse(
    argv: Sequence[str], prog: str = "dask-submit"
) -> tuple[argparse.Namespace, str | None, Path, list[str]]:
    """``[OPTIONS] [ADDRESS] SCRIPT ARGS...`` -> (options, address or None, script, args)."""
    parser = build_parser(prog)
    words = list(argv)
    n = 0
    while n < len(words) and words[n].startswith("-"):
        n += 2 if words[n] == "--log" else 1
    opts = parser.parse_args(words[:n])
    words = words[n:]
    if not words:
        parser.error("give the script to run")
    if len(words) >= 2 and not Path(words[0]).is_file():
        address, script, args = words[0], words[1], words[2:]
    else:
        address, script, args = None, words[0], words[1:]
    if not Path(script).is_file():
        parser.error(f"no script {script!r}")
    address = address or dask.config.get("scheduler-address", None)
    if not address:
        parser.error("give a scheduler address or set DASK_SCHEDULER_ADDRESS")
    return opts, address, Path(script), args


def main(argv: Sequence[str] | None = None, *, prog: str = "dask-submit") -> int:
    opts, address, script, args = parse(sys.argv[1:] if argv is None else argv, prog)

    from distributed import fire_and_forget

    from petzarr.cohort.executor import Run

    key = f"dask-submit-{script.stem}-{uuid.uuid4().hex[:8]}"
    with Run(scheduler=address, progress=False).connect() as client:
        done = threading.Event()
        status: dict[str, int] = {}

        def show(event: Any) -> None:
            _, (stream, text) = event
            if stream == "exit":
                status["code"] = int(text)
                done.set()
            else:
                out = sys.stderr if stream == "err" else sys.stdout
                out.write(text)
                out.flush()

        if not opts.detach:
            client.subscribe_topic(key, show)
        future = client.submit(
            run_script,
            script.read_text(),
            script.name,
            args,
            topic=key,
            log=opts.log,
            key=key,
            pure=False,
        )
        if opts.detach:
            fire_and_forget(future)
            time.sleep(0.5)  # let the scheduler take the task before this client goes
            where = opts.log or f"{tempfile.gettempdir()}/dask-submit/{key}.log"
            print(f"submitted {key} to {address}")
            print(f"its output goes to {where} on the worker that runs it (tail -f to follow)")
            return 0
        code = int(future.result())
        done.wait(_DRAIN_S)  # the last output and the exit event travel apart from the result
        client.unsubscribe_topic(key)
        return status.get("code", code)


def run_script(
    source: str, name: str, args: Sequence[str], *, topic: str, log: str | None = None
) -> int:
    """The task: run ``source`` as a script in a fresh Python, stream its output, return its
    exit status. Runs on a worker, seceded from its thread pool."""
    from distributed import get_worker, secede

    worker = get_worker()
    secede()  # the script's own tasks may use this worker's thread
    env = dict(os.environ, DASK_SCHEDULER_ADDRESS=worker.scheduler.address)
    log_path = Path(log or f"{tempfile.gettempdir()}/dask-submit/{topic}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as folder, open(log_path, "w") as log_file:
        path = Path(folder) / name
        path.write_text(source)
        proc = subprocess.Popen(
            [sys.executable, "-u", str(path), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def pump(pipe: Any, stream: str) -> None:
            # chunks, not lines: progress bars rewrite one line with '\r'
            while chunk := os.read(pipe.fileno(), 65536):
                text = chunk.decode(errors="replace")
                with lock:
                    log_file.write(text)
                    log_file.flush()
                worker.log_event(topic, (stream, text))

        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True),
        ]
        for t in pumps:
            t.start()
        code = proc.wait()
        for t in pumps:
            t.join()
    worker.log_event(topic, ("exit", str(code)))
    return code


if __name__ == "__main__":
    sys.exit(main())
