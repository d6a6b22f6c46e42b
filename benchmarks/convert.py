"""Conversion benchmark: one `full` synthetic ENHANCE subject, petzarr against its peers.

    python benchmarks/convert.py [--data DIR] [--repeat 3]

Every variant runs in its own process (peak RSS from ``os.wait4``: the largest single
process, workers included), ``--repeat`` times; medians are printed, with MB/s of raw
(uncompressed) input and the ratio of each variant's time to petzarr's in-process time.

- gunzip floor: ISA-L reading every file of the subject (the least any converter must do);
- petzarr serial: ``petzarr convert --serial`` (one subject, in-process, no cluster),
  pyramid and OME image-labels included (the default);
- petzarr serial, no pyramid: the same with ``--no-pyramid`` (level 0 only): the ratio of
  the two per-subject tasks is the pyramid's cost;
- petzarr 1 / 2 workers: ``petzarr convert --workers N`` on two copies of the subject
  (cluster start-up included; per-subject seconds reported too);
- naive: ``nibabel.load`` + ``get_fdata`` + ``xarray.Dataset.to_zarr`` defaults per file;
- nii2zarr: the NIfTI-Zarr reference converter (``niizarr.nii2zarr``) per file.
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


def files_of(src: Path, subject: str = "0001") -> list[Path]:
    return sorted(src.rglob(f"{subject}.nii.gz"))


def raw_bytes(files: list[Path]) -> int:
    import nibabel as nib

    total = 0
    for f in files:
        img = nib.load(f)
        total += int(img.header.get_data_dtype().itemsize) * int(__import__("math").prod(img.shape))
    return total


# -- variants, each run in a child process ----------------------------------------------------
def v_gunzip(src: Path, out: Path) -> dict:
    import numpy as np
    from isal import igzip_threaded

    buf = np.empty(64 * 2**20, np.uint8)
    for f in files_of(src):
        with igzip_threaded.open(f, "rb") as g:
            while g.readinto(buf):
                pass
    return {}


def v_petzarr_serial(src: Path, out: Path, *, pyramid: bool = True) -> dict:
    from petzarr.cohort.executor import Run
    from petzarr.convert.job import convert_cohort
    from petzarr.convert.plan import ConvertOptions

    rep = convert_cohort(
        str(src),
        str(out),
        subjects=["0001"],
        run=Run(serial=True, progress=False),
        options=ConvertOptions(pyramid=pyramid),
    )
    assert rep.exit_code == 0, rep.failed
    stored = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"subject_s": [r.seconds for r in rep.results], "stored_gb": stored / 1e9}


def v_petzarr_serial_level0(src: Path, out: Path) -> dict:
    return v_petzarr_serial(src, out, pyramid=False)


def _petzarr_workers(n: int, manifest: Path, out: Path) -> dict:
    from petzarr.cohort.executor import Run
    from petzarr.convert.job import convert_cohort

    rep = convert_cohort(str(manifest), str(out), run=Run(workers=n, progress=False))
    assert rep.exit_code == 0, rep.failed
    return {"subject_s": [r.seconds for r in rep.results], "subjects": len(rep.results)}


def v_petzarr_1w(src: Path, out: Path) -> dict:
    return _petzarr_workers(1, src.parent / "manifest.csv", out)


def v_petzarr_2w(src: Path, out: Path) -> dict:
    return _petzarr_workers(2, src.parent / "manifest.csv", out)


def v_naive(src: Path, out: Path) -> dict:
    import nibabel as nib
    import xarray as xr

    for f in files_of(src):
        data = nib.load(f).get_fdata()
        ds = xr.Dataset({"data": (("x", "y", "z"), data)})
        ds.to_zarr(out / f"{f.parent.name}.zarr", mode="w")
    return {}


def v_nii2zarr(src: Path, out: Path) -> dict:
    from niizarr import nii2zarr

    for f in files_of(src):
        nii2zarr(str(f), str(out / f"{f.parent.name}.zarr"))
    return {}


VARIANTS = {
    "gunzip floor (isal)": v_gunzip,
    "petzarr serial": v_petzarr_serial,
    "petzarr serial, no pyramid": v_petzarr_serial_level0,
    "petzarr 1 worker (2 subj)": v_petzarr_1w,
    "petzarr 2 workers (2 subj)": v_petzarr_2w,
    "naive nibabel+xarray": v_naive,
    "nifti-zarr nii2zarr": v_nii2zarr,
}


def run_child(name: str, src: Path) -> tuple[float, float, dict]:
    """Run one variant in a fresh process: wall seconds, peak RSS (GB), its extra figures."""
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    result = out / "result.json"
    cmd = [
        sys.executable,
        str(HERE),
        "--child",
        name,
        "--data",
        str(src.parent),
        "--result",
        str(result),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"variant {name!r} failed")
    extra = json.loads(result.read_text())
    shutil.rmtree(out, ignore_errors=True)
    return wall, usage.ru_maxrss / 2**20, extra


def prepare(data: Path) -> Path:
    """A full synthetic subject under data/source and a two-subject manifest of it."""
    src = data / "source"
    if not (src / "labels.json").exists():
        from petzarr.synth import write_enhance_cohort

        print(f"generating one full subject in {src} ...", flush=True)
        write_enhance_cohort(src, subjects=1, size="full", seed=0)
    import pandas as pd

    rows = []
    for sid in ("a", "b"):
        row = {
            "subject": sid,
            "ct": "source/imaging-data/images/CT/0001.nii.gz",
            "pet": "source/imaging-data/images/PT/0001.nii.gz",
        }
        for f in files_of(src):
            if "ground-truth" in str(f):
                row[f"seg_{f.parent.name}"] = str(f.relative_to(data))
        rows.append(row)
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    shutil.copy(src / "labels.json", data / "labels.json")
    return src


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "petzarr-bench-convert"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="comma-separated variant names (substring match)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        out = args.result.parent
        extra = VARIANTS[args.child](args.data / "source", out / "o")
        args.result.write_text(json.dumps(extra))
        return

    src = prepare(args.data)
    files = files_of(src)
    raw = raw_bytes(files)
    packed = sum(f.stat().st_size for f in files)
    print(
        f"subject: {len(files)} files, {raw / 1e9:.2f} GB raw, {packed / 1e9:.2f} GB gzipped; "
        f"{os.cpu_count()} cores; median of {args.repeat}"
    )
    names = [n for n in VARIANTS if not args.only or any(o in n for o in args.only.split(","))]
    rows = {}
    for _ in range(args.repeat):  # interleave variants so drift hits all alike
        for name in names:
            wall, rss, extra = run_child(name, src)
            rows.setdefault(name, []).append((wall, rss, extra))
    base = statistics.median(w for w, _, _ in rows.get("petzarr serial", [(float("nan"), 0, {})]))
    floor = statistics.median(
        w for w, _, _ in rows.get("gunzip floor (isal)", [(float("nan"), 0, {})])
    )
    print(
        f"{'variant':<28} {'wall s':>8} {'MB/s raw':>9} {'/petzarr':>9} {'/gunzip':>8} "
        f"{'peak RSS GB':>12}  notes"
    )
    for name, runs in rows.items():
        wall = statistics.median(w for w, _, _ in runs)
        rss = max(r for _, r, _ in runs)
        n_subj = runs[0][2].get("subjects", 1)
        note = ""
        if "subject_s" in runs[0][2]:
            per = statistics.median(s for _, _, e in runs for s in e["subject_s"])
            note = f"per-subject task {per:.2f} s"
        if "stored_gb" in runs[0][2]:
            note += f", stored {runs[0][2]['stored_gb']:.3f} GB"
        print(
            f"{name:<28} {wall:8.2f} {n_subj * raw / wall / 1e6:9.0f} {wall / base:9.2f} "
            f"{wall / floor:8.2f} {rss:12.2f}  {note}"
        )

    tasks = {
        n: statistics.median(s for _, _, e in rows[n] for s in e["subject_s"])
        for n in ("petzarr serial", "petzarr serial, no pyramid")
        if n in rows
    }
    if len(tasks) == 2:
        ratio = tasks["petzarr serial"] / tasks["petzarr serial, no pyramid"]
        print(f"pyramid cost: per-subject task {ratio:.3f}x level 0 alone")


if __name__ == "__main__":
    main()
