"""Organ-statistics benchmark: one `full` synthetic subject, petzarr against the usual ways.

    python benchmarks/stats.py [--data DIR] [--repeat 1] [--only NAME,...]

Each variant runs in its own process (peak RSS from ``os.wait4``); the time printed is the
work alone (data reading included, interpreter start-up and imports excluded), so the
ratios compare methods, not Python start-up. All variants compute count, mean, STD, min
and max of PET for every label of all seven maps.

- petzarr fused: ``subject_stats`` from Zarr, moments only (erosion 0, no median/peak);
- petzarr full: the same with erosion 0 and 1, exact median and SUVpeak;
- petzarr 2 workers: ``cohort_stats`` on two copies of the subject, a 2-process cluster
  (start-up excluded), seconds per subject;
- MOOSE way: SimpleITK reads the .nii.gz files, resamples each map onto the PET
  (nearest neighbour), ``LabelIntensityStatisticsImageFilter``;
- TotalSegmentator way: the PET cast to int16 as TotalSegmentator's statistics do, one
  boolean mask per label over the whole volume (maps on the PET grid, from the store);
- scipy.ndimage: ``ndimage.mean/standard_deviation/minimum/maximum/sum_labels`` per map;
- xarray + flox: ``ds.pet.groupby(ds.seg_<map>)`` count/mean/std/min/max per map.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
MAPS = ("body_composition", "cardiac", "muscles", "organs", "peripheral_bones", "ribs", "vertebrae")
FOLDERS = dict(
    zip(
        MAPS,
        (
            "Body-Composition",
            "Cardiac",
            "Muscles",
            "Organs",
            "Peripheral-Bones",
            "Ribs",
            "Vertebrae",
        ),
        strict=True,
    )
)


def _load_store(cohort: Path):
    import xarray as xr

    ds = xr.open_zarr(cohort / "subjects" / "0001.zarr", group="pet", chunks=None)
    return ds.pet.values, {m: ds[f"seg_{m}"].values for m in MAPS}


def v_petzarr_fused(data: Path) -> float:
    from petzarr.analytics.jobs.stats import subject_stats

    t = time.perf_counter()
    subject_stats(
        str(data / "cohort" / "subjects" / "0001.zarr"), median=False, peak=False, suv=False
    )
    return time.perf_counter() - t


def v_petzarr_full(data: Path) -> float:
    from petzarr.analytics.jobs.stats import subject_stats

    t = time.perf_counter()
    subject_stats(
        str(data / "cohort" / "subjects" / "0001.zarr"),
        erosion=(0, 1),
        median=True,
        peak=True,
        suv=False,
    )
    return time.perf_counter() - t


def v_petzarr_2w(data: Path) -> float:
    from distributed import Client, LocalCluster

    from petzarr.analytics.drivers.stats import cohort_stats
    from petzarr.cohort.executor import Run

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as lc,
        Client(lc) as c,
    ):
        c.run(lambda: __import__("petzarr.analytics.jobs.stats"))  # warm the workers' imports
        t = time.perf_counter()
        run = cohort_stats(
            str(data / "cohort2"), run=Run(client=c, progress=False), median=False, peak=False
        )
        elapsed = time.perf_counter() - t
    assert run.exit_code == 0
    return elapsed / 2  # per subject


def v_moose(data: Path) -> float:
    import SimpleITK as sitk

    src = data / "source" / "imaging-data"
    t = time.perf_counter()
    pet = sitk.ReadImage(str(src / "images/PT/0001.nii.gz"), sitk.sitkFloat32)
    for m in MAPS:
        seg = sitk.ReadImage(str(src / "ground-truth" / FOLDERS[m] / "0001.nii.gz"))
        seg = sitk.Resample(
            seg, pet, sitk.Transform(), sitk.sitkNearestNeighbor, 0, seg.GetPixelID()
        )
        f = sitk.LabelIntensityStatisticsImageFilter()
        f.Execute(seg, pet)
        for k in f.GetLabels():
            (
                f.GetMean(k),
                f.GetStandardDeviation(k),
                f.GetMinimum(k),
                f.GetMaximum(k),
                f.GetNumberOfPixels(k),
            )
    return time.perf_counter() - t


def v_totalseg(data: Path) -> float:
    import numpy as np

    t = time.perf_counter()
    pet, maps = _load_store(data / "cohort")
    img = pet.astype(np.int16)  # as TotalSegmentator's statistics loop does
    for seg in maps.values():
        for k in np.unique(seg)[1:]:
            v = img[seg == k]
            v.size, v.mean(), v.std(), v.min(), v.max()
    return time.perf_counter() - t


def v_scipy(data: Path) -> float:
    import numpy as np
    from scipy import ndimage

    t = time.perf_counter()
    pet, maps = _load_store(data / "cohort")
    for seg in maps.values():
        idx = np.unique(seg)[1:]
        ndimage.sum_labels(np.ones_like(seg, dtype=np.int32), seg, idx)
        ndimage.mean(pet, seg, idx), ndimage.standard_deviation(pet, seg, idx)
        ndimage.minimum(pet, seg, idx), ndimage.maximum(pet, seg, idx)
    return time.perf_counter() - t


def v_flox(data: Path) -> float:
    import xarray as xr

    t = time.perf_counter()
    ds = xr.open_zarr(data / "cohort" / "subjects" / "0001.zarr", group="pet", chunks=None).load()
    for m in MAPS:
        g = ds.pet.where(ds[f"seg_{m}"] > 0).groupby(ds[f"seg_{m}"])
        g.count(), g.mean(), g.std(), g.min(), g.max()
    return time.perf_counter() - t


def v_norms(data: Path) -> float:
    from petzarr.analytics.jobs.norms import subject_norms

    t = time.perf_counter()
    subject_norms(str(data / "cohort" / "subjects" / "0001.zarr"))
    return time.perf_counter() - t


VARIANTS = {
    "petzarr fused (1 worker)": v_petzarr_fused,
    "petzarr 2 workers, per subj": v_petzarr_2w,
    "petzarr full (+ero1,med,peak)": v_petzarr_full,
    "petzarr SUV/SUL norms (extra)": v_norms,
    "MOOSE way (SimpleITK)": v_moose,
    "TotalSegmentator way": v_totalseg,
    "scipy.ndimage": v_scipy,
    "xarray + flox": v_flox,
}


def prepare(data: Path) -> None:
    """The full subject (shared with benchmarks/convert.py), converted; a 2-subject copy."""
    src = data / "source"
    if not (src / "labels.json").exists():
        from petzarr.synth import write_enhance_cohort

        print(f"generating one full subject in {src} ...", flush=True)
        write_enhance_cohort(src, subjects=1, size="full", seed=0)
    if not (data / "cohort" / "index.parquet").exists():
        from petzarr.cohort.executor import Run
        from petzarr.convert.job import convert_cohort

        print("converting it ...", flush=True)
        assert (
            convert_cohort(
                str(src), str(data / "cohort"), run=Run(serial=True, progress=False)
            ).exit_code
            == 0
        )
    two = data / "cohort2"
    if not (two / "index.parquet").exists():
        import pandas as pd

        shutil.rmtree(two, ignore_errors=True)
        (two / "subjects").mkdir(parents=True)
        shutil.copy(data / "cohort" / "labels.json", two)
        index = pd.read_parquet(data / "cohort" / "index.parquet")
        rows = []
        for sid in ("a", "b"):
            shutil.copytree(data / "cohort/subjects/0001.zarr", two / f"subjects/{sid}.zarr")
            rows.append(index.iloc[0].to_dict() | {"subject": sid, "store": f"subjects/{sid}.zarr"})
        pd.DataFrame(rows).to_parquet(two / "index.parquet")


def run_child(name: str, data: Path) -> tuple[float, float]:
    out = Path(tempfile.mkdtemp()) / "r.json"
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--child", name, "--data", str(data), "--result", str(out)]
    )
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"variant {name!r} failed")
    return json.loads(out.read_text()), usage.ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "petzarr-bench-convert"
    )
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", help="comma-separated substrings of variant names")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.result.write_text(json.dumps(VARIANTS[args.child](args.data)))
        return
    prepare(args.data)
    import zarr

    pet = zarr.open_group(str(args.data / "cohort/subjects/0001.zarr"), mode="r")["pet/pet"]
    gb = pet.nbytes / 1e9
    n_labels = sum(
        len(t) for t in json.loads((args.data / "cohort/labels.json").read_text()).values()
    )
    print(f"PET {pet.shape} float32 = {gb:.2f} GB; 7 maps, {n_labels} classes; ", end="")
    print(f"{os.cpu_count()} cores; median of {args.repeat}")
    names = [n for n in VARIANTS if not args.only or any(o in n for o in args.only.split(","))]
    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        for name in names:
            runs.setdefault(name, []).append(run_child(name, args.data))
    base = statistics.median(
        s for s, _ in runs.get("petzarr fused (1 worker)", [(float("nan"), 0)])
    )
    print(f"{'variant':<32} {'seconds':>8} {'GB/s PET':>9} {'x petzarr':>10} {'peak RSS GB':>12}")
    for name, rs in runs.items():
        s = statistics.median(x for x, _ in rs)
        print(f"{name:<32} {s:8.2f} {gb / s:9.2f} {s / base:10.1f} {max(r for _, r in rs):12.2f}")
    if "petzarr fused (1 worker)" in runs:
        for name in ("petzarr fused (1 worker)", "petzarr full (+ero1,med,peak)"):
            if name in runs:
                s = statistics.median(x for x, _ in runs[name])
                print(f"projected for 1,597 subjects, {name}: {s * 1597 / 3600:.1f} core-hours")


if __name__ == "__main__":
    main()
