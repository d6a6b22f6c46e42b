"""Benchmark: TACs of 117 labels from a Zarr cohort vs nifti_dynamic from the .nii.gz.

    python benchmarks/dynamic_tacs.py [--shape 69 320 220 220] [--labels 117] [--dir DIR]
                                      [--keep] [--reuse] [--no-peer]

A synthetic dynamic series (default 69 frames of 320 x 220 x 220 float32, 4.3 GB raw: the
size the design quotes for nifti_dynamic) and a 117-label map are generated in code, frame
by frame, and written twice: as a one-subject petzarr cohort (``pet_dynamic/pet`` chunked
``(1, 64, ny, nx)``, Blosc as petzarr writes, ``seg_total``), and as ``pet.nii.gz`` +
``seg.nii.gz``.
Labels are blobs (Voronoi cells of random seeds, 4-voxel grain) inside an elliptic body
cylinder; every label has its own curve, plus 10 % voxel noise.

Contenders, each in its own process (its peak RSS from ``os.wait4``):

- ``petzarr``: :func:`petzarr.analytics.jobs.tacs.subject_tacs` on the cohort — the ``petzarr
  tacs`` per-subject job — with all cores, and again on one thread;
- ``nifti_dynamic``: its ``extract-tacs`` command's recipe, ``nib.load`` of the series, the
  label map as ``get_fdata()``, ``extract_multiple_tacs(img, seg)``.

Printed: seconds (inside the process, from opening the data to the TACs; numba's compiled
kernels are warmed up on a tiny array first, as a second run would find them cached), the
ratio, peak RSS, and the largest relative difference between the two (mean, std per label
and frame; target <= 1e-4) and whether the voxel counts agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import cast

import numpy as np

SPACING = (2.0, 1.65, 1.65)  # (dz, dy, dx) mm, hedyPET-like
GRAIN = 4


# --------------------------------------------------------------------------- data


def make_labels(shape, n_labels, rng):
    """A uint8 (z, y, x) map: Voronoi blobs of ``n_labels`` seeds inside a body cylinder."""
    from scipy.spatial import cKDTree

    nz, ny, nx = shape
    coarse = tuple(-(-s // GRAIN) for s in shape)
    yy, xx = np.ogrid[:ny, :nx]
    body = ((yy - ny / 2) / (0.40 * ny)) ** 2 + ((xx - nx / 2) / (0.45 * nx)) ** 2 <= 1
    seeds = []
    while len(seeds) < n_labels:  # seeds inside the body
        s = rng.uniform(0, 1, 3) * np.array(shape)
        if body[int(s[1]), int(s[2])]:
            seeds.append(s / GRAIN)
    grid = np.indices(coarse).reshape(3, -1).T + 0.5
    _, nearest = cKDTree(np.array(seeds)).query(grid)
    lab = (nearest + 1).astype(np.uint8).reshape(coarse)
    full = lab.repeat(GRAIN, 0).repeat(GRAIN, 1).repeat(GRAIN, 2)[:nz, :ny, :nx]
    full = np.ascontiguousarray(full)
    full[:, ~body] = 0
    return full


def frame_times(n):
    """hedyPET's framing (2s x20, 5s x10, 10s x15, 60s x6, 120s x10, 300s x8), cut to ``n``."""
    durations = np.repeat([2.0, 5.0, 10.0, 60.0, 120.0, 300.0], [20, 10, 15, 6, 10, 8])
    if n > durations.size:
        durations = np.concatenate([durations, np.full(n - durations.size, 300.0)])
    durations = durations[:n]
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    return starts, durations


