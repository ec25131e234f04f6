"""Statistics of fold-by-fold comparisons: paired tests, effect sizes, Holm's adjustment, power.

Every variant is trained on the same folds, so two variants are compared fold by fold (paired),
never as two means side by side; a handful of folds detects only large effects, and the tables
say how large (``detectable_effect``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

# (effect, a, b): b differs from a only by the effect; the difference is b - a, fold by fold.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("augmentation", "cnn", "cnn_a"),
    ("augmentation", "cnn_d", "cnn_ad"),
    ("dropout", "cnn", "cnn_d"),
    ("dropout", "cnn_a", "cnn_ad"),
    ("both", "cnn", "cnn_ad"),
)
_WILCOXON_MIN_N = 6  # fewer non-zero differences cannot reach two-sided p < 0.05 (smallest p = 2 / 2**n)


def paired_comparisons(runs: pd.DataFrame, pairs=PAIRS, alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Paired comparison of variants over the folds both ran (the same train / test splits).

    For each (effect, a, b): the fold-by-fold differences d = acc(b) - acc(a); the paired t-test
    (``scipy.stats.ttest_rel(b, a)``), the effect size (mean difference and Cohen's d_z = mean(d) / sd(d)),
    Holm-adjusted p over the comparisons made, the Wilcoxon signed-rank test where it can reach
    ``alpha`` (at least 6 non-zero differences; else NaN and the smallest p it could give), and the
    smallest d_z that a t-test over this many folds detects with probability ``power``.

    Args:
        runs: ``experiment.runs_table`` of one task (variant, fold, test_accuracy).

    Returns:
        One row per pair whose variants both ran: effect, a, b, n, folds, diffs, mean_a, mean_b,
        mean_diff, sd_diff, d_z, t, df, p, p_holm, wilcoxon_p, wilcoxon_min_p, detectable_d_z.
    """
    wide = runs.pivot(index="fold", columns="variant", values="test_accuracy")
    rows = []
    for effect, a, b in pairs:
        if a not in wide or b not in wide:
            continue
        both = wide[[a, b]].dropna()
        x, y = both[a].to_numpy(), both[b].to_numpy()
        d, n = y - x, len(both)
        sd = d.std(ddof=1) if n > 1 else math.nan
        with warnings.catch_warnings():  # identical differences (sd 0) or one fold: NaN, said in the table
            warnings.simplefilter("ignore", RuntimeWarning)
            t, p = stats.ttest_rel(y, x) if n > 1 else (math.nan, math.nan)
        nonzero = int(np.count_nonzero(d))
        rows.append({"effect": effect, "a": a, "b": b, "n": n, "folds": both.index.tolist(), "diffs": d.tolist(),
                     "mean_a": x.mean(), "mean_b": y.mean(), "mean_diff": d.mean(), "sd_diff": sd,
                     "d_z": d.mean() / sd if sd > 0 else math.nan, "t": float(t), "df": n - 1, "p": float(p),
                     "wilcoxon_p": (float(stats.wilcoxon(y, x).pvalue) if nonzero >= _WILCOXON_MIN_N else math.nan),
                     "wilcoxon_min_p": min(1.0, 2 / 2 ** nonzero) if nonzero else 1.0,
                     "detectable_d_z": detectable_effect(n, alpha, power)})
    table = pd.DataFrame(rows)
    if len(table):
        table.insert(table.columns.get_loc("p") + 1, "p_holm", holm(table["p"].to_numpy()))
    return table


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values (NaN entries are left out and stay NaN)."""
    p = np.asarray(p, dtype=float)
    adjusted = np.full_like(p, np.nan)
    index = np.flatnonzero(~np.isnan(p))
    order = index[np.argsort(p[index])]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def detectable_effect(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest Cohen's d_z a two-sided paired t-test over ``n`` pairs detects with probability
    ``power`` at level ``alpha`` (noncentral t); NaN for n < 2."""
    if n < 2:
        return math.nan
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(d_z: float) -> float:
        shift = d_z * math.sqrt(n)
        return stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift) - power

    high = 1.0
    while shortfall(high) < 0:  # bracket the root; the noncentral t is NaN far out (df = 1 only)
        high *= 1.5
        if high > 100 or math.isnan(shortfall(high)):
            return math.nan
    return float(optimize.brentq(shortfall, 1e-6, high))


def format_p(p: float | None) -> str:
    """A p-value for people: "p < 0.001", "p = 0.004", "p = 0.21"; "p undefined" for NaN or None."""
    if p is None or math.isnan(p):
        return "p undefined"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def readable(comparisons: pd.DataFrame) -> pd.DataFrame:
    """``paired_comparisons`` as a table for people: differences in points, p-values as "< 0.001", "0.004", "0.21"
    (or "n/a"), without the per-fold lists."""
    table = comparisons.drop(columns=["folds", "diffs"], errors="ignore").copy()
    for column in ("mean_a", "mean_b", "mean_diff", "sd_diff"):
        table[column] = (100 * table[column]).round(1)
    table = table.rename(columns={"mean_a": "mean_a (%)", "mean_b": "mean_b (%)", "mean_diff": "mean_diff (points)",
                                  "sd_diff": "sd_diff (points)"})
    for column in ("p", "p_holm", "wilcoxon_p", "wilcoxon_min_p"):
        table[column] = [format_p(p).removeprefix("p ").removeprefix("= ").replace("undefined", "n/a")
                         for p in table[column]]
    return table.round({"d_z": 2, "t": 2, "detectable_d_z": 2})


def conclusions(comparisons: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """One sentence per comparison: the effect in points, d_z, p, and whether the folds can tell."""
    lines = []
    for r in comparisons.itertuples():
        size = f"d_z = {r.d_z:.2f}" if not math.isnan(r.d_z) else "d_z undefined (identical differences)"
        verdict = ("significant" if r.p_holm < alpha else "not significant") if not math.isnan(r.p_holm) else "untested"
        holm_p = format_p(r.p_holm).removeprefix("p ")
        lines.append(f"{r.effect} ({r.a} -> {r.b}): {100 * r.mean_diff:+.1f} points over {r.n} folds, {size}, "
                     f"paired t-test {format_p(r.p)} (Holm-adjusted {holm_p}): {verdict} at {alpha:g}; "
                     f"{r.n} folds detect only d_z >= {r.detectable_d_z:.1f} with 80% power.")
    return lines


__all__ = ["PAIRS", "conclusions", "detectable_effect", "format_p", "holm", "paired_comparisons", "readable"]
