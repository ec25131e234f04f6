"""``fercore bench load``: how fast a full-size FER2013 csv becomes a FaceSet, first from the csv, then from the cache.

The real csv is licensed, so the benchmark writes a fake one of the same size and layout
(35,887 rows of 2,304 pixel numbers, the real Usage counts) in a temporary folder, with a
private cache folder, and deletes both afterwards.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fercore.data.fer2013 import N_PIXELS, USAGES, load_fer2013

ROWS = {"Training": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589}  # 35,887 in all
LIMIT_FIRST_S, LIMIT_CACHED_S = 15.0, 1.0  # the targets on a 2-core machine


def write_fake_fer2013(path: str | os.PathLike, rows: dict[str, int] | None = None, seed: int = 0,
                       distinct: int = 512) -> int:
    """Write a FER2013-format csv of random faces; returns the number of data rows.

    ``distinct`` different pixel rows are cycled (writing 80 million random numbers as text
    would take longer than the load being measured; the parser does not care).
    """
    rows = ROWS if rows is None else rows
    rng = np.random.default_rng(seed)
    pool = [" ".join(map(str, rng.integers(0, 256, N_PIXELS).tolist())) for _ in range(distinct)]
    n = 0
    with open(path, "w", newline="") as f:
        f.write("emotion,pixels,Usage\n")
        for usage in USAGES:
            for _ in range(rows[usage]):
                f.write(f"{n % 7},{pool[n % distinct]},{usage}\n")
                n += 1
    return n


def bench_load(size: int = 96) -> dict:
    """Time loading a full-size fake FER2013 csv into a FaceSet, then loading it again from the cache.

    Args:
        size: face side of the FaceSet (96 = the network's input; 48 = FER2013's own).

    Returns:
        {"rows", "csv_mb", "size", "write_s", "first_s", "rows_per_s", "cached_s" (the first cached
        load), "cached_median_s" (of 3), "first_ok", "cached_ok"}; also printed.
    """
    old_cache = os.environ.get("FERCORE_CACHE")
    with tempfile.TemporaryDirectory(prefix="fercore-bench-load-") as tmp:
        csv = Path(tmp) / "fer2013" / "fer2013.csv"
        csv.parent.mkdir()
        os.environ["FERCORE_CACHE"] = str(Path(tmp) / "cache")
        try:
            t = time.perf_counter()
            n = write_fake_fer2013(csv)
            write_s = time.perf_counter() - t
            t = time.perf_counter()
            first = load_fer2013(csv.parent, size=size)
            first_s = time.perf_counter() - t
            n_first = len(first)
            del first  # the cached load starts from a clean slate, as in a new session
            cached = []
            for _ in range(3):
                t = time.perf_counter()
                second = load_fer2013(csv.parent, size=size)
                cached.append(time.perf_counter() - t)
            cached_s = cached[0]
        finally:
            if old_cache is None:
                os.environ.pop("FERCORE_CACHE", None)
            else:
                os.environ["FERCORE_CACHE"] = old_cache
        assert n_first == len(second) == n
        result = {"rows": n, "csv_mb": round(csv.stat().st_size / 2**20, 1), "size": size,
                  "write_s": round(write_s, 2), "first_s": round(first_s, 2), "rows_per_s": round(n / first_s),
                  "cached_s": round(cached_s, 3),
                  "cached_median_s": round(float(np.median(cached)), 3), "first_ok": first_s < LIMIT_FIRST_S,
                  "cached_ok": cached_s < LIMIT_CACHED_S}
    print(f"FER2013 csv, {n:,} rows ({result['csv_mb']} MB, faces resized to {size}x{size}):")
    print(f"  first load  {first_s:6.2f} s  {result['rows_per_s']:>8,} rows/s   "
          f"(target < {LIMIT_FIRST_S:.0f} s: {'ok' if result['first_ok'] else 'TOO SLOW'})")
    print(f"  cached load {cached_s:6.3f} s  (median of 3: {result['cached_median_s']:.3f} s)   "
          f"(target < {LIMIT_CACHED_S:.0f} s: {'ok' if result['cached_ok'] else 'TOO SLOW'})")
    return result


if __name__ == "__main__":
    bench_load()
