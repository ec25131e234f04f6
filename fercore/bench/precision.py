"""``fercore bench precision``: does bf16 autocast change what the grid finds? The same grid in fp32 and in bf16.

The main task's grid of a profile (SynthFACS 8 classes, quick: 4 variants x folds 0-2) is trained twice,
with the same folds, seeds and data, once per precision; every (variant, fold) is then compared paired.
bf16 is "within fold-to-fold noise" when the mean paired difference is smaller than the spread of one
variant's accuracy from fold to fold (the standard deviation over folds, averaged over variants) and a
paired t-test over every (variant, fold) finds no difference at p < 0.05. Runs are kept below ``out``,
so an interrupted benchmark continues; the training seconds of both grids give the speed-up on real runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from scipy import stats

from fercore.execution import Execution, describe_device
from fercore.experiment import cross_validate

PRECISIONS = ("fp32", "bf16")


def bench_precision(device: str = "cpu", profile: str = "quick", root: str | os.PathLike | None = None,
                    out: str | os.PathLike = "runs/bench-precision", cluster: str | None = None, **overrides) -> dict:
    """Train the main task's grid of ``profile`` in fp32 and in bf16 and compare the test accuracies paired.

    Args:
        root: the SynthFACS folder (default data/synthfacs, written when missing).
        out: where both grids' runs go (``out/fp32``, ``out/bf16``); finished runs are read back.
        cluster: train each grid as Ray tasks ("local" or an address; ``fercore.cluster``).
        **overrides: TrainConfig fields for both grids (``iterations=4`` in a smoke test).

    Returns:
        {"device", "runs": one row per (precision, variant, fold), "paired": per variant, "mean_diff", "sd_diff",
        "t", "p", "fold_std", "within_noise", "training_s", "speedup"}; also printed.
    """
    from fercore.data import load

    faceset = load("synthfacs", root)
    grids = {p: cross_validate(faceset, Path(out) / p, profile, execution=Execution(device=device, precision=p),
                               cluster=cluster, progress=False, dataset="synthfacs", **overrides).assign(precision=p)
             for p in PRECISIONS}
    runs = pd.concat(grids.values(), ignore_index=True)
    wide = runs.pivot_table(index=["variant", "fold"], columns="precision", values="test_accuracy")
    diffs = (wide["bf16"] - wide["fp32"]).to_numpy()
    t, p = stats.ttest_rel(wide["bf16"], wide["fp32"])
    per_variant = runs.groupby(["variant", "precision"])["test_accuracy"].agg(["mean", "std"]).unstack("precision")
    fold_std = float(per_variant[("std", "fp32")].mean())  # how much one variant moves from fold to fold
    training_s = {p: float(g["seconds"].sum()) for p, g in grids.items()}
    result = {"device": describe_device(device), "profile": profile, "runs": runs.to_dict("records"),
              "paired": per_variant.round(4).to_string(), "mean_diff": float(diffs.mean()),
              "sd_diff": float(diffs.std(ddof=1)), "t": float(t), "p": float(p), "fold_std": fold_std,
              "within_noise": bool(abs(diffs.mean()) < fold_std and p >= 0.05), "training_s": training_s,
              "speedup": training_s["fp32"] / training_s["bf16"]}
    print(f"the {profile} grid of SynthFACS 8-class in fp32 and bf16 (same folds, seeds, data), {result['device']}:")
    print((100 * per_variant).round(1).to_string())
    print(f"  bf16 - fp32 over {len(diffs)} (variant, fold) pairs: mean {100 * diffs.mean():+.1f} points "
          f"(sd {100 * result['sd_diff']:.1f}), paired t = {t:.2f}, p = {p:.2f}")
    print(f"  fold-to-fold spread of one variant (std over folds in fp32, mean over variants): "
          f"{100 * fold_std:.1f} points")
    print(f"  within fold-to-fold noise: {'yes' if result['within_noise'] else 'NO'}")
    print(f"  training time of the grid: fp32 {training_s['fp32']:.0f} s, bf16 {training_s['bf16']:.0f} s "
          f"({result['speedup']:.2f}x)")
    return result


__all__ = ["bench_precision"]