def write_data(root: Path, shape, n_labels, seed=0):
    """The cohort (``root/cohort``) and the NIfTI pair (``root/nifti``); returns bytes written."""
    import isal.igzip
    import nibabel as nib
    import zarr

    from petzarr.cohort import layout
    from petzarr.cohort.index import update_index
    from petzarr.cohort.labels import dump_labels
    from petzarr.cohort.zarr_io import blosc, write_array

    rng = np.random.default_rng(seed)
    nt, nz, ny, nx = shape
    seg = make_labels((nz, ny, nx), n_labels, rng)
    starts, durations = frame_times(nt)
    mids = starts + durations / 2
    # every label its own curve: uptake rising with its own rate plus a washout
    level = np.concatenate([[0.0], rng.uniform(500, 20000, n_labels)]).astype(np.float32)
    rate = np.concatenate([[1.0], rng.uniform(0.2, 5.0, n_labels)])
    names = {k: f"label_{k:03d}" for k in range(1, n_labels + 1)}

    cohort = root / "cohort"
    store = cohort / layout.subject_store("bench")
    g = zarr.open_group(store, mode="w", zarr_format=3).create_group(layout.PET_DYNAMIC_GROUP)
    pet = g.create_array(
        "pet",
        shape=shape,
        dtype=np.float32,
        chunks=(1, min(layout.CHUNK_SLABS, nz), ny, nx),
        compressors=[blosc()],
        fill_value=0,
        dimension_names=("t", *layout.SPATIAL_DIMS),
        attributes={"units": "Bq/mL"},
        config={"write_empty_chunks": True},
    )
    attrs = {"labels": {str(k): v for k, v in names.items()}, "group": "total"}
    write_array(g, "seg_total", seg, dims=layout.SPATIAL_DIMS, attrs=attrs)
    for dim, n, s in zip(layout.SPATIAL_DIMS, (nz, ny, nx), SPACING):
        write_array(g, dim, s * np.arange(n, dtype=np.float64), dims=(dim,))
    write_array(g, "t", mids, dims=("t",))
    write_array(g, "frame_start", starts, dims=("t",))
    write_array(g, "frame_duration", durations, dims=("t",))

    nifti = root / "nifti"
    nifti.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*SPACING[::-1], 1.0])  # RAS+, so nibabel (x, y, z) = ours reversed
    nib.save(nib.Nifti1Image(seg.T, affine), nifti / "seg.nii.gz")
    header = nib.Nifti1Header()
    header.set_data_shape((nx, ny, nz, nt))
    header.set_data_dtype(np.float32)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header["vox_offset"] = 352
    noise = np.empty((nz, ny, nx), np.float32)
    with isal.igzip.open(nifti / "pet.nii.gz", "wb", compresslevel=1) as f:
        f.write(header.binaryblock + b"\0" * 4)
        for t in range(nt):
            curve = level * (1 - np.exp(-rate * mids[t] / 60)).astype(np.float32)
            frame = curve[seg]
            rng.standard_normal(dtype=np.float32, out=noise)
            frame *= 1 + np.float32(0.1) * noise
            pet[t] = frame
            # NIfTI stores x fastest, then y, z, t: the C-order bytes of our (z, y, x) frame
            f.write(frame.tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(store)
    (cohort / layout.LABELS).write_text(dump_labels({"total": names}))
    update_index(str(cohort), [{"subject": "bench", "store": layout.subject_store("bench")}])
    (nifti / "times.json").write_text(json.dumps({"mids": mids.tolist()}))
    return seg


# --------------------------------------------------------------------------- contenders


def run_petzarr(root: Path, threads: int) -> dict:
    import dask

    from petzarr.analytics.jobs.tacs import subject_tacs
    from petzarr.analytics.kernels.moments import accumulate_block

    # warm numba's compiled kernels (a second run finds them in its cache)
    accumulate_block(
        np.zeros((2, 2, 2, 2), np.float32), [np.zeros((2, 2, 2), np.uint8)], n_labels=2
    )
    dask.config.set(num_workers=threads)
    t0 = time.perf_counter()
    table = subject_tacs(str(root / "cohort" / "subjects" / "bench.zarr"), groups=["total"])
    seconds = time.perf_counter() - t0
    table.to_parquet(root / f"petzarr-{threads}.parquet")
    return {"seconds": seconds, "rows": len(table)}


def run_nifti_dynamic(root: Path) -> dict:
    import nibabel as nib
    from nifti_dynamic.tacs import extract_multiple_tacs

    t0 = time.perf_counter()
    img = cast(nib.Nifti1Image, nib.load(root / "nifti" / "pet.nii.gz"))
    seg = cast(nib.Nifti1Image, nib.load(root / "nifti" / "seg.nii.gz")).get_fdata()
    mean, std, n = extract_multiple_tacs(img, seg)
    seconds = time.perf_counter() - t0
    labels = sorted(mean)
    np.savez(
        root / "nifti_dynamic.npz",
        labels=np.array(labels),
        mean=np.array([mean[k] for k in labels]),
        std=np.array([std[k] for k in labels]),
        n=np.array([n[k] for k in labels]),
    )
    return {"seconds": seconds, "rows": len(labels) * img.shape[-1]}


def child(which: str, root: Path, threads: int) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # nifti_dynamic prints per label
        out = run_petzarr(root, threads) if which == "petzarr" else run_nifti_dynamic(root)
    print(json.dumps(out))


def spawn(which: str, root: Path, threads: int = 0) -> dict:
    """Run a contender in a child process; its result, wall time and peak RSS (MB)."""
    r, w = os.pipe()
    argv = [sys.executable, __file__, "--run", which, "--dir", str(root), "--threads", str(threads)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(
        sys.executable, argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)]
    )
    os.close(w)
    with os.fdopen(r) as pipe:
        text = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{which} failed (exit {os.waitstatus_to_exitcode(status)})")
    out = json.loads(text.strip().splitlines()[-1])
    # ru_maxrss is in KiB on Linux; CPU time of the whole process (imports included) says
    # more than wall time on a shared machine
    out.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak_mb=usage.ru_maxrss / 1024)
    return out


