"""Serving the explorer: ``pn.serve`` on its own thread and IO loop, tables read once."""

from __future__ import annotations

import errno
import io
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn
from matplotlib.figure import Figure

from petzarr.analytics.explore.app import make_app
from petzarr.analytics.explore.tables import Kinetics, checked_stats, computed_stats, read_table
from petzarr.analytics.explore.views import DPI
from petzarr.analytics.explore.volumes import cohort_volumes
from petzarr.cohort.storage import storage_options as options_of


def _warm_up() -> None:
    """Draw one labelled figure now: matplotlib loads its fonts on the first text it lays
    out (about a second), which would otherwise fall on the first visitor's page."""

    fig = Figure(figsize=(2, 2), dpi=DPI, layout="constrained")
    fig.add_subplot().set(title="warm-up", xlabel="x [mm]", ylabel="y [mm]")
    fig.savefig(io.BytesIO(), format="png")


@dataclass
class Served:
    """A running explorer: its URL, and how to stop it."""

    url: str
    server: Any
    thread: threading.Thread
    stop: Callable[[], None]


def serve(cohort_url: str, *, port: int = 0, address: str = "127.0.0.1", anon: bool = False,
          stats_path: str | None = None, qc_path: str | None = None,
          tacs_path: str | None = None, input_functions_path: str | None = None,
          patlak_path: str | None = None, show: bool = False) -> Served:  # fmt: skip
    """Serve the explorer on a background thread (port 0: a free one); tables read once."""
    options = options_of(cohort_url, anon=anon)
    cohort_volumes(cohort_url, options)  # refuses a bad cohort now
    stats = checked_stats(read_table(stats_path, anon=anon) if stats_path
                     else computed_stats(cohort_url, options))  # fmt: skip
    qc = read_table(qc_path, anon=anon) if qc_path else None
    kin = Kinetics(*(read_table(path, anon=anon) if path else None
                     for path in (tacs_path, input_functions_path, patlak_path)))  # fmt: skip
    _warm_up()

    def app() -> Any:  # one browser session's layout
        return make_app(cohort_url, storage_options=options, stats=stats, qc=qc, kinetics=kin)

    if port:
        box, thread = _start(app, port, address, show)
    else:  # bokeh's websocket origin check needs the port before the server binds: a free
        for attempt in range(5):  # port may be taken by another process in between, so retry
            try:
                box, thread = _start(app, _free_port(address), address, show)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
    port = box["port"]

    def stop() -> None:
        box["loop"].add_callback(box["server"].stop)
        box["loop"].add_callback(box["loop"].stop)
        thread.join(10)

    return Served(f"http://{address}:{port}/", box["server"], thread, stop)


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _start(app: Callable[[], Any], port: int, address: str,
           show: bool) -> tuple[dict[str, Any], threading.Thread]:  # fmt: skip
    """``pn.serve`` started on a thread with its own IO loop; raises what starting raised."""
    import asyncio

    from tornado.ioloop import IOLoop

    started = threading.Event()
    box: dict[str, Any] = {"port": port}

    def run() -> None:  # the server's own IO loop, on this thread
        asyncio.set_event_loop(asyncio.new_event_loop())
        box["loop"] = loop = IOLoop.current()
        try:
            box["server"] = pn.serve(
                {"/": app}, port=port, address=address, show=show, start=False, loop=loop,
                verbose=False, websocket_origin=[f"{address}:{port}", f"localhost:{port}"],
                title="petzarr explore",
            )  # fmt: skip
            box["server"].start()
        except Exception as exc:
            box["error"] = exc
            return
        finally:
            started.set()
        loop.start()

    thread = threading.Thread(target=run, name="petzarr-explore", daemon=True)
    thread.start()
    started.wait()
    if "error" in box:
        raise box["error"]
    return box, thread
