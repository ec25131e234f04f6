"""Statistics: paired comparisons of variants over folds, and scores of units for labels with their uncertainty.

Every variant is trained on the same folds, so two variants are compared fold by fold (paired),
never as two means side by side; a handful of folds detects only large effects, and the tables
say how large (``detectable_effect``). A unit's score for a label (an AU) is threshold-free (ROC AUC,
average precision), computed for every unit and label at once, with subject-level bootstrap
intervals whose resamples re-select the best unit (``best_unit_intervals``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import torch
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


__all__ = ["PAIRS", "average_precision", "best_unit_intervals", "conclusions", "detectable_effect", "format_p", "holm",
           "paired_comparisons", "readable", "roc_auc", "subject_bootstrap"]


# ----------------------------------------------------------------------------- scores of units for labels


def _tie_groups(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For one column of scores (N,): the ascending sort order (N,) and each sorted entry's tie-group id (N,)."""
    order = torch.argsort(scores, stable=True)
    ordered = scores[order]
    group = torch.cat([torch.zeros(1, dtype=torch.long, device=scores.device),
                       torch.cumsum((ordered[1:] != ordered[:-1]).long(), 0)])
    return order, group


def roc_auc(scores, positives, weights=None) -> torch.Tensor:
    """ROC AUC of every score column for every label column, for every row of ``weights``, vectorised.

    The Mann-Whitney form on the data repeated ``weights`` times (ties count half), so weights of
    subject counts give bootstrap resamples exactly; with no weights it equals
    ``sklearn.metrics.roc_auc_score`` column by column.

    Args:
        scores: (N, C) float, e.g. each unit's peak activation on each image.
        positives: (N, A) bool, e.g. each AU's presence.
        weights: (B, N) non-negative counts; None: one row of ones.

    Returns:
        float64 (B, C, A); NaN where a label has no positive or no negative (weighted).
    """
    scores = torch.as_tensor(np.asarray(scores), dtype=torch.float64)
    positives = torch.as_tensor(np.asarray(positives), dtype=torch.float64)
    n = len(scores)
    weights = torch.ones(1, n, dtype=torch.float64) if weights is None else torch.as_tensor(
        np.asarray(weights), dtype=torch.float64)
    n_pos = weights @ positives  # (B, A)
    n_neg = weights.sum(1, keepdim=True) - n_pos
    out = torch.empty(len(weights), scores.shape[1], positives.shape[1], dtype=torch.float64)
    for c in range(scores.shape[1]):
        order, group = _tie_groups(scores[:, c])
        w = weights[:, order]  # (B, N) in ascending score order
        per_group = torch.zeros(len(w), int(group[-1]) + 1, dtype=torch.float64).index_add_(1, group, w)  # (B, G)
        below = torch.cumsum(per_group, 1) - per_group  # weight strictly below each group
        # Each copy of an image sits at rank below + (ties, its own copies included, + 1) / 2 in its resample.
        rank = (below + (per_group + 1) / 2)[:, group]  # (B, N)
        rank_sum = (w * rank) @ positives[order]  # (B, A)
        out[:, c] = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return torch.where((n_pos > 0) & (n_neg > 0), out.permute(1, 0, 2), torch.nan).permute(1, 0, 2)


def average_precision(scores, positives) -> np.ndarray:
    """Average precision of every score column for every label column (precision at each distinct score,
    as ``sklearn.metrics.average_precision_score``).

    Args:
        scores: (N, C) float; positives: (N, A) bool.

    Returns:
        float (C, A); NaN where a label has no positive.
    """
    scores = torch.as_tensor(np.asarray(scores), dtype=torch.float64)
    positives = torch.as_tensor(np.asarray(positives), dtype=torch.float64)
    n_pos = positives.sum(0)  # (A,)
    out = torch.empty(scores.shape[1], positives.shape[1], dtype=torch.float64)
    for c in range(scores.shape[1]):
        order, group = _tie_groups(-scores[:, c])  # descending scores
        hits = positives[order]  # (N, A)
        groups = int(group[-1]) + 1
        tp = torch.cumsum(torch.zeros(groups, hits.shape[1], dtype=torch.float64).index_add_(0, group, hits), 0)
        seen = torch.cumsum(torch.bincount(group, minlength=groups).double(), 0)[:, None]  # (G, 1)
        gained = torch.diff(tp, dim=0, prepend=torch.zeros(1, hits.shape[1], dtype=torch.float64))  # (G, A)
        out[c] = (gained * tp / seen).sum(0) / n_pos
    return torch.where(n_pos > 0, out, torch.nan).numpy()


