"""large_buffers() on a process started as Dask's Nanny starts workers (MALLOC_TRIM_THRESHOLD_).

Each case runs in a fresh interpreter, since glibc reads those variables at start-up. Page
faults, not seconds, are counted: a mapped-afresh buffer faults in every page it touches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc is what is measured"
)

# A mid-sized buffer such as a zstd workspace of one Blosc block: malloc, touch, free, 400
# times; the page faults of each phase: before, inside large_buffers(), after it.
CHURN = """
import ctypes, json, resource
from petzarr.cohort.allocator import large_buffers
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(400):
        p = libc.malloc(1_167_360)
        ctypes.memset(p, 1, 1_167_360)
        libc.free(p)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

first = faults()
with large_buffers():
    inside = faults()
after = faults()
print(json.dumps({"before": first, "inside": inside, "after": after}))
"""


def churn(trim: str | None) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if trim is not None:
        env["MALLOC_TRIM_THRESHOLD_"] = trim
    out = subprocess.run(
        [sys.executable, "-c", CHURN], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_a_worker_s_malloc_setting_maps_every_buffer_afresh_but_not_inside_a_task():
    faults = churn("65536")
    pages = 400 * 1_167_360 // 4096
    assert faults["before"] > pages * 0.9  # every buffer faulted in afresh
    assert faults["inside"] < pages * 0.05  # reused from the heap
    assert faults["after"] > pages * 0.9  # the worker's own setting is back


def test_without_the_setting_large_buffers_changes_nothing():
    faults = churn(None)
    pages = 400 * 1_167_360 // 4096
    assert max(faults.values()) < pages * 0.05
