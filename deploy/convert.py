"""Convert a cohort on whichever Dask cluster this script is given.

    dask-submit SCHEDULER:8786 deploy/convert.py SOURCE DEST [--anon]
    DASK_SCHEDULER_ADDRESS=tcp://sched:8786 python deploy/convert.py SOURCE DEST
    python deploy/convert.py SOURCE DEST            # no address: a local cluster

The cluster is found the way ``distributed.Client()`` finds it (``DASK_SCHEDULER_ADDRESS``
or dask config ``scheduler-address``), so a Kubernetes DaskJob, dask-jobqueue on SLURM and
dask-gateway run this file unchanged. Exit status as ``petzarr convert``.
"""

from __future__ import annotations

import sys

from petzarr.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