def compare(root: Path, threads: int) -> dict:
    import pandas as pd

    ours = pd.read_parquet(root / f"petzarr-{threads}.parquet")
    theirs = np.load(root / "nifti_dynamic.npz")
    labels = theirs["labels"]
    ours = ours.sort_values(["Label Index", "Frame Index"])
    assert sorted(ours["Label Index"].unique()) == labels.tolist(), "different labels"
    nt = theirs["mean"].shape[1]
    mean = ours["PET Mean [Bq/mL]"].to_numpy().reshape(-1, nt)
    std = ours["PET STD [Bq/mL]"].to_numpy().reshape(-1, nt)
    n = ours["Voxel Count"].to_numpy().reshape(-1, nt)

    def rel(a, b):
        return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))

    return {
        "mean": rel(mean, theirs["mean"]),
        "std": rel(std, theirs["std"]),
        "counts_equal": bool(np.array_equal(n, theirs["n"])),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--shape", type=int, nargs=4, default=(69, 320, 220, 220), metavar=("T", "Z", "Y", "X")
    )
    p.add_argument("--labels", type=int, default=117)
    p.add_argument("--dir", help="work folder (default: a temporary one, removed afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--reuse", action="store_true", help="use the data already in --dir")
    p.add_argument("--no-peer", action="store_true", help="skip nifti_dynamic (it is slow)")
    p.add_argument("--run", choices=["petzarr", "nifti_dynamic"], help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        return child(args.run, Path(args.dir), args.threads)

    root = Path(args.dir or tempfile.mkdtemp(prefix="petzarr-dyn-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    shape = tuple(args.shape)
    gb = np.prod(shape) * 4 / 1e9
    cores = os.cpu_count() or 1
    print(
        f"series {shape[0]} x {shape[1]} x {shape[2]} x {shape[3]} float32 ({gb:.2f} GB), "
        f"{args.labels} labels, {cores} cores"
    )
    try:
        t0 = time.perf_counter()
        if not (args.reuse and (root / "nifti" / "times.json").is_file()):
            write_data(root, shape, args.labels)
        zarr_gb = sum(f.stat().st_size for f in (root / "cohort").rglob("*") if f.is_file()) / 1e9
        nii_gb = (root / "nifti" / "pet.nii.gz").stat().st_size / 1e9
        print(
            f"data ready in {time.perf_counter() - t0:.1f} s: zarr {zarr_gb:.2f} GB, "
            f"pet.nii.gz {nii_gb:.2f} GB"
        )
        results = {f"petzarr ({cores} threads)": spawn("petzarr", root, cores)}
        if cores > 1:
            results["petzarr (1 thread)"] = spawn("petzarr", root, 1)
        if not args.no_peer:
            results["nifti_dynamic"] = spawn("nifti_dynamic", root)
        head = ("seconds", 9), ("GB/s", 7), ("wall s", 9), ("CPU s", 9), ("peak RSS MB", 13)
        print(f"{'contender':<24}" + "".join(f"{h:>{w}}" for h, w in head))
        for name, r in results.items():
            print(
                f"{name:<24}{r['seconds']:>9.2f}{gb / r['seconds']:>7.2f}{r['wall']:>9.2f}"
                f"{r['cpu']:>9.2f}{r['peak_mb']:>13.0f}"
            )
        if "nifti_dynamic" in results:
            peer = results["nifti_dynamic"]["seconds"]
            for name, r in results.items():
                if name.startswith("petzarr"):
                    cpu = results["nifti_dynamic"]["cpu"] / r["cpu"]
                    print(
                        f"{name}: {peer / r['seconds']:.1f}x faster than nifti_dynamic "
                        f"({cpu:.1f}x less CPU time)"
                    )
            diff = compare(root, cores)
            print(
                f"largest relative difference: mean {diff['mean']:.2e}, std {diff['std']:.2e}; "
                f"voxel counts equal: {diff['counts_equal']}"
            )
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
