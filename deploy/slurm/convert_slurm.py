"""Convert a cohort on a SLURM cluster with dask-jobqueue (pip install dask-jobqueue).

    python deploy/slurm/convert_slurm.py SOURCE DEST --jobs 50 [--anon]

Each SLURM job is one single-threaded Dask worker with 3 GB (a full ENHANCE subject peaks
well under that); adjust ``queue``/``account`` to your site.
"""

from __future__ import annotations

import argparse
import sys

from dask_jobqueue import SLURMCluster  # type: ignore[import-not-found]
from distributed import Client

from petzarr.cohort.executor import Run
from petzarr.convert.job import convert_cohort


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--jobs", type=int, default=20, help="SLURM jobs (= workers)")
    parser.add_argument("--anon", action="store_true")
    args = parser.parse_args()
    cluster = SLURMCluster(cores=1, processes=1, memory="3GB", walltime="04:00:00")
    cluster.scale(jobs=args.jobs)
    with Client(cluster) as client:
        report = convert_cohort(args.source, args.dest, run=Run(client=client), anon=args.anon)
    print(report.summary())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
