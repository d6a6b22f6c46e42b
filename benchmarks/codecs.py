"""Blosc settings on one converted ``full`` subject: compressed size and encode/decode speed.

Every array of the store's level 0 (CT, PET, the 7 label maps) is re-encoded chunk by
chunk, in one thread (as each of a task's chunks is), with each candidate setting; sizes are
summed over the whole subject. The table printed is the one in ``docs/format.md``.

    python benchmarks/codecs.py STORE.zarr [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import zarr
from numcodecs import Blosc
from numcodecs import blosc as blosc_lib

# (cname, clevel, shuffle)
CANDIDATES = [
    ("zstd", 3, Blosc.SHUFFLE),
    ("zstd", 1, Blosc.SHUFFLE),
    ("zstd", 2, Blosc.SHUFFLE),
    ("zstd", 5, Blosc.SHUFFLE),
    ("zstd", 1, Blosc.BITSHUFFLE),
    ("lz4", 5, Blosc.SHUFFLE),
    ("lz4hc", 3, Blosc.SHUFFLE),
    ("blosclz", 5, Blosc.SHUFFLE),
]
SHUFFLE = {Blosc.NOSHUFFLE: "none", Blosc.SHUFFLE: "byte", Blosc.BITSHUFFLE: "bit"}


def level0_chunks(store: str) -> dict[str, list[np.ndarray]]:
    """Each kind's (CT, PET, label maps) level-0 chunks, decoded."""
    root = zarr.open_group(store, mode="r")
    kinds: dict[str, list[np.ndarray]] = {"CT": [], "PET": [], "labels (7 maps)": []}
    for group, kind in [("ct", "CT"), ("pet", "PET")]:
        for name, arr in root[group].arrays():
            if arr.ndim != 3:
                continue
            target = kind if name == group else "labels (7 maps)"
            step = arr.chunks[0]
            kinds[target] += [arr[z : z + step] for z in range(0, arr.shape[0], step)]
    return {k: v for k, v in kinds.items() if v}


def measure(chunks: list[np.ndarray], codec: Blosc, repeat: int) -> tuple[int, float, float]:
    """Encoded bytes, and median encode / decode seconds over ``repeat`` passes."""
    enc_s, dec_s = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        encoded = [codec.encode(c) for c in chunks]
        enc_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        for e in encoded:
            codec.decode(e)
        dec_s.append(time.perf_counter() - t)
    return sum(map(len, encoded)), statistics.median(enc_s), statistics.median(dec_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    blosc_lib.set_nthreads(1)  # a task encodes its chunks in its own threads, one each
    kinds = level0_chunks(args.store)
    raw = {k: sum(c.nbytes for c in v) for k, v in kinds.items()}
    print(f"level 0: {sum(raw.values()) / 1e9:.2f} GB raw; one thread; median of {args.repeat}")
    rows = []
    for cname, clevel, shuffle in CANDIDATES:
        codec = Blosc(cname=cname, clevel=clevel, shuffle=shuffle)
        size, enc, dec = 0, 0.0, 0.0
        for chunks in kinds.values():
            s, e, d = measure(chunks, codec, args.repeat)
            size, enc, dec = size + s, enc + e, dec + d
        rows.append((f"{cname} {clevel} {SHUFFLE[shuffle]}", size, enc, dec))
    base = rows[0][1]
    total = sum(raw.values())
    print(
        "| Blosc (cname, level, shuffle) | stored MB | x zstd-3 size | encode MB/s | decode MB/s |"
    )
    print("|---|---|---|---|---|")
    for name, size, enc, dec in rows:
        print(
            f"| {name} | {size / 1e6:.1f} | {size / base:.3f} | {total / enc / 1e6:.0f} "
            f"| {total / dec / 1e6:.0f} |"
        )


if __name__ == "__main__":
    main()
