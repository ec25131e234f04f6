"""``fercore bench grid``: the wall time of one small grid trained one run after another, and as Ray tasks.

On a CPU the same grid runs sequentially (every run on all cores) and on a local Ray instance with
the same cores (one run per core, side by side); Ray's start-up is timed apart. On CUDA it also runs
with 1, 2 and 4 runs sharing the GPU (``--runs-per-gpu``). Each grid trains into its own temporary
folder, so nothing is reused between them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fercore.data.common import make_faceset, subject_splits
from fercore.execution import Execution, describe_device
from fercore.experiment import cross_validate


def bench_grid(device: str = "cpu", runs: int = 4, iterations: int = 300, n_images: int = 600) -> dict:
    """Train a quick-profile grid of ``runs`` runs (``cnn_ad``, folds 0..runs-1, ``iterations`` steps each, random
    faces) sequentially and on a local Ray instance; on CUDA also at 1, 2 and 4 runs per GPU.

    Returns:
        {"device", "runs", "sequential_s", "ray_start_s", "ray_s" (per runs-per-GPU on CUDA, else one entry),
        "ray_overhead"}; also printed.
    """
    import ray

    from fercore.cluster import connect

    faceset = _random_faceset(n_images, folds=max(runs + 2, 3))
    execution = Execution(device=device)
    grid = dict(variants=["cnn_ad"], folds=list(range(runs)), iterations=iterations, eval_every=iterations // 3,
                progress=False)
    result = {"device": describe_device(device), "runs": runs, "iterations": iterations,
              "sequential_s": _timed(lambda out: cross_validate(faceset, out, "quick", execution=execution, **grid))}
    start = time.perf_counter()
    connect("local")
    result["ray_start_s"] = time.perf_counter() - start
    shares = (1, 2, 4) if execution.torch_device.type == "cuda" else (1,)
    result["ray_s"] = {share: _timed(lambda out, share=share: cross_validate(
        faceset, out, "quick", execution=execution, cluster="local", runs_per_gpu=share, **grid)) for share in shares}
    ray.shutdown()
    result["ray_overhead"] = result["ray_s"][1] / result["sequential_s"] - 1
    print(f"a grid of {runs} quick runs ({iterations} steps each) on {result['device']}:")
    print(f"  one after another:           {result['sequential_s']:7.1f} s")
    print(f"  local Ray, start-up:         {result['ray_start_s']:7.1f} s")
    for share, seconds in result["ray_s"].items():
        label = f"Ray tasks, {share} run(s) per GPU:" if len(shares) > 1 else "Ray tasks side by side:"
        print(f"  {label:<29}{seconds:7.1f} s   ({result['sequential_s'] / seconds:.2f}x the sequential grid)")
    print(f"  Ray's overhead on the grid:  {100 * result['ray_overhead']:+.0f}%  (target < 10%)")
    return result


def _timed(train_grid) -> float:
    folder = Path(tempfile.mkdtemp(prefix="fercore-bench-grid-"))
    try:
        start = time.perf_counter()
        train_grid(folder)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _random_faceset(n: int, folds: int, seed: int = 0):
    """Random 96x96 faces in 8 classes over 3 * ``folds`` subjects, with subject-independent folds."""
    rng = np.random.default_rng(seed)
    subjects = np.array([f"S{k % (3 * folds):03d}" for k in range(n)])
    _, splits = subject_splits(subjects, np.ones(n, dtype=bool), folds)
    return make_faceset("bench", rng.integers(0, 256, (n, 1, 96, 96), dtype=np.uint8), np.arange(n) % 8,
                        [f"c{k}" for k in range(8)], subjects=subjects, meta=pd.DataFrame({"i": range(n)}),
                        splits=splits, protocol={})
