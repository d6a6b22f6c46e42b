"""``dask worker --preload`` module: a worker dies (SIGKILL) when it starts any task whose
key names the subject ``poison``, as one killed by the kernel's or the Nanny's memory guard.

Deterministic where a real memory limit is not: whether the Nanny's 100 ms memory poll
catches a task's peak depends on the machine's speed.
"""

from __future__ import annotations

import os
import signal

from distributed import WorkerPlugin


class KillOnPoison(WorkerPlugin):
    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and "-poison-" in str(key):
            os.kill(os.getpid(), signal.SIGKILL)


async def dask_setup(worker):
    await worker.plugin_add(KillOnPoison(), name="kill-poison")
