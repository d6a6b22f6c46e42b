"""Organ-statistics kernels on one full-size static PET volume, single core.

    python benchmarks/labelstats.py [--shape 531 440 440] [--repeat 3] [--maps 7] [--quick]

Data are generated in code: a float32 PET-like volume (air ~0, body ~5000 Bq/mL with noise
and hot spots) and 7 uint8 label maps with 10-60 labels each, made of blobs (Voronoi cells
of random seeds, 4-voxel grain) inside an elliptic body cylinder, as segmentations are.
A second, adversarial set of maps draws every voxel's label at random (every voxel its own
run): the worst case of the run-based kernels.

Printed (median of ``--repeat``; seconds are the thread's CPU time, so other processes on
the machine do not count; GB/s are float32 value bytes per CPU second, i.e. per core):
- fused: :func:`~petzarr.analytics.kernels.moments.label_moments` (count/sum/sumsq/min/max of
  every label of every map in one pass), with its error against a float64 numpy reference;
- bincount: ``np.bincount`` count + sum + sum of squares per map (no min/max);
- mask loop: ``v[lab == k]`` per label (count/sum/sumsq/min/max), on one 64-slice slab
  (it does not finish in reasonable time on the whole volume; throughput is per byte);
- erosion 1, median, SUVpeak of every map and their ratio to the fused pass, and
  :func:`~petzarr.analytics.kernels.moments.label_statistics` end to end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# one core: numba kernels are single-threaded already; keep BLAS & co. from helping numpy
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

SPACING = (2.0, 1.65, 1.65)


def make_volume(shape, rng):
    _, ny, nx = shape
    yy, xx = np.ogrid[:ny, :nx]
    body = ((yy - ny / 2) / (0.38 * ny)) ** 2 + ((xx - nx / 2) / (0.45 * nx)) ** 2 <= 1
    v = rng.standard_normal(shape, dtype=np.float32)
    v *= 500
    v += np.where(body, np.float32(5000), np.float32(0))[None]
    # a few hot spots (lesion-like) of 5-15 voxel radius
    for _ in range(12):
        cz, cy, cx = (rng.integers(20, s - 20) for s in shape)
        r = rng.integers(5, 15)
        sl = tuple(slice(max(c - r, 0), c + r) for c in (cz, cy, cx))
        v[sl] += np.float32(rng.uniform(5e3, 4e4))
    return v, body


def make_blob_maps(shape, body, n_maps, rng, grain=4):
    nz, ny, nx = shape
    coarse = tuple(-(-s // grain) for s in shape)
    zz, yy, xx = np.meshgrid(*(np.arange(c, dtype=np.float32) for c in coarse), indexing="ij")
    maps = []
    for _ in range(n_maps):
        n_labels = int(rng.integers(10, 61))
        seeds = rng.uniform(0, 1, (n_labels * 2, 3)) * np.array(coarse)
        best = np.full(coarse, np.inf, np.float32)
        lab = np.zeros(coarse, np.uint8)
        for i, (sz, sy, sx) in enumerate(seeds):
            d = (zz - sz) ** 2 + (yy - sy) ** 2 + (xx - sx) ** 2
            closer = d < best
            best[closer] = d[closer]
            # half of the cells stay background: maps cover part of the body only
            lab[closer] = 0 if i % 2 else 1 + (i // 2) % n_labels
        full = lab.repeat(grain, 0).repeat(grain, 1).repeat(grain, 2)[:nz, :ny, :nx]
        full = np.ascontiguousarray(full)
        full[:, ~body] = 0
        maps.append(full)
    return maps


def timeit(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        out = None  # free the previous result first: its memory is reused, not faulted in
        t0 = time.thread_time()
        out = fn()
        times.append(time.thread_time() - t0)
    return statistics.median(times), out


def reference_moments(v, lab, n_labels):
    """Two-pass float64 reference (np.bincount), exact enough to judge the fused pass."""
    flat = lab.ravel()
    x = v.ravel().astype(np.float64)
    n = np.bincount(flat, minlength=n_labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(flat, x, minlength=n_labels) / n
        var = np.bincount(flat, (x - mean[flat]) ** 2, minlength=n_labels) / n
    return n, mean, np.sqrt(var)


def bincount_pass(v, maps, n_labels):
    x = v.ravel().astype(np.float64)  # once, not once per call
    x2 = x * x
    out = []
    for lab in maps:
        flat = lab.ravel()
        out.append(
            (
                np.bincount(flat, minlength=n_labels),
                np.bincount(flat, x, minlength=n_labels),
                np.bincount(flat, x2, minlength=n_labels),
            )
        )
    return out


def mask_loop(v, maps):
    out = []
    for lab in maps:
        for k in np.unique(lab):
            if k == 0:
                continue
            x = v[lab == k].astype(np.float64)
            out.append((x.size, x.sum(), (x * x).sum(), x.min(), x.max()))
    return out


def main() -> None:
    from petzarr.analytics.kernels.erosion import erode_labels
    from petzarr.analytics.kernels.median import label_medians
    from petzarr.analytics.kernels.moments import label_moments
    from petzarr.analytics.kernels.suvpeak import label_peaks
    from petzarr.analytics.tables.label_stats import label_statistics

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shape", type=int, nargs=3, default=(531, 440, 440))
    p.add_argument("--maps", type=int, default=7)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="skip the mask loop and the random maps")
    args = p.parse_args()
    shape = tuple(args.shape)
    rng = np.random.default_rng(42)
    t0 = time.perf_counter()
    v, body = make_volume(shape, rng)
    maps = make_blob_maps(shape, body, args.maps, rng)
    gb = v.nbytes / 1e9
    fg = np.mean([np.count_nonzero(m) / m.size for m in maps])
    print(
        f"volume {shape} float32 = {gb:.3f} GB, {len(maps)} uint8 maps, "
        f"labels/map {[int(m.max()) for m in maps]}, mean foreground {fg:.1%} "
        f"(data made in {time.perf_counter() - t0:.1f} s)"
    )
    n_labels = 256
    # compile outside the timings
    small = tuple(slice(0, 8) for _ in range(3))
    label_moments(v[small], [m[small] for m in maps])
    label_statistics(
        v[small],
        {str(i): m[small] for i, m in enumerate(maps)},
        spacing_mm=SPACING,
        erosion=(0, 1),
        median=True,
        peak=True,
    )

    t0 = time.thread_time()
    np.ones(maps[0].size, np.uint8)
    touch = time.thread_time() - t0
    print(
        f"first touch of a fresh {maps[0].nbytes / 1e6:.0f} MB array (page faults): {touch:.3f} s"
    )

    def rate(t):
        return f"{t:7.3f} s  {gb / t:6.2f} GB/s"

    t_fused, mom = timeit(lambda: label_moments(v, maps), args.repeat)
    print(f"fused pass (count,sum,sumsq,min,max; {len(maps)} maps) {rate(t_fused)}")
    worst = 0.0
    for i, lab in enumerate(maps):
        n, mean, std = reference_moments(v, lab, n_labels)
        ok = n > 0
        assert np.array_equal(mom.count[i], n)
        worst = max(
            worst,
            np.max(np.abs(mom.mean[i][ok] - mean[ok]) / np.abs(mean[ok])),
            np.max(np.abs(mom.std[i][ok] - std[ok]) / std[ok]),
        )
    print(f"  max relative error of mean/std vs float64 two-pass numpy: {worst:.2e}")
    import dask
    import dask.array as da

    lazy_v = da.from_array(v, chunks=(64, *shape[1:]))
    lazy_maps = [da.from_array(m, chunks=(64, *shape[1:])) for m in maps]
    with dask.config.set(scheduler="synchronous"):  # in this thread: its CPU time counts
        t_dask, _ = timeit(lambda: label_moments(lazy_v, lazy_maps).compute(), args.repeat)
    print(f"fused pass via Dask (64-slice blocks, tree reduction) {rate(t_dask)}")
    t_bc, _ = timeit(lambda: bincount_pass(v, maps, n_labels), args.repeat)
    print(f"np.bincount (count,sum,sumsq; no min/max)          {rate(t_bc)}")
    if not args.quick:
        slab = slice(shape[0] // 2 - 32, shape[0] // 2 + 32)
        t_mask, _ = timeit(lambda: mask_loop(v[slab], [m[slab] for m in maps]), 1)
        gb_slab = v[slab].nbytes / 1e9
        print(
            f"per-label mask loop (64-slice slab, {gb_slab:.3f} GB)        "
            f"{t_mask:7.3f} s  {gb_slab / t_mask:6.2f} GB/s"
        )

    t_ero, eroded = timeit(lambda: [erode_labels(m, 1) for m in maps], args.repeat)
    print(
        f"erosion 1 of {len(maps)} maps                          {t_ero:7.3f} s  "
        f"{t_ero / t_fused:5.2f} x fused"
    )
    t_fused_e, _ = timeit(lambda: label_moments(v, maps + eroded), args.repeat)
    print(f"fused pass, {2 * len(maps)} maps (erosion 0 and 1)           {rate(t_fused_e)}")
    t_med, _ = timeit(lambda: label_medians(v, maps, n_labels=n_labels), args.repeat)
    print(
        f"exact median, {len(maps)} maps                          {t_med:7.3f} s  "
        f"{t_med / t_fused:5.2f} x fused"
    )
    t_peak, _ = timeit(
        lambda: label_peaks(v, maps, spacing_mm=SPACING, n_labels=n_labels), args.repeat
    )
    print(
        f"SUVpeak, {len(maps)} maps                               {t_peak:7.3f} s  "
        f"{t_peak / t_fused:5.2f} x fused"
    )
    print(
        f"  erosion 1 + median + peak add {(t_ero + t_med + t_peak) / t_fused:.2f} x the fused pass"
    )
    named = {f"map{i}": m for i, m in enumerate(maps)}
    t_all, table = timeit(
        lambda: label_statistics(
            v, named, spacing_mm=SPACING, erosion=(0, 1), median=True, peak=True
        ),
        1,
    )
    print(
        f"label_statistics(erosion=(0,1), median, peak), end to end {rate(t_all)} "
        f"({len(table)} rows; {t_all / t_fused:.2f} x the fused pass)"
    )
    t_plain, _ = timeit(lambda: label_statistics(v, named, spacing_mm=SPACING), args.repeat)
    print(f"label_statistics(erosion=(0,)), end to end           {rate(t_plain)}")

    if not args.quick:
        noise = [rng.integers(0, int(m.max()) + 1, shape, dtype=np.uint8) for m in maps]
        t_rand, _ = timeit(lambda: label_moments(v, noise), 1)
        print(f"fused pass, per-voxel random maps (worst case)       {rate(t_rand)}")
        t_bcr, _ = timeit(lambda: bincount_pass(v, noise, n_labels), 1)
        print(f"np.bincount, per-voxel random maps                   {rate(t_bcr)}")


if __name__ == "__main__":
    main()