def hypergeom_at_least(x, population, successes, draws) -> np.ndarray:
    """P(X >= x) for X hypergeometric (``population`` items, ``successes`` of them marked, ``draws`` drawn):
    the one-sided Fisher p of an enrichment. Integer-valued arrays that broadcast together; returns their shape.

    Equal to ``scipy.stats.hypergeom.sf(x - 1, population, successes, draws)`` to rounding and many times
    faster on a (units, AUs) table, whose cells share a few (population, successes, draws): the pmf of each
    distinct triple is computed once over every count (log space) and summed from the top into a tail table.
    """
    from scipy.special import gammaln

    x, big, n, k = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (x, population, successes, draws)))
    # The distinct (population, successes, draws): each column's values numbered apart, the three numbers combined
    # into one key (far faster than np.unique over rows).
    codes = [np.unique(a.ravel(), return_inverse=True) for a in (big, n, k)]
    key = (codes[0][1] * len(codes[1][0]) + codes[1][1]) * len(codes[2][0]) + codes[2][1]
    _, first, which = np.unique(key, return_index=True, return_inverse=True)
    big, n, k = (values[inverse[first], None] for values, inverse in codes)  # (U, 1) each distinct distribution
    j = np.arange(int(k.max(initial=0)) + 1, dtype=float)[None]  # (1, J) every count

    def log_choose(a, b):
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

    possible = (j <= n) & (j <= k) & (k - j <= big - n)  # (U, J)
    with np.errstate(invalid="ignore"):
        log_pmf = np.where(possible, log_choose(n, j) + log_choose(big - n, k - j) - log_choose(big, k), -np.inf)
    tail = np.cumsum(np.exp(log_pmf)[:, ::-1], axis=1)[:, ::-1]  # (U, J): P(X >= j), small terms summed first
    tail = np.hstack([tail, np.zeros((len(tail), 1))])  # a count above every draw: probability 0
    at = np.clip(x, 0, tail.shape[1] - 1).astype(int).ravel()
    return np.minimum(tail[which.ravel(), at], 1.0).reshape(x.shape)


def subject_bootstrap(subjects, n: int = 1000, seed: int = 0) -> np.ndarray:
    """(n, N) counts of each image in ``n`` resamples of the subjects with replacement (every image of a subject
    drawn k times counts k times): the unit of resampling is the person, as in the protocol's folds."""
    unique, index = np.unique(np.asarray(subjects), return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(unique), (n, len(unique)))  # (n, S) subject ids drawn
    per_subject = np.zeros((n, len(unique)))
    np.add.at(per_subject, (np.arange(n)[:, None], draws), 1)
    return per_subject[:, index]  # (n, N)


def best_unit_intervals(scores, positives, subjects, n_boot: int = 1000, level: float = 0.95,
                        seed: int = 0) -> pd.DataFrame:
    """Per label: the best-scoring unit (highest ROC AUC) and a subject-bootstrap interval of the best AUC, with
    the best unit chosen again inside every resample (so the interval includes the selection).

    Args:
        scores: (N, C) unit scores; positives: (N, A) bool; subjects: (N,) ids.

    Returns:
        One row per label column: label (index), unit, auc, ci_low, ci_high (percentile interval).
    """
    point = roc_auc(scores, positives)[0]  # (C, A)
    boot = roc_auc(scores, positives, subject_bootstrap(subjects, n_boot, seed))  # (B, C, A)
    best_boot = torch.nan_to_num(boot, nan=-1.0).amax(1).numpy()  # (B, A)
    tail = (1 - level) / 2
    best = torch.nan_to_num(point, nan=-1.0).argmax(0).numpy()
    rows = []
    for a in range(point.shape[1]):
        valid = best_boot[:, a] >= 0
        low, high = np.quantile(best_boot[valid, a], [tail, 1 - tail]) if valid.any() else (np.nan, np.nan)
        rows.append({"label": a, "unit": int(best[a]), "auc": float(point[best[a], a]), "ci_low": float(low),
                     "ci_high": float(high)})
    return pd.DataFrame(rows)
